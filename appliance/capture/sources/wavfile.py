"""A WAV file played as if it were a microphone array.

The file is read with the standard library's ``wave`` module: 8, 16, 24 and
32-bit integer PCM (24 and 32-bit samples keep their top 16 bits, 8-bit is
widened).  Python 3.11's ``wave`` does not read WAVE_FORMAT_EXTENSIBLE
headers, which sox and ffmpeg write for more than two channels or more than
16 bits; such files with integer PCM samples are read by a small RIFF reader
here instead.

Buffers are paced in real time and the file **loops**: at its end, reading
goes on from its first frame, so a short file makes an endless source.  The
file's own rate is the only rate offered; 1 to the file's channel count
may be captured (the first N channels), and all of them by default.

Block times (:meth:`WavSource.capture_time`) are the frame count against
the wall clock (:class:`appliance.capture.sampleclock.SampleClock`): each
buffer's real-time deadline is its observation, and a stretch skipped after
the reader fell behind re-anchors them.

A file cut short while it is open (shorter than its header says) ends the
read with SourceUnavailable naming the frame it stopped at; ``probe`` then
refuses it until it is whole again, so the capture thread waits and reports
instead of spinning on a file with nothing left to read.
"""

from __future__ import annotations

import struct
import threading
import time
import wave
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
from numpy.typing import NDArray

from appliance.capture.config import AudioConfig, Capabilities
from appliance.capture.sampleclock import SampleClock
from appliance.capture.sources.base import SourceInfo, apply_gain, software_gain
from appliance.capture.sources.pacing import MAX_LAG_S, Pacer
from appliance.errors import ConfigError, SourceUnavailable

#: The format tag of WAVE_FORMAT_EXTENSIBLE, and of integer PCM.
EXTENSIBLE = 0xFFFE
PCM = 1


class _Frames(Protocol):
    """What the source needs of an open WAV file (``wave.Wave_read`` has it)."""

    def readframes(self, n: int) -> bytes: ...
    def rewind(self) -> None: ...
    def tell(self) -> int: ...
    def getnframes(self) -> int: ...
    def close(self) -> None: ...


