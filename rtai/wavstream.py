"""Recordings written as they arrive: WAV to a file or a pipe, RF64 past 4 GiB, or raw.

Python's ``wave`` writes its header at the end by seeking back, which a pipe
cannot do ("Illegal seek") and which leaves a file without a valid header
until the recording ends. :class:`AudioSink` writes the header first:

- to a **pipe** (``--out -``, a FIFO): sizes unknown, marked 0xFFFFFFFF as
  sox, ffmpeg and other streaming readers expect; samples follow at once.
- to a **file**: a RIFF/WAVE header with a 28-byte ``JUNK`` chunk kept for
  later, rewritten every :data:`HEADER_EVERY_S` of audio so a crash or a
  power cut leaves a file that plays up to the last rewrite; when the data
  passes 4 GiB the ``JUNK`` chunk becomes ``ds64`` and the file RF64
  (EBU Tech 3306), which ffmpeg and sox read.
- ``raw``: interleaved signed 16-bit little-endian samples, no header.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Literal

import numpy as np
from numpy.typing import NDArray

Format = Literal["wav", "raw"]

HEADER_EVERY_S = 1.0
"""Seconds of audio between header rewrites of a seekable file."""
UNKNOWN_SIZE = 0xFFFFFFFF
"""What a 32-bit size field says when the size is not known (a stream) or too big (RF64)."""
RIFF_LIMIT = 0xFFFFFFFF
SAMPLE_BYTES = 2
_FMT = struct.Struct("<4sIHHIIHH")  # "fmt ", 16, PCM, channels, rate, byte rate, block align, bits
_DS64 = struct.Struct("<4sIQQQI")  # "ds64", 28, RIFF size, data size, sample count, table length
HEADER_BYTES = 12 + _DS64.size + _FMT.size + 8
"""A file's RIFF/WAVE + JUNK-or-ds64 + fmt + the data chunk's header: samples start here."""


class AudioSink:
    """One format's samples to one open binary file object (the caller owns closing it)."""

    def __init__(self, out: BinaryIO, rate: int, channels: int, fmt: Format = "wav") -> None:
        self.out = out
        self.rate = rate
        self.channels = channels
        self.format = fmt
        self.frames = 0
        self.seekable = _seekable(out)
        self._since_header = 0
        if fmt == "wav":
            self.out.write(self._header(None if not self.seekable else 0))
            self.out.flush()

    def write(self, data: NDArray[np.int16]) -> None:
        """Append ``(frames, channels)`` samples; they reach the file or pipe now."""
        self.out.write(np.ascontiguousarray(data, dtype="<i2").tobytes())
        frames = int(data.shape[0])
        self.frames += frames
        self._since_header += frames
        if self.format == "wav" and self.seekable and self._since_header >= HEADER_EVERY_S * self.rate:
            self._rewrite_header()
        self.out.flush()

    def finish(self) -> None:
        """Put the final sizes in the header (files only; a pipe's reader reads to the end)."""
        if self.format == "wav" and self.seekable:
            self._rewrite_header()
        self.out.flush()

    @property
    def data_bytes(self) -> int:
        return self.frames * self.channels * SAMPLE_BYTES

    def _rewrite_header(self) -> None:
        end = self.out.tell()
        self.out.seek(0)
        self.out.write(self._header(self.data_bytes))
        self.out.seek(end)
        self._since_header = 0

    def _header(self, data_bytes: int | None) -> bytes:
        """The header for ``data_bytes`` of samples (None: unknown, a stream)."""
        align = self.channels * SAMPLE_BYTES
        fmt = _FMT.pack(b"fmt ", 16, 1, self.channels, self.rate, self.rate * align, align, 16)
        if data_bytes is None:
            # The canonical 44-byte header: the simplest readers of a pipe expect no other chunk.
            unknown = struct.pack("<I", UNKNOWN_SIZE)
            return b"RIFF" + unknown + b"WAVE" + fmt + b"data" + unknown
        riff_bytes = HEADER_BYTES - 8 + data_bytes
        if riff_bytes > RIFF_LIMIT:
            ds64 = _DS64.pack(b"ds64", 28, riff_bytes, data_bytes, self.frames, 0)
            return (
                b"RF64"
                + struct.pack("<I", UNKNOWN_SIZE)
                + b"WAVE"
                + ds64
                + fmt
                + b"data"
                + (struct.pack("<I", UNKNOWN_SIZE))
            )
        junk = b"JUNK" + struct.pack("<I", 28) + bytes(28)
        return (
            b"RIFF"
            + struct.pack("<I", riff_bytes)
            + b"WAVE"
            + junk
            + fmt
            + b"data"
            + (struct.pack("<I", data_bytes))
        )


def _seekable(out: BinaryIO) -> bool:
    try:
        return out.seekable()
    except (OSError, ValueError):
        return False
