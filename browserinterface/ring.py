"""The shared-memory audio ring: one copy of each block for every script on the device.

The device writes each captured block once into a ring of fixed-size slots
in a sealed ``memfd`` that every local reader maps read-only (as JACK and
PipeWire share their buffers); the WebSocket stays for control.  Layout
(little-endian), fixed by :data:`HEADER` and :data:`SLOT`:

- header (64 bytes): magic, layout version, slot count, slot size, channels,
  frames, rate, state (open or closed: the shape changed, fetch the new ring),
  the count of blocks written, the newest block's time, blocks lost before
  the ring (capture overruns), and the 32-bit wake word readers wait on;
- each slot: ``begin`` and ``end`` (the ring index + 1 of the block in it,
  written before and after the samples), the block's capture sequence
  number and time, then the samples, int16 interleaved.

A reader that wants block ``i`` reads ``end``, the samples, then ``begin``:
both must be ``i + 1``, else the writer lapped it meanwhile and the block is
lost (told as loss, like a block the device could not send in time).  The
writer wakes every waiting reader with one ``futex`` wake on the wake word,
whatever their number (``bench/ring_wake.py`` measures it against an eventfd
per reader: about the same cost to the device at 16 readers).  On processors that may reorder stores (ARM), a
futex call on a private word serves as the memory barrier between the
samples and the sequence numbers on both sides; x86 keeps stores in order.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import struct
import sys
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MAGIC = 0x474E524D  # "MRNG"
LAYOUT_VERSION = 1
#: magic, version, slots, slot_bytes, channels, frames, rate, state, written, newest_time, lost, wake
HEADER = struct.Struct("<IIIIIIIIQdQI")
HEADER_BYTES = 64
WRITTEN_AT = 32
NEWEST_AT = 40
LOST_AT = 48
WAKE_AT = 56
STATE_AT = 28
#: begin, end, capture seq, capture time
SLOT = struct.Struct("<QQQd")
SLOT_HEADER_BYTES = 32
STATE_OPEN, STATE_CLOSED = 0, 1
#: Audio a ring holds, in seconds (at least MIN_SLOTS blocks).
RING_SECONDS = 0.75
MIN_SLOTS = 8
MAX_RING_BYTES = 64 << 20

_FUTEX_WAIT, _FUTEX_WAKE, _FUTEX_PRIVATE = 0, 1, 128
#: The futex system call's number per machine (Linux); elsewhere there is no ring.
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "arm64": 98, "armv7l": 240, "armv6l": 240, "i686": 240}
_STRONG_ORDER = platform.machine() in ("x86_64", "i686", "AMD64")


class RingError(OSError):
    """The ring cannot be used; the script falls back to audio over the WebSocket."""


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


# Only on Linux: a laptop (macOS, Windows) imports this module too, and never maps a ring.
_NR = _SYS_FUTEX.get(platform.machine()) if sys.platform.startswith("linux") else None
_syscall = ctypes.CDLL(None, use_errno=True).syscall if _NR is not None else None
_fence_word = ctypes.c_uint32(0)


def available() -> bool:
    """Whether this machine can map the ring (Linux with a futex call we know)."""
    return _syscall is not None and hasattr(os, "memfd_create")


def _futex(*args: object) -> None:
    if _syscall is None:
        raise RingError("this machine has no futex call this module knows")
    _syscall(ctypes.c_long(_NR or 0), *args)


def futex_wake(address: int) -> None:
    """Wake every process waiting on the 32-bit word at ``address`` (shared mapping)."""
    _futex(ctypes.c_void_p(address), ctypes.c_int(_FUTEX_WAKE), ctypes.c_int(2**31 - 1))


def futex_wait(address: int, expected: int, timeout_s: float) -> None:
    """Sleep until woken, unless the word no longer holds ``expected``, at most ``timeout_s``."""
    ts = _Timespec(int(timeout_s), int((timeout_s % 1) * 1e9))
    _futex(ctypes.c_void_p(address), ctypes.c_int(_FUTEX_WAIT), ctypes.c_uint32(expected), ctypes.byref(ts))


def fence() -> None:
    """A full memory barrier where stores may be reordered (a futex call implies one)."""
    if not _STRONG_ORDER:
        _futex(
            ctypes.c_void_p(ctypes.addressof(_fence_word)),
            ctypes.c_int(_FUTEX_WAKE | _FUTEX_PRIVATE),
            ctypes.c_int(0),
        )


@dataclass(frozen=True, slots=True)
class Shape:
    """What a ring holds: its slots and the blocks' shape."""

    slots: int
    channels: int
    frames: int
    rate: int

    @property
    def slot_bytes(self) -> int:
        data = self.frames * self.channels * 2
        return (SLOT_HEADER_BYTES + data + 63) // 64 * 64

    @property
    def total_bytes(self) -> int:
        return HEADER_BYTES + self.slots * self.slot_bytes

    @classmethod
    def for_audio(cls, channels: int, frames: int, rate: int) -> Shape:
        slots = max(MIN_SLOTS, round(RING_SECONDS * rate / frames))
        return cls(slots, channels, frames, rate)


