"""The file formats a recording is written in, behind one small interface.

``wav``: :class:`~appliance.recordings.wavfile.WavWriter` (RF64 past 4 GiB,
sizes rewritten at every sync).  ``flac``: libsndfile through ``soundfile``,
lossless and about half the size; FLAC frames are self-delimiting, so a file
cut short still decodes up to its last whole frame (its header then gives no
total length, which FLAC allows).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from appliance.recordings.wavfile import WavWriter

FORMATS = ("wav", "flac")


class AudioWriter(Protocol):
    """Append blocks, make them durable now and then, close at the end."""

    @property
    def frames(self) -> int:
        """Frames written so far."""
        ...

    def write(self, data: NDArray[np.int16]) -> None:
        """Append ``(frames, channels)`` int16 samples."""
        ...

    def sync(self) -> None:
        """Make what was written durable (and valid as a file)."""
        ...

    def close(self) -> None:
        """Finish the file."""
        ...


class Wav:
    """WAV through our writer."""

    def __init__(self, path: Path, rate: int, channels: int) -> None:
        self._writer = WavWriter(path, rate, channels)

    @property
    def frames(self) -> int:
        """Frames written so far."""
        return self._writer.frames

    def write(self, data: NDArray[np.int16]) -> None:
        """Append the samples, little-endian and interleaved."""
        self._writer.write(np.ascontiguousarray(data, dtype="<i2").tobytes())

    def sync(self) -> None:
        """Sizes in the header, then fsync."""
        self._writer.sync()

    def close(self) -> None:
        """Final header."""
        self._writer.close()


class Flac:
    """FLAC through libsndfile, into a file object of ours so it can be fsynced."""

    def __init__(self, path: Path, rate: int, channels: int) -> None:
        import soundfile  # noqa: PLC0415  (only a FLAC recording needs libsndfile)

        self._raw = path.open("xb")
        self._sf = soundfile.SoundFile(
            self._raw, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16"
        )
        self._frames = 0

    @property
    def frames(self) -> int:
        """Frames written so far."""
        return self._frames

    def write(self, data: NDArray[np.int16]) -> None:
        """Encode and append."""
        self._sf.write(data)
        self._frames += int(data.shape[0])

    def sync(self) -> None:
        """Flush the encoder and the file."""
        self._sf.flush()
        self._raw.flush()
        os.fsync(self._raw.fileno())

    def close(self) -> None:
        """The encoder writes the total length into the header at close."""
        if not self._sf.closed:
            self._sf.close()
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()


def open_writer(fmt: str, path: Path, rate: int, channels: int) -> AudioWriter:
    """A writer for ``fmt`` (one of :data:`FORMATS`) creating ``path``, which must not exist."""
    if fmt == "wav":
        return Wav(path, rate, channels)
    if fmt == "flac":
        return Flac(path, rate, channels)
    raise ValueError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")


#: Frames decoded per read while repairing: what a torn end can cost at most.
REPAIR_FRAMES = 1024


def repair_flac(path: Path) -> int:
    """Rewrite a FLAC cut short as a complete file of every frame that decodes; returns frames.

    Blocking and about as slow as encoding the file again; for the start of
    the service, for recordings a crash left unfinished.
    """
    import soundfile  # noqa: PLC0415

    tmp = path.with_name(f".{path.name}.repair")
    frames = 0
    with soundfile.SoundFile(path) as src, tmp.open("wb") as raw:
        with soundfile.SoundFile(
            raw, "w", samplerate=src.samplerate, channels=src.channels, format="FLAC", subtype="PCM_16"
        ) as dst:
            while True:
                try:
                    block = src.read(REPAIR_FRAMES, dtype="int16", always_2d=True)
                except soundfile.LibsndfileError:
                    break  # the torn last frame
                if not len(block):
                    break
                dst.write(block)
                frames += len(block)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, path)
    return frames
