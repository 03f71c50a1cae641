"""A stand-in for the ``sounddevice`` module: a sound card paced by the clock.

There is no sound card on the test machine, so tests put this directory first
on ``PYTHONPATH`` and ``rtai`` imports it as ``sounddevice``.  It behaves like
a card: a thread calls the stream's callback with one period of frames each
period, at the card's own pace (``RTAI_FAKE_CARD_PPM`` faster or slower than
the system clock), and never waits for the application.

- ``RTAI_FAKE_PLAY_PATH``: an output stream appends what it plays, raw int16.
- ``RTAI_FAKE_MIC_PATH``: an input stream delivers this WAV file's frames,
  then silence.
"""

from __future__ import annotations

import os
import threading
import time
import wave
from typing import Any

import numpy as np

PERIOD_FRAMES = 256


class PortAudioError(Exception):
    """What the real module raises for PortAudio's errors."""


class _Stream:
    def __init__(
        self,
        *,
        samplerate: float,
        channels: int,
        dtype: str,
        callback: Any,
        blocksize: int = 0,
        device: Any = None,
        latency: Any = None,
    ) -> None:
        if dtype != "int16":
            raise PortAudioError(f"fake card: dtype {dtype} not supported")
        self.samplerate = samplerate
        self.channels = channels
        self.blocksize = blocksize or PERIOD_FRAMES
        self._callback = callback
        self._ppm = float(os.environ.get("RTAI_FAKE_CARD_PPM", "0"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-card", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rate = self.samplerate * (1 + self._ppm * 1e-6)
        start = time.monotonic()
        done = 0
        while not self._stop.is_set():
            done += self.blocksize
            delay = start + done / rate - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            self._period(self.blocksize)

    def _period(self, frames: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._finish()

    def _finish(self) -> None:
        pass


class OutputStream(_Stream):
    """Plays into ``RTAI_FAKE_PLAY_PATH``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._file = open(os.environ["RTAI_FAKE_PLAY_PATH"], "ab")  # noqa: SIM115

    def _period(self, frames: int) -> None:
        out = np.zeros((frames, self.channels), dtype=np.int16)
        self._callback(out, frames, None, None)
        self._file.write(out.astype("<i2").tobytes())
        self._file.flush()

    def _finish(self) -> None:
        self._file.close()


class InputStream(_Stream):
    """Records from the WAV file in ``RTAI_FAKE_MIC_PATH``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        with wave.open(os.environ["RTAI_FAKE_MIC_PATH"], "rb") as wav:
            raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
            self._data = raw.astype(np.int16).reshape(-1, wav.getnchannels())
        self._pos = 0

    def _period(self, frames: int) -> None:
        chunk = self._data[self._pos : self._pos + frames]
        block = np.zeros((frames, self.channels), dtype=np.int16)
        block[: chunk.shape[0]] = chunk
        self._pos += frames
        self._callback(block, frames, None, None)
