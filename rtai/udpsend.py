"""Sending a block's datagrams with few system calls (UDP segmentation offload).

A 48-channel block of 4096 frames is 270 datagrams; one ``sendto`` each is
most of the sender's CPU.  Linux (4.18 and later) takes a run of equal-sized
datagrams in one ``sendmsg`` with a ``UDP_SEGMENT`` size and cuts it into
separate datagrams itself: the same packets on the wire, a fraction of the
cost.  Where the kernel refuses, the sender falls back to one call per
datagram for good.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import sys
from collections.abc import Sequence

log = logging.getLogger(__name__)

UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)
"""The Linux socket option (``linux/udp.h``); Python names it only from 3.12."""
GSO_MAX_BYTES = 65000
"""A segmented send must fit one IP datagram's 64 KiB."""
GSO_MAX_SEGMENTS = 64
"""UDP_MAX_SEGMENTS of older kernels."""
_SEGMENT_SIZE = struct.Struct("=H")
_UNSUPPORTED = {errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP}


class DatagramSender:
    """Sends lists of datagrams on one socket, batching runs of equal size."""

    def __init__(self, sock: socket.socket, *, segmentation: bool = True) -> None:
        self.sock = sock
        self.segmentation = segmentation and sys.platform == "linux"
        """False once the kernel refused a segmented send (or off Linux)."""
        self.calls = 0
        """System calls made, for the benchmark."""

    def send(self, datagrams: Sequence[bytes], addr: tuple[str, int]) -> None:
        """Send ``datagrams`` in order; BlockingIOError when the socket buffer is full."""
        if not self.segmentation:
            self._one_by_one(datagrams, addr)
            return
        i, n = 0, len(datagrams)
        while i < n:
            size = len(datagrams[i])
            limit = min(n, i + GSO_MAX_SEGMENTS, i + max(1, GSO_MAX_BYTES // size))
            j = i + 1
            while j < limit and len(datagrams[j]) == size:
                j += 1
            if j - i == 1:
                self.sock.sendto(datagrams[i], addr)
            elif not self._segmented(datagrams[i:j], size, addr):
                self._one_by_one(datagrams[i:], addr)
                return
            self.calls += 1
            i = j

    def _segmented(self, run: Sequence[bytes], size: int, addr: tuple[str, int]) -> bool:
        control = [(socket.SOL_UDP, UDP_SEGMENT, _SEGMENT_SIZE.pack(size))]
        try:
            self.sock.sendmsg([b"".join(run)], control, 0, addr)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
            log.info("the kernel does not segment UDP (%s); sending one datagram per call", exc)
            self.segmentation = False
            return False
        return True

    def send_parts(self, parts: Sequence[tuple[bytes, memoryview]], addr: tuple[str, int]) -> int:
        """Send datagrams given as (header, payload) pairs, without joining them per datagram.

        Returns how many were sent: fewer than ``len(parts)`` when the socket
        buffer filled (the rest of the block is dropped, not queued).
        """
        sent, n = 0, len(parts)
        try:
            while sent < n:
                size = len(parts[sent][0]) + len(parts[sent][1])
                limit = min(n, sent + GSO_MAX_SEGMENTS, sent + max(1, GSO_MAX_BYTES // size))
                end = sent + 1
                while end < limit and len(parts[end][0]) + len(parts[end][1]) == size:
                    end += 1
                if (
                    end - sent > 1
                    and self.segmentation
                    and self._segmented_parts(parts[sent:end], size, addr)
                ):
                    self.calls += 1
                    sent = end
                    continue
                header, payload = parts[sent]
                self.sock.sendmsg([header, payload], [], 0, addr)
                self.calls += 1
                sent += 1
        except BlockingIOError:
            return sent
        return sent

    def _segmented_parts(
        self, run: Sequence[tuple[bytes, memoryview]], size: int, addr: tuple[str, int]
    ) -> bool:
        buffers = [buf for pair in run for buf in pair]
        control = [(socket.SOL_UDP, UDP_SEGMENT, _SEGMENT_SIZE.pack(size))]
        try:
            self.sock.sendmsg(buffers, control, 0, addr)
        except OSError as exc:
            if isinstance(exc, BlockingIOError) or exc.errno not in _UNSUPPORTED:
                raise
            log.info("the kernel does not segment UDP (%s); sending one datagram per call", exc)
            self.segmentation = False
            return False
        return True

    def _one_by_one(self, datagrams: Sequence[bytes], addr: tuple[str, int]) -> None:
        sendto = self.sock.sendto
        for datagram in datagrams:
            sendto(datagram, addr)
        self.calls += len(datagrams)
