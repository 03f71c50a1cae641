"""A WAV file played as if it were a microphone array.

The file is read with the standard library's ``wave`` module: 8, 16, 24 and
32-bit integer PCM (24 and 32-bit samples keep their top 16 bits, 8-bit is
widened).  Python 3.11's ``wave`` does not read WAVE_FORMAT_EXTENSIBLE
headers, which some tools write for more than two channels; convert such a
file with ``sox in.wav -e signed -b 16 out.wav`` or ``ffmpeg -i in.wav
-c:a pcm_s16le -rf64 never out.wav``.

Buffers are paced in real time and the file **loops**: at its end, reading
goes on from its first frame, so a short file makes an endless source.  The
file's own rate is the only rate offered; 1 to the file's channel count
may be captured (the first N channels).
"""

from __future__ import annotations

import threading
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from appliance.config import AudioConfig, Capabilities
from appliance.errors import ConfigError, SourceUnavailable
from appliance.sources.base import SourceInfo, apply_gain, software_gain
from appliance.sources.pacing import Pacer


class WavSource:
    """A :class:`~appliance.sources.base.CaptureSource` reading a WAV file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.rate, self.file_channels, self.width = _header(self.path)
        self._cond = threading.Condition()
        self._wav: wave.Wave_read | None = None
        self._pacer: Pacer | None = None
        self._config: AudioConfig | None = None
        self._gain = 1.0
        self._lost = 0
        self._closed = True

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(spec=f"wav:{self.path}", kind="wav", model=f"WAV file {self.path.name}")

    @property
    def overruns(self) -> int:
        with self._cond:
            return self._lost + (self._pacer.overruns if self._pacer else 0)

    def probe(self) -> Capabilities:
        """The file's rate and 1 to its channel count; SourceUnavailable if it is gone."""
        if not self.path.is_file():
            raise SourceUnavailable(f"WAV file {self.path} is missing")
        return Capabilities((self.rate,), tuple(range(1, self.file_channels + 1)))

    def open(self, config: AudioConfig) -> None:
        """Open the file from its start."""
        if config.rate != self.rate:
            raise ConfigError(f"rate {config.rate} is not supported; this file is {self.rate} Hz")
        if not 1 <= config.channels <= self.file_channels:
            raise ConfigError(
                f"channels {config.channels} is not supported; this file has 1 to {self.file_channels}"
            )
        try:
            wav = wave.open(str(self.path), "rb")  # noqa: SIM115 (kept open until close)
        except (OSError, wave.Error, EOFError) as exc:
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

    def read(self) -> NDArray[np.int16]:
        """The next buffer of the file (looping at its end), at its real-time deadline."""
        with self._cond:
            while True:
                if self._closed or self._wav is None or self._pacer is None:
                    raise SourceUnavailable("the WAV source is closed")
                skipped = self._pacer.wait(self._cond, lambda: self._closed)
                if skipped is not None:
                    break
            wav, config, gain = self._wav, self._config, self._gain
            assert config is not None
            if skipped:
                self._frames(wav, skipped)
            raw = self._frames(wav, config.buffer_frames)
        samples = _to_int16(raw, self.width).reshape(config.buffer_frames, self.file_channels)
        return apply_gain(np.ascontiguousarray(samples[:, : config.channels]), gain)

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

    def _frames(self, wav: wave.Wave_read, count: int) -> bytes:
        """``count`` frames from the file, going back to its start as often as needed."""
        chunks: list[bytes] = []
        frame_bytes = self.width * self.file_channels
        need = count
        try:
            while need > 0:
                data = wav.readframes(need)
                if not data:
                    wav.rewind()
                    if wav.getnframes() == 0:
                        raise SourceUnavailable(f"WAV file {self.path} has no frames")
                    continue
                chunks.append(data)
                need -= len(data) // frame_bytes
        except (OSError, wave.Error, EOFError) as exc:
            raise SourceUnavailable(f"reading WAV file {self.path} failed: {exc}") from exc
        return b"".join(chunks)


def _header(path: Path) -> tuple[int, int, int]:
    """(rate, channels, bytes per sample) of a readable PCM WAV file, or ConfigError."""
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
    except FileNotFoundError:
        raise ConfigError(f"WAV file {path} does not exist") from None
    except (OSError, wave.Error, EOFError) as exc:
        raise ConfigError(
            f"{path} is not a WAV file this device reads ({exc}); use 8, 16, 24 or 32-bit "
            "integer PCM with a plain (not extensible) header"
        ) from exc
    if width not in (1, 2, 3, 4):
        raise ConfigError(f"{path} has {8 * width}-bit samples; use 8, 16, 24 or 32-bit PCM")
    return rate, channels, width


def _to_int16(raw: bytes, width: int) -> NDArray[np.int16]:
    """Little-endian PCM bytes of ``width`` bytes a sample as int16 (top 16 bits)."""
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").copy()
    if width == 1:  # 8-bit WAV is unsigned
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    as_bytes = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width)
    return as_bytes[:, width - 2 :].copy().view("<i2").reshape(-1)
