"""Audio for scripts on the device through one shared-memory ring (``browserinterface.ring``).

:class:`RingWriter` owns one sealed ``memfd`` and writes each block once;
:class:`RingHub` keeps a ring of the capture's current shape while any
script uses one, written on the capture thread as each block is captured
(``appliance.capture.handoff.Handoff.direct``), and the Unix socket through which a
script that said ``ring: true`` in its hello fetches the ring's file
descriptor (``SCM_RIGHTS``), proving who it is with the one-time key its
``welcome`` carried over the authenticated WebSocket.  The descriptor is
sealed against writes (``F_SEAL_FUTURE_WRITE``), so no reader can write into
it, not even by reopening it through ``/proc``; only the device's own
mapping, made before the seal, writes.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import json
import logging
import mmap
import os
import secrets
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from appliance.capture.block import Block
from browserinterface import ring as R

log = logging.getLogger(__name__)

F_SEAL_FUTURE_WRITE = 0x0010
SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | F_SEAL_FUTURE_WRITE | fcntl.F_SEAL_SEAL
#: Longest key line a fetching client may send, and how long it may take.
MAX_KEY_LINE = 128
FETCH_TIMEOUT_S = 2.0
#: Fetches being answered at once (each is a few system calls).
MAX_FETCHING = 16


class RingWriter:
    """One ring: made for one shape, written by one thread at a time (the hub's lock)."""

    def __init__(self, shape: R.Shape) -> None:
        self.shape = shape
        self.fd = os.memfd_create("micarray-audio-ring", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(self.fd, shape.total_bytes)
            self._map = mmap.mmap(
                self.fd, shape.total_bytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
            fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, SEALS)
            # What readers get: a read-only description of the same memory (the seals are the wall).
            self.read_fd = os.open(f"/proc/self/fd/{self.fd}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(self.fd)
            raise
        R.HEADER.pack_into(
            self._map, 0, R.MAGIC, R.LAYOUT_VERSION, shape.slots, shape.slot_bytes, shape.channels,
            shape.frames, shape.rate, R.STATE_OPEN, 0, 0.0, 0, 0,
        )  # fmt: skip
        raw = np.frombuffer(self._map, dtype=np.uint8)
        self._wake_address = raw.ctypes.data + R.WAKE_AT
        samples = 2 * shape.frames * shape.channels
        self._slots = [
            raw[at : at + samples].view(np.int16).reshape(shape.frames, shape.channels)
            for at in (
                R.HEADER_BYTES + i * shape.slot_bytes + R.SLOT_HEADER_BYTES for i in range(shape.slots)
            )
        ]
        self.written = 0
        self._wake = 0

    def write(self, block: Block, lost: int) -> None:
        """Put ``block`` in the next slot and wake every reader (one futex call)."""
        index = self.written
        slot = index % self.shape.slots
        at = R.HEADER_BYTES + slot * self.shape.slot_bytes
        struct.pack_into("<Q", self._map, at, index + 1)  # begin: readers of the old block see it torn
        R.fence()
        np.copyto(self._slots[slot], block.data)
        struct.pack_into("<QQd", self._map, at + 8, index + 1, block.seq, block.time)
        R.fence()
        self.written = index + 1
        self._wake = (self._wake + 1) & 0xFFFFFFFF
        struct.pack_into("<QdQI", self._map, R.WRITTEN_AT, self.written, block.time, lost, self._wake)
        R.futex_wake(self._wake_address)

    def close(self) -> None:
        """Tell readers to fetch the new ring, and let this one go (readers keep their mappings)."""
        struct.pack_into("<I", self._map, R.STATE_AT, R.STATE_CLOSED)
        R.futex_wake(self._wake_address)
        self._slots.clear()
        with contextlib.suppress(BufferError):
            self._map.close()
        os.close(self.read_fd)
        os.close(self.fd)


class RingHub:
    """The ring of the capture's current shape, while any script reads one.

    Blocks are written on the capture thread (:meth:`write_now`); readers come and
    go on the loop. ``_lock`` keeps the ring from being replaced or let go while a
    block is written into it, or its descriptor sent.
    """

    def __init__(self, rate_of: Callable[[], int]) -> None:
        self._rate_of = rate_of
        self._lock = threading.Lock()
        self._shape: tuple[int, int] | None = None
        """(channels, frames) of the newest block, so a first reader gets a ring at once."""
        self._keys: dict[str, str] = {}
        """One-time fetch key -> the session it was given to."""
        self._readers: set[str] = set()
        self.ring: RingWriter | None = None
        self.socket_path: Path | None = None
        self._server: asyncio.AbstractServer | None = None
        self._fetching = 0
        self._lost = 0
        self.on_change: Callable[[], None] | None = None
        """Called when the first reader came or the last one left (the service batches
        capture periods only while nobody needs each one at once)."""

    @property
    def has_readers(self) -> bool:
        """True while some script reads the ring: it needs each block as soon as it is captured."""
        return bool(self._readers)

    def _readers_changed(self, before: bool) -> None:
        if before != self.has_readers and self.on_change is not None:
            self.on_change()

    @staticmethod
    def usable() -> bool:
        return R.available()

    async def listen(self, path: Path) -> None:
        """Serve fetches on the Unix socket ``path`` (any local user may connect; the key decides)."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._server = await asyncio.start_unix_server(self._fetch, path=str(path))
        os.chmod(path, 0o666)
        self.socket_path = path

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        with self._lock:
            self._drop_ring()

    def offer(self, session_id: str) -> dict[str, str] | None:
        """The ``ring`` field of a welcome for a script on this machine, or None without a ring."""
        if self.socket_path is None or not R.available():
            return None
        key = secrets.token_urlsafe(24)
        self._keys[key] = session_id
        return {"socket": str(self.socket_path), "key": key}

    def forget(self, session_id: str) -> None:
        """The session ended: its key is void; the last reader gone, the ring goes too."""
        for key in [k for k, s in self._keys.items() if s == session_id]:
            del self._keys[key]
        before = self.has_readers
        self._readers.discard(session_id)
        self._readers_changed(before)
        if not self._readers:
            with self._lock:
                self._drop_ring()

    def write_now(self, block: Block, lost: int) -> None:
        """On the capture thread: write ``block`` into the ring, making a new one when the shape
        changed; ``lost`` blocks the source lost before it count as loss for the readers."""
        frames, channels = block.data.shape
        with self._lock:
            self._shape = (channels, frames)
            self._lost += lost
            if not self._readers:
                return
            ring = self.ring
            if ring is None or (ring.shape.frames, ring.shape.channels) != (frames, channels):
                ring = self._new_ring(channels, frames)
            ring.write(block, self._lost)

    def _new_ring(self, channels: int, frames: int) -> RingWriter:
        self._drop_ring()
        self._lost = 0
        self.ring = RingWriter(R.Shape.for_audio(channels, frames, self._rate_of()))
        return self.ring

    def _drop_ring(self) -> None:
        if self.ring is not None:
            self.ring.close()
            self.ring = None

    async def _fetch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._fetching >= MAX_FETCHING:
            writer.close()
            return
        self._fetching += 1
        try:
            line = await asyncio.wait_for(reader.readline(), FETCH_TIMEOUT_S)
            self._answer(line, writer)
        except (TimeoutError, ValueError, ConnectionError):
            pass  # a client that does not follow the exchange gets nothing
        finally:
            self._fetching -= 1
            writer.close()

    def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> None:
        key = line[:MAX_KEY_LINE].strip().decode("ascii", "replace")
        session = self._keys.get(key)
        sock = writer.get_extra_info("socket")
        if session is None:
            _send(sock, {"error": "that ring key is not (or no longer) valid"}, None)
            return
        before = self.has_readers
        self._readers.add(session)
        self._readers_changed(before)
        with self._lock:
            ring = self.ring
            if ring is None and self._shape is not None:
                ring = self._new_ring(*self._shape)
            if ring is None:
                _send(sock, {"error": "no block was captured yet; fetch again", "retry": True}, None)
                return
            _send(sock, {"ok": True}, ring.read_fd)


def _send(sock: socket.socket, answer: dict[str, object], fd: int | None) -> None:
    payload = json.dumps(answer).encode() + b"\n"
    ancillary = [] if fd is None else [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
    raw = socket.socket(fileno=os.dup(sock.fileno()))
    try:
        raw.sendmsg([payload], ancillary)
    finally:
        raw.close()
