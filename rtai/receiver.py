"""``Receiver``: RTP/L16 from a UDP port to int16 numpy blocks, on time.

    with rtai.Receiver(port=5004, rate=48000, channels=8) as rx:
        for block in rx:
            use(block.timestamp, block.data)

Everything runs in the caller's thread: iteration waits on the sockets until
a packet comes or the jitter buffer's next deadline passes, so no thread is
left behind.  Datagrams are untrusted: each is decoded inside one tuple of
expected exceptions, counted, and logged at a rate limit.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from types import TracebackType

from rtai.jitterbuffer import ReceivedBlock
from rtai.sdp import StreamDescription
from rtai.stats import ReceiverStats
from rtai.stream import StreamState

log = logging.getLogger(__name__)

DEFAULT_LATENCY_MS = 20.0
"""Extra wait for a missing packet beyond the transit already seen (wired LANs)."""
STATS_INTERVAL_S = 1.0
HISTORY_ROWS = 3600
"""Per-second rows kept (an hour)."""
RECV_BUFFER_BYTES = 4 << 20
"""Socket receive buffer: room for bursts of large multichannel blocks."""
MAX_DATAGRAM = 65536
IDLE_WAIT_S = 0.25
"""Longest wait before checking again when no deadline is pending."""
PORT_ATTEMPTS = 50
MAX_BATCH = 4096
"""Datagrams taken in one go, so a flood cannot keep blocks from being released."""


class Receiver:
    """Receives one RTP/L16 stream on a UDP port (RTCP on the next port).

    ``port`` 0 picks a free even port.  ``rate`` and ``channels`` give the
    stream's format (``follow`` changes it); ``ssrc`` None accepts the first
    source heard; ``latency_ms`` is how long a missing packet is waited for
    beyond the transit already seen; ``source`` accepts datagrams from that
    address only; ``multicast_group`` joins a group; ``on_stats`` receives a
    :class:`ReceiverStats` row every second.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        rate: int,
        channels: int,
        ssrc: int | None = None,
        payload_type: int = 96,
        latency_ms: float = DEFAULT_LATENCY_MS,
        host: str = "0.0.0.0",
        source: str | None = None,
        multicast_group: str | None = None,
        on_stats: Callable[[ReceiverStats], None] | None = None,
    ) -> None:
        self.stats = ReceiverStats()
        self.history: deque[ReceiverStats] = deque(maxlen=HISTORY_ROWS)
        self.on_stats = on_stats
        self._state = StreamState(
            rate,
            channels,
            ssrc,
            payload_type=payload_type,
            latency_s=latency_ms / 1000.0,
            stats=self.stats,
            source=source,
        )
        self._lock = threading.Lock()
        self._pending: StreamState | None = None
        self._rtp, self._rtcp = _bind_pair(host, port)
        if multicast_group:
            _join(self._rtp, multicast_group)
            _join(self._rtcp, multicast_group)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._rtp, selectors.EVENT_READ, False)
        self._selector.register(self._rtcp, selectors.EVENT_READ, True)
        self._last_row = self.stats.copy()
        self._next_row = time.monotonic() + STATS_INTERVAL_S
        self._closed = False

    @classmethod
    def from_description(
        cls, desc: StreamDescription, *, port: int | None = None, **kwargs: object
    ) -> Receiver:
        """A receiver for a stream the device described (its ``ack`` or an SDP file)."""
        group = desc.address if desc.multicast else None
        return cls(
            desc.port if port is None else port,
            rate=desc.rate,
            channels=desc.channels,
            ssrc=desc.ssrc or None,
            payload_type=desc.payload_type,
            multicast_group=group,
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def port(self) -> int:
        """The local RTP port (RTCP is ``port + 1``)."""
        return int(self._rtp.getsockname()[1])

    @property
    def rate(self) -> int:
        return self._state.rate

    @property
    def channels(self) -> int:
        return self._state.channels

    @property
    def ssrc(self) -> int | None:
        return self._state.ssrc

    @property
    def ended(self) -> str | None:
        """Why the sender ended the current stream (its RTCP BYE), or None while it runs."""
        return self._state.ended

    def follow(self, desc: StreamDescription, source: str | None = None) -> None:
        """Switch to a new description of the stream (safe from another thread).

        The timeline starts again with the new SSRC; blocks of the new shape
        come from the next read on.  ``source`` (the device's address) limits
        which sender is accepted; None keeps the current limit.
        """
        state = self._state
        new = StreamState(
            desc.rate,
            desc.channels,
            desc.ssrc or None,  # an SDP file names no SSRC: take the first source heard
            payload_type=desc.payload_type,
            latency_s=state.buffer.latency_s,
            stats=self.stats,
            source=source or state.source,
        )
        with self._lock:
            self._pending = new

    def read(self, timeout: float | None = None) -> list[ReceivedBlock]:
        """Wait up to ``timeout`` seconds and return the blocks that became ready."""
        stop = None if timeout is None else time.monotonic() + timeout
        while True:
            self._apply_pending()
            # Take in what already arrived before giving up on anything: after
            # a stall of this thread, the packets are waiting in the socket.
            self._poll(0.0)
            blocks = self._drain_ready()
            if blocks:
                return blocks
            now = time.monotonic()
            if stop is not None and now >= stop:
                return []
            self._wait(now, stop)

    def __iter__(self) -> Iterator[ReceivedBlock]:
        """Blocks forever (until ``close``), in timeline order."""
        while not self._closed:
            yield from self.read(IDLE_WAIT_S)

    def feed(self, datagram: bytes, source: str | None = None, *, rtcp: bool = False) -> None:
        """Handle one datagram as if it had arrived on the sockets now (for tests and relays)."""
        self._state.handle(datagram, source, rtcp, time.monotonic())

    def _wait(self, now: float, stop: float | None) -> None:
        deadline = self._state.buffer.deadline()
        wake = min(x for x in (deadline, stop, now + IDLE_WAIT_S, self._next_row) if x is not None)
        self._poll(max(0.0, wake - now))

    def _poll(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            self._receive(key.fileobj, bool(key.data))  # type: ignore[arg-type]

    def _receive(self, sock: socket.socket, rtcp: bool) -> None:
        state = self._state
        for _ in range(MAX_BATCH):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                return
            except OSError as exc:  # e.g. ICMP errors surfacing on the socket
                log.debug("receive error: %s", exc)
                return
            state.handle(data, addr[0], rtcp, time.monotonic())

    def _drain_ready(self) -> list[ReceivedBlock]:
        now = time.monotonic()
        blocks = []
        buffer = self._state.buffer
        while (block := buffer.pop(now)) is not None:
            blocks.append(block)
        if blocks:
            self._note_latency(blocks[-1])
        if now >= self._next_row:
            self._emit_row(now)
        return blocks

    def _note_latency(self, block: ReceivedBlock) -> None:
        if block.capture_time is not None:
            last = block.capture_time + (block.frames - 1) / self._state.rate
            self.stats.latency_ms = 1000.0 * (time.time() - last)

    def _emit_row(self, now: float) -> None:
        row = self.stats.minus(self._last_row)
        self._last_row = self.stats.copy()
        self._next_row = now + STATS_INTERVAL_S
        self.history.append(row)
        if self.on_stats is not None:
            self.on_stats(row)

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._state = pending

    def close(self) -> None:
        """Close the sockets; iteration ends."""
        if self._closed:
            return
        self._closed = True
        self._selector.close()
        self._rtp.close()
        self._rtcp.close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _bind_pair(host: str, port: int) -> tuple[socket.socket, socket.socket]:
    """Bind RTP on ``port`` (an even free pair when 0) and RTCP on the next port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(PORT_ATTEMPTS if port == 0 else 1):
        rtp = _udp(family)
        rtcp = _udp(family)
        try:
            rtp.bind((host, port))
            chosen = rtp.getsockname()[1]
            if port == 0 and chosen % 2:
                raise OSError("odd port")
            rtcp.bind((host, chosen + 1))
        except OSError as exc:
            rtp.close()
            rtcp.close()
            if port:
                raise OSError(
                    f"cannot receive on UDP ports {port} and {port + 1}: {exc.strerror or exc}"
                ) from None
            continue
        return rtp, rtcp
    raise OSError("found no free pair of UDP ports for RTP and RTCP")


def _udp(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER_BYTES)
    sock.setblocking(False)
    return sock


def _join(sock: socket.socket, group: str) -> None:
    membership = socket.inet_aton(group) + socket.inet_aton("0.0.0.0")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
