"""The HTTP(S) server: Tornado's, with the bounds a LAN peer cannot outgrow.

- headers must arrive within :data:`~appliance.web.limits.HEADER_TIMEOUT_S`
  (Tornado's header timeout is a deadline from the connection's start, so a
  request trickled a byte at a time is cut off as surely as a silent one);
- open connections are capped per peer address (one over is closed as it is
  accepted, before any TLS handshake) and overall (one over makes the oldest
  connection still waiting for its request give way);
- running out of file descriptors sheds such a connection too, or, with none
  to shed, pauses accepting for a moment instead of spinning on a readable
  listening socket (which is what wrote a log line per loop turn before);
- :data:`NOISY_LOGGERS` lists the loggers whose repeats the entry point
  rate limits (Tornado's own lines about bad connections among them).
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from appliance.system.ratelog import RateLimitedLog
from appliance.web import limits

log = logging.getLogger(__name__)
_overload = RateLimitedLog(log)
_ACCEPT_BATCH = 128
"""Connections accepted per wake-up at most, so one flood cannot starve the loop."""
_OUT_OF_FILES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
NOISY_LOGGERS = ("tornado.general", "tornado.access", "tornado.application", "asyncio")
"""Loggers whose repeated lines are rate limited (see :class:`~appliance.system.ratelog.RepeatFilter`)."""


WAITING, READING, HANDLING = 0, 1, 2
"""What a connection is doing: waiting for a request's headers, reading its
body, or being answered (a WebSocket stays HANDLING). Over the overall cap the
oldest WAITING connection is shed first, then the oldest READING one: a flood
of half-sent requests then costs the flood its own connections, not a real
user's, who sends a whole request at once."""


@dataclass
class _Entry:
    address: str
    state: int = WAITING


class ConnectionCaps:
    """Open connections per peer address, shared by the HTTP and HTTPS servers."""

    def __init__(
        self,
        max_connections: int = limits.MAX_CONNECTIONS,
        max_per_address: int = limits.MAX_CONNECTIONS_PER_ADDRESS,
    ) -> None:
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self._streams: dict[IOStream, _Entry] = {}  # oldest first
        self.shed = 0
        """Connections closed to make room for newer ones."""

    def count(self, address: str | None = None) -> int:
        """Connections open now, from ``address`` or from anyone."""
        return sum(1 for s, e in self._streams.items() if not s.closed() and address in (None, e.address))

    def add(self, address: str, stream: IOStream) -> None:
        """Count ``stream`` for ``address`` until it closes."""
        self._streams[stream] = _Entry(address)

    def set_state(self, stream: IOStream | None, state: int) -> None:
        """Note what ``stream`` is doing (see :data:`WAITING`)."""
        entry = self._streams.get(stream) if stream is not None else None
        if entry is not None:
            entry.state = state

    def admit(self, address: str) -> bool:
        """True when one more connection from ``address`` may be served (perhaps after shedding one)."""
        self._streams = {s: e for s, e in self._streams.items() if not s.closed()}
        if sum(1 for e in self._streams.values() if e.address == address) >= self.max_per_address:
            _overload.warning(address, "%d connections open from it; refusing more", self.max_per_address)
            return False
        if len(self._streams) < self.max_connections:
            return True
        if self.shed_one():
            return True
        _overload.warning("every address", "%d connections busy; refusing more", self.max_connections)
        return False

    def shed_one(self) -> bool:
        """Close the oldest connection still waiting for a request (else still reading one); False if none."""
        victims = [(e.state, i, s) for i, (s, e) in enumerate(self._streams.items()) if e.state != HANDLING]
        if not victims:
            return False
        _, _, victim = min(victims, key=lambda v: (v[0], v[1]))
        _overload.warning("every address", "%d connections open; closing the oldest idle one", len(victims))
        del self._streams[victim]
        victim.close()
        self.shed += 1
        return True


class GuardedHTTPServer(HTTPServer):
    """An ``HTTPServer`` with connection caps, header timeouts and a pausing accept loop."""

    # Tornado's HTTPServer is a Configurable: construction arguments go to initialize().
    def initialize(  # type: ignore[override]
        self,
        delegate: httputil.HTTPServerConnectionDelegate,
        *,
        ssl_options: ssl.SSLContext | None = None,
        caps: ConnectionCaps | None = None,
    ) -> None:
        """Serve ``delegate`` (the front door), over TLS when ``ssl_options`` is given."""
        super().initialize(
            delegate,
            ssl_options=ssl_options,
            xheaders=False,
            idle_connection_timeout=limits.HEADER_TIMEOUT_S,
            max_header_size=limits.MAX_HEADER_BYTES,
            # The front door lowers these per route; these bound what it has not seen yet.
            max_body_size=limits.API.max_bytes,
            body_timeout=limits.API.timeout_s,
        )
        self.caps = caps or ConnectionCaps()

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        """Count the stream for its address, then serve it as Tornado does."""
        self.caps.add(str(address[0]) if address else "", stream)
        super().handle_stream(stream, address)

    # -- accepting ----------------------------------------------------------
    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        """Accept on ``sockets`` with the caps and the pause on running out of descriptors."""
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = _accept_loop(sock, self._on_accept, self.caps.shed_one)

    def _on_accept(self, connection: socket.socket, address: Any) -> None:
        peer = str(address[0]) if address else ""
        if not self.caps.admit(peer):
            connection.close()
            return
        # Tornado's own path from here: TLS wrapping, the stream, handle_stream.
        self._handle_connection(connection, address)


def _accept_loop(
    sock: socket.socket, callback: Callable[[socket.socket, Any], None], shed: Callable[[], bool]
) -> Callable[[], None]:
    """Like Tornado's ``add_accept_handler``, but out of descriptors it sheds an idle
    connection to make room (``shed``), or, with none to shed, pauses instead of raising."""
    loop = IOLoop.current()
    state = {"removed": False, "paused": False}

    def resume() -> None:
        if not state["removed"] and state["paused"]:
            state["paused"] = False
            loop.add_handler(sock, on_readable, IOLoop.READ)

    def on_readable(fd: Any, events: int) -> None:
        for _ in range(_ACCEPT_BATCH):
            if state["removed"]:
                return
            try:
                connection, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _OUT_OF_FILES:
                    raise
                if shed():
                    continue  # one descriptor free again: the waiting connection gets it
                _overload.warning("accept", "out of file descriptors (%s); pausing", exc.strerror)
                state["paused"] = True
                loop.remove_handler(sock)
                loop.call_later(limits.ACCEPT_PAUSE_S, resume)
                return
            callback(connection, address)

    def remove() -> None:
        if not state["paused"]:
            loop.remove_handler(sock)
        state["removed"] = True

    loop.add_handler(sock, on_readable, IOLoop.READ)
    return remove
