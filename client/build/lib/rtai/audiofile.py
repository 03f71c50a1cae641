"""WAV files in and out: the listener's recording and the intercom's file input.

The writer keeps the header valid on every normal exit (``close`` in a
``finally`` covers Ctrl-C): the file holds everything written so far.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rtai.errors import RtaiError


class WavWriter:
    """16-bit PCM WAV of a fixed rate and channel count."""

    def __init__(self, path: Path, rate: int, channels: int) -> None:
        self.path = path
        self.rate = rate
        self.channels = channels
        self.frames = 0
        try:
            self._wav = wave.open(str(path), "wb")  # noqa: SIM115  (closed in close())
        except OSError as exc:
            raise RtaiError(f"cannot write {path}: {exc.strerror or exc}") from None
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)

    def write(self, data: NDArray[np.int16]) -> None:
        self._wav.writeframes(np.ascontiguousarray(data, dtype="<i2").tobytes())
        self.frames += int(data.shape[0])

    def close(self) -> None:
        """Write the final header; safe to call twice."""
        self._wav.close()


def read_wav(path: Path) -> tuple[int, NDArray[np.int16]]:
    """Rate and ``(frames, channels)`` samples of a 16-bit PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise RtaiError(
                    f"{path} has {8 * wav.getsampwidth()}-bit samples; only 16-bit PCM WAV is read"
                )
            data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
            return wav.getframerate(), data.astype(np.int16).reshape(-1, wav.getnchannels())
    except (OSError, wave.Error, EOFError) as exc:
        raise RtaiError(f"cannot read {path} as a WAV file: {exc}") from None


class PacedFile:
    """Hands out a file's audio in real time, as a microphone would."""

    def __init__(self, data: NDArray[np.int16], rate: int, block_frames: int) -> None:
        self._data = data
        self._rate = rate
        self._block = block_frames
        self._sent = 0
        self._start = time.monotonic()

    @property
    def finished(self) -> bool:
        return self._sent >= int(self._data.shape[0])

    def next_due(self) -> float:
        """Monotonic time at which the next block is complete."""
        return self._start + (self._sent + self._block) / self._rate

    def read(self) -> list[NDArray[np.int16]]:
        """The blocks whose time has come."""
        out = []
        now = time.monotonic()
        while not self.finished and self.next_due() <= now:
            out.append(self._data[self._sent : self._sent + self._block])
            self._sent += self._block
        return out

    def close(self) -> None:
        """Nothing to release; here so a file and a microphone look alike."""