@dataclass(frozen=True, slots=True)
class RingBlock:
    """One block read from the ring (the same fields as a decoded audio frame)."""

    seq: int
    time: float
    data: NDArray[np.int16]


class RingReader:
    """A read-only view of the device's ring, from the file descriptor it passed."""

    def __init__(self, fd: int) -> None:
        try:
            size = os.fstat(fd).st_size
            if size < HEADER_BYTES or size > MAX_RING_BYTES:
                raise RingError(f"ring of {size} bytes; expected {HEADER_BYTES} to {MAX_RING_BYTES}")
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)
        magic, version, slots, slot_bytes, channels, frames, rate, *_ = HEADER.unpack_from(self._map)
        shape = Shape(slots, channels, frames, rate)
        if magic != MAGIC or version != LAYOUT_VERSION:
            raise RingError(f"ring layout {magic:#x} v{version}; this client reads v{LAYOUT_VERSION}")
        if (
            slots < 1
            or channels < 1
            or frames < 1
            or shape.slot_bytes != slot_bytes
            or shape.total_bytes > size
        ):
            raise RingError(f"ring header does not match its size ({shape}, {size} bytes)")
        self.shape = shape
        self._samples = frames * channels
        self._view = np.frombuffer(self._map, dtype=np.uint8)
        self.wake_address = self._view.ctypes.data + WAKE_AT
        self.next = self.written()
        """Ring index of the next block to read (from now: older blocks are not delivered)."""
        self.lost_seen = self.lost_before()

    def written(self) -> int:
        """Blocks the device has written into this ring."""
        value: int = struct.unpack_from("<Q", self._map, WRITTEN_AT)[0]
        return value

    def newest_time(self) -> float:
        value: float = struct.unpack_from("<d", self._map, NEWEST_AT)[0]
        return value

    def lost_before(self) -> int:
        """Blocks lost before the ring (capture overruns) since the ring was made."""
        value: int = struct.unpack_from("<Q", self._map, LOST_AT)[0]
        return value

    def wake_word(self) -> int:
        value: int = struct.unpack_from("<I", self._map, WAKE_AT)[0]
        return value

    @property
    def closed(self) -> bool:
        """The device stopped writing here (the shape changed): fetch the new ring."""
        return bool(struct.unpack_from("<I", self._map, STATE_AT)[0] == STATE_CLOSED)

    def slot_time(self, index: int) -> float | None:
        """Capture time of block ``index`` if it is still in its slot."""
        at = HEADER_BYTES + (index % self.shape.slots) * self.shape.slot_bytes
        begin, end, _seq, when = SLOT.unpack_from(self._map, at)
        return when if begin == end == index + 1 else None

    def read(self, index: int) -> RingBlock | None:
        """Block ``index`` copied out, or None when the writer lapped (or is writing) it."""
        at = HEADER_BYTES + (index % self.shape.slots) * self.shape.slot_bytes
        _begin, end, seq, when = SLOT.unpack_from(self._map, at)
        if end != index + 1:
            return None
        fence()
        start = at + SLOT_HEADER_BYTES
        data = self._view[start : start + 2 * self._samples].view(np.int16).copy()
        fence()
        if struct.unpack_from("<Q", self._map, at)[0] != index + 1:
            return None  # torn: overwritten while it was copied
        return RingBlock(seq, when, data.reshape(self.shape.frames, self.shape.channels))

    def wait(self, timeout_s: float) -> None:
        """Sleep until the device writes a block (or ``timeout_s``), unless one is there already."""
        word = self.wake_word()
        if self.written() > self.next or self.closed:
            return
        futex_wait(self.wake_address, word, timeout_s)

    def kick(self) -> None:
        """Wake this process's reader (and, harmlessly, other readers of the ring) from another thread."""
        futex_wake(self.wake_address)
