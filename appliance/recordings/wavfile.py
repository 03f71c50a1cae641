"""A WAV file written as audio arrives, valid up to the last block after a crash.

The header is written first with sizes of zero and a 28-byte ``JUNK`` chunk
where an RF64 ``ds64`` chunk fits (the EBU's recommended layout), so a file
that grows past 4 GiB becomes RF64 in place.  :meth:`WavWriter.sync` rewrites
the sizes and fsyncs every few seconds; :func:`repair` puts right the sizes of
a file whose writer was killed (sizes that lag the data, a torn last frame).
Samples are 16-bit little-endian PCM, interleaved.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Offset of the audio data: RIFF(12) + JUNK/ds64(8+28) + fmt(8+16) + data header(8).
DATA_OFFSET = 80
_DS64_BODY = 28
_U32_MAX = 0xFFFFFFFF
SAMPLE_BYTES = 2


class WavError(ValueError):
    """A file that is not a WAV this module wrote or can repair."""


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says (after :func:`repair`, what the file holds)."""

    rate: int
    channels: int
    frames: int
    data_bytes: int

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.frames / self.rate if self.rate else 0.0


def _header(rate: int, channels: int, data_bytes: int) -> bytes:
    block_align = channels * SAMPLE_BYTES
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block_align, block_align, 16)
    riff_size = DATA_OFFSET - 8 + data_bytes
    if riff_size <= _U32_MAX:
        head = b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + b"JUNK" + struct.pack("<I", _DS64_BODY)
        head += bytes(_DS64_BODY)
        data_size = data_bytes
    else:
        # RF64 (EBU Tech 3306): the 32-bit sizes say "see ds64", which holds the real ones.
        ds64 = struct.pack("<QQQI", riff_size, data_bytes, data_bytes // block_align, 0)
        head = (
            b"RF64" + struct.pack("<I", _U32_MAX) + b"WAVE" + b"ds64" + struct.pack("<I", _DS64_BODY) + ds64
        )
        data_size = _U32_MAX
    head += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size)
    assert len(head) == DATA_OFFSET
    return head


class WavWriter:
    """Appends interleaved int16 frames; the header follows with :meth:`sync`."""

    def __init__(self, path: Path, rate: int, channels: int) -> None:
        self.path = path
        self.rate = rate
        self.channels = channels
        self.data_bytes = 0
        self._file: BinaryIO = path.open("xb")
        self._file.write(_header(rate, channels, 0))

    @property
    def frames(self) -> int:
        """Frames written so far."""
        return self.data_bytes // (self.channels * SAMPLE_BYTES)

    def write(self, pcm: bytes) -> None:
        """Append whole frames of 16-bit little-endian samples."""
        if len(pcm) % (self.channels * SAMPLE_BYTES):
            raise WavError(f"{len(pcm)} bytes are not whole frames of {self.channels} channels")
        self._file.write(pcm)
        self.data_bytes += len(pcm)

    def sync(self) -> None:
        """Make everything written durable and the header tell its true size."""
        self._file.flush()
        end = self._file.tell()
        self._file.seek(0)
        self._file.write(_header(self.rate, self.channels, self.data_bytes))
        self._file.seek(end)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Final header, fsync, close."""
        if not self._file.closed:
            self.sync()
            self._file.close()


def read_info(path: Path) -> WavInfo:
    """The header of a WAV or RF64 file written by :class:`WavWriter` (or any plain PCM WAV)."""
    with path.open("rb") as f:
        head = f.read(4096)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise WavError(f"{path.name} is not a WAV file")
    pos, rate, channels, data_size, ds64_data = 12, 0, 0, None, None
    while pos + 8 <= len(head):
        cid, size = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        body = pos + 8
        if cid == b"ds64":
            ds64_data = struct.unpack_from("<Q", head, body + 8)[0]
        elif cid == b"fmt ":
            _fmt, channels, rate = struct.unpack_from("<HHI", head, body)
        elif cid == b"data":
            data_size = ds64_data if size == _U32_MAX and ds64_data is not None else size
            return WavInfo(rate, channels, data_size // max(1, channels * SAMPLE_BYTES), data_size)
        pos = body + size + (size & 1)
    raise WavError(f"{path.name} has no data chunk in its first 4096 bytes")


def repair(path: Path) -> WavInfo:
    """Make a cut recording valid: whole frames only, sizes that match the file.

    For files this module writes (data at :data:`DATA_OFFSET`).  Returns what
    the file holds afterwards; a file already right is left untouched.
    """
    info = read_info(path)
    frame = info.channels * SAMPLE_BYTES
    if not info.channels or not info.rate:
        raise WavError(f"{path.name} has no usable format chunk")
    size = path.stat().st_size
    data_bytes = (size - DATA_OFFSET) // frame * frame
    if size - DATA_OFFSET == info.data_bytes == data_bytes:
        return info
    with path.open("r+b") as f:
        f.truncate(DATA_OFFSET + data_bytes)
        f.seek(0)
        f.write(_header(info.rate, info.channels, data_bytes))
        f.flush()
        os.fsync(f.fileno())
    return WavInfo(info.rate, info.channels, data_bytes // frame, data_bytes)