class WavSource:
    """A :class:`~appliance.capture.sources.base.CaptureSource` reading a WAV file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.rate, self.file_channels, self.width = _header(self.path)
        self._cond = threading.Condition()
        self._wav: _Frames | None = None
        self._pacer: Pacer | None = None
        self._config: AudioConfig | None = None
        self._gain = 1.0
        self._lost = 0
        self._closed = True
        self._clock: SampleClock | None = None
        self._stamp: float | None = None

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(spec=f"wav:{self.path}", kind="wav", model=f"WAV file {self.path.name}")

    @property
    def overruns(self) -> int:
        with self._cond:
            return self._lost + (self._pacer.overruns if self._pacer else 0)

    @property
    def holds_s(self) -> float:
        """What the pacer lets the reader fall behind before it counts an overrun."""
        return MAX_LAG_S

    def probe(self) -> Capabilities:
        """The file's rate and 1 to its channel count (natively all of them);
        SourceUnavailable if it is gone, empty or shorter than its header says."""
        if not self.path.is_file():
            raise SourceUnavailable(f"WAV file {self.path} is missing")
        try:
            rate, channels, width = _header(self.path)
            held, declared = _frame_counts(self.path, channels * width)
        except (ConfigError, OSError, struct.error, ValueError) as exc:
            raise SourceUnavailable(f"WAV file {self.path} cannot be read: {exc}") from exc
        if declared == 0:
            raise SourceUnavailable(f"WAV file {self.path} holds no audio")
        if held < declared:
            raise SourceUnavailable(
                f"WAV file {self.path} holds {held} of the {declared} frames its header names: "
                "it was cut short; waiting for a whole file"
            )
        with self._cond:
            self.rate, self.file_channels, self.width = rate, channels, width
        return Capabilities(
            (rate,), tuple(range(1, channels + 1)), native_rate=rate, native_channels=channels
        )

    def open(self, config: AudioConfig) -> None:
        """Open the file from its start."""
        if config.rate != self.rate:
            raise ConfigError(f"rate {config.rate} is not supported; this file is {self.rate} Hz")
        if not 1 <= config.channels <= self.file_channels:
            raise ConfigError(
                f"channels {config.channels} is not supported; this file has 1 to {self.file_channels}"
            )
        try:
            wav = _open(self.path)
        except (OSError, wave.Error, EOFError, ValueError) as exc:
            raise SourceUnavailable(f"cannot open WAV file {self.path}: {exc}") from exc
        with self._cond:
            self._close_file()
            if self._pacer is not None:
                self._lost += self._pacer.overruns
            self._wav = wav
            self._config = config
            self._pacer = Pacer(config.rate, config.buffer_frames)
            self._gain = software_gain(config.volume)
            self._closed = False
            self._clock = SampleClock(config.rate)
            self._stamp = None

    def read(self) -> NDArray[np.int16]:
        """The next buffer of the file (looping at its end), at its real-time deadline."""
        with self._cond:
            while True:
                if self._closed or self._wav is None or self._pacer is None:
                    raise SourceUnavailable("the WAV source is closed")
                skipped = self._pacer.wait(self._cond, lambda: self._closed)
                if skipped is not None:
                    break
            wav, config, gain, clock = self._wav, self._config, self._gain, self._clock
            assert config is not None and clock is not None
            if skipped:
                self._frames(wav, skipped)
            raw = self._frames(wav, config.buffer_frames)
            self._stamp = clock.stamp(config.buffer_frames, time.time(), lost=skipped > 0)
        samples = _to_int16(raw, self.width).reshape(config.buffer_frames, self.file_channels)
        return apply_gain(np.ascontiguousarray(samples[:, : config.channels]), gain)

    def capture_time(self) -> float | None:
        """The capture time of the last frame of the buffer read last, from the frame count."""
        return self._stamp

    @property
    def clock_steps(self) -> int:
        """Times this open's block times were re-anchored (a stretch skipped after falling behind)."""
        return self._clock.steps if self._clock is not None else 0

    def set_volume(self, volume: int) -> None:
        """Software gain: 80 is unity, 0.5 dB a step (see ``software_gain``)."""
        with self._cond:
            self._gain = software_gain(volume)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._close_file()
            self._cond.notify_all()

    def _close_file(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None

    def _frames(self, wav: _Frames, count: int) -> bytes:
        """``count`` frames from the file, going back to its start as often as needed."""
        chunks: list[bytes] = []
        frame_bytes = self.width * self.file_channels
        need = count
        try:
            while need > 0:
                data = wav.readframes(need)
                got = len(data) // frame_bytes
                if got < need and wav.tell() < wav.getnframes():
                    # Short of the header's end: the file shrank under us.
                    raise SourceUnavailable(
                        f"WAV file {self.path} was cut short while open: it ends at frame "
                        f"{wav.tell()} of the {wav.getnframes()} its header names"
                    )
                if not got:
                    if wav.getnframes() == 0:
                        raise SourceUnavailable(f"WAV file {self.path} has no frames")
                    wav.rewind()
                    continue
                chunks.append(data[: got * frame_bytes])
                need -= got
        except (OSError, wave.Error, EOFError) as exc:
            raise SourceUnavailable(f"reading WAV file {self.path} failed: {exc}") from exc
        return b"".join(chunks)


def _header(path: Path) -> tuple[int, int, int]:
    """(rate, channels, bytes per sample) of a readable PCM WAV file, or ConfigError."""
    try:
        wav = _open(path)
    except FileNotFoundError:
        raise ConfigError(f"WAV file {path} does not exist") from None
    except (OSError, wave.Error, EOFError, ValueError) as exc:
        raise ConfigError(
            f"{path} is not a WAV file this device reads ({exc}); use 8, 16, 24 or 32-bit integer PCM"
        ) from exc
    info = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
    wav.close()
    if info[2] not in (1, 2, 3, 4):
        raise ConfigError(f"{path} has {8 * info[2]}-bit samples; use 8, 16, 24 or 32-bit PCM")
    return info


def _frame_counts(path: Path, frame_bytes: int) -> tuple[int, int]:
    """(whole frames the file holds, frames its header names) of its data chunk."""
    with path.open("rb") as f:
        riff, _, kind = struct.unpack("<4sI4s", f.read(12))
        if riff != b"RIFF" or kind != b"WAVE":
            raise ValueError("not a RIFF WAVE file")
        while True:
            header = f.read(8)
            if len(header) < 8:
                return 0, 0
            chunk, size = struct.unpack("<4sI", header)
            if chunk == b"data":
                start = f.tell()
                end = f.seek(0, 2)
                return (end - start) // frame_bytes, size // frame_bytes
            f.seek(size + (size & 1), 1)


def _open(path: Path) -> wave.Wave_read | _ExtensibleWav:
    """``wave`` for plain PCM files, the RIFF reader for WAVE_FORMAT_EXTENSIBLE ones."""
    try:
        return wave.open(str(path), "rb")
    except wave.Error as exc:
        if f"unknown format: {EXTENSIBLE}" not in str(exc):
            raise
    return _ExtensibleWav(path)


class _ExtensibleWav:
    """Integer PCM in a WAVE_FORMAT_EXTENSIBLE file, read like ``wave.Wave_read``."""

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("rb")
        try:
            self._parse()
        except (OSError, struct.error, ValueError):
            self._file.close()
            raise

    def _parse(self) -> None:
        riff, _, kind = struct.unpack("<4sI4s", self._file.read(12))
        if riff != b"RIFF" or kind != b"WAVE":
            raise ValueError("not a RIFF WAVE file")
        fmt: tuple[int, ...] | None = None
        while True:
            chunk, size = struct.unpack("<4sI", self._file.read(8))
            if chunk == b"fmt ":
                body = self._file.read(size + (size & 1))
                fmt = struct.unpack_from("<HHIIHHHHIH", body)
            elif chunk == b"data":
                break
            else:
                self._file.seek(size + (size & 1), 1)
        if fmt is None or fmt[0] != EXTENSIBLE or fmt[9] != PCM:
            raise ValueError("only integer PCM samples are supported")
        self._channels, self._rate, self._width = int(fmt[1]), int(fmt[2]), int(fmt[5]) // 8
        self._start = self._file.tell()
        self._nframes = int(size) // (self._width * self._channels)

    def getframerate(self) -> int:
        return self._rate

    def getnchannels(self) -> int:
        return self._channels

    def getsampwidth(self) -> int:
        return self._width

    def getnframes(self) -> int:
        return self._nframes

    def readframes(self, n: int) -> bytes:
        frame = self._width * self._channels
        left = self._start + self._nframes * frame - self._file.tell()
        return self._file.read(max(0, min(n * frame, left)))

    def rewind(self) -> None:
        self._file.seek(self._start)

    def tell(self) -> int:
        return (self._file.tell() - self._start) // (self._width * self._channels)

    def close(self) -> None:
        self._file.close()


def _to_int16(raw: bytes, width: int) -> NDArray[np.int16]:
    """Little-endian PCM bytes of ``width`` bytes a sample as int16 (top 16 bits; 16-bit: a view)."""
    if width == 2:
        return np.frombuffer(raw, dtype="<i2")
    if width == 1:  # 8-bit WAV is unsigned
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    as_bytes = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width)
    return as_bytes[:, width - 2 :].copy().view("<i2").reshape(-1)
