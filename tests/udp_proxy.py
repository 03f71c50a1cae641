"""A seeded lossy UDP proxy for tests: drops, delays, duplicates and reorders datagrams.

There is no netem here, so network trouble is made in user space.  The proxy
listens on an RTP/RTCP port pair and forwards to another pair on loopback;
RTP datagrams suffer a repeatable pattern drawn from ``random.Random(seed)``,
RTCP passes untouched.  It records what it did so a test can compare the
receiver's statistics with the truth.
"""

from __future__ import annotations

import heapq
import random
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

from rtai.rtp import RtpPacket

HOLD_LIMIT_S = 0.02
"""A datagram held back for reordering goes out after this long even if none follows."""


@dataclass
class Faults:
    """Probabilities per RTP datagram, and how long a delay lasts."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    """Hold the datagram back until the next one has gone."""
    delay: float = 0.0
    delay_s: tuple[float, float] = (0.005, 0.030)
    warmup: int = 5
    """Datagrams passed untouched first, so the receiver's timeline starts at the first."""


@dataclass
class ProxyLog:
    """What the proxy did, by RTP sequence number (16-bit, as on the wire)."""

    seen: list[int] = field(default_factory=list)
    forwarded: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)
    delayed: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)


class UdpProxy:
    """Forwards ``127.0.0.1:port`` (+1) to ``127.0.0.1:target`` (+1) with faults."""

    def __init__(self, target_port: int, faults: Faults, seed: int = 0) -> None:
        self.target = target_port
        self.faults = faults
        self.log = ProxyLog()
        self._rng = random.Random(seed)
        self._rtp, self._rtcp = self._bind_pair()
        self._out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._heap: list[tuple[float, int, bytes]] = []
        self._held: bytes | None = None
        self._held_at = 0.0
        self._counter = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-proxy")
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._rtp.getsockname()[1])

    @staticmethod
    def _bind_pair() -> tuple[socket.socket, socket.socket]:
        for _ in range(50):
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtp.bind(("127.0.0.1", 0))
                rtcp.bind(("127.0.0.1", rtp.getsockname()[1] + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            return rtp, rtcp
        raise OSError("no free port pair for the proxy")

    def idle(self) -> bool:
        """True when nothing is held back or waiting for its delay."""
        with self._lock:
            return not self._heap and self._held is None

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in (self._rtp, self._rtcp, self._out):
            sock.close()

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._rtp, selectors.EVENT_READ, False)
            sel.register(self._rtcp, selectors.EVENT_READ, True)
            while not self._stop.is_set():
                with self._lock:
                    wait = self._heap[0][0] - time.monotonic() if self._heap else 0.05
                for key, _ in sel.select(max(0.0, min(wait, 0.05))):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if key.data:
                        self._out.sendto(data, ("127.0.0.1", self.target + 1))
                    else:
                        self._handle(data)
                self._release_due()

    def _handle(self, data: bytes) -> None:
        seq = RtpPacket.parse(data).sequence_number
        f, log, rng = self.faults, self.log, self._rng
        log.seen.append(seq)
        roll = rng.random()
        if len(log.seen) <= f.warmup:
            self._send(data, seq)
        elif roll < f.drop:
            log.dropped.append(seq)
        elif roll < f.drop + f.duplicate:
            log.duplicated.append(seq)
            self._send(data, seq)
            self._send(data, seq)
        elif roll < f.drop + f.duplicate + f.reorder and self._held is None:
            log.held.append(seq)
            with self._lock:
                self._held, self._held_at = data, time.monotonic()
            return
        elif roll < f.drop + f.duplicate + f.reorder + f.delay:
            log.delayed.append(seq)
            with self._lock:
                self._counter += 1
                heapq.heappush(self._heap, (time.monotonic() + rng.uniform(*f.delay_s), self._counter, data))
        else:
            self._send(data, seq)
        with self._lock:
            held, self._held = self._held, None
        if held is not None:
            self._send(held, RtpPacket.parse(held).sequence_number)

    def _release_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            held = self._held if now - self._held_at > HOLD_LIMIT_S else None
            if held is not None:
                self._held = None
        if held is not None:
            self._send(held, RtpPacket.parse(held).sequence_number)
        while True:
            with self._lock:
                if not self._heap or self._heap[0][0] > now:
                    return
                _, _, data = heapq.heappop(self._heap)
            self._send(data, RtpPacket.parse(data).sequence_number)

    def _send(self, data: bytes, seq: int) -> None:
        self.log.forwarded.append(seq)
        self._out.sendto(data, ("127.0.0.1", self.target))
