"""The front door: every request's head is checked before any route sees it.

One place, in front of the whole application (pages, APIs, the WebSocket,
static files and 404s alike), refuses what no route should ever handle:

- a ``Host`` that is not one of the device's names (DNS rebinding);
- a path holding control characters;
- plain HTTP from another machine when HTTPS is on (pages are redirected,
  passwords and cookies never cross the LAN in clear text);
- a body larger than its route takes, refused from ``Content-Length`` before
  it is read; the route's limit and time budget also bound a chunked body.

A refusal is written straight to the socket and the connection closed, so
the body (if any) is never read.
"""

from __future__ import annotations

import ipaddress
import logging
from asyncio import Future
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import unquote

from tornado import httputil
from tornado.http1connection import HTTP1Connection
from tornado.iostream import IOStream, StreamClosedError
from tornado.web import Application

from appliance.system.ratelog import RateLimitedLog
from appliance.web.headers import SECURITY_HEADERS
from appliance.web.hosts import DeviceNames, split_host
from appliance.web.limits import body_limit
from appliance.web.server import HANDLING, READING, WAITING, ConnectionCaps

log = logging.getLogger(__name__)
refusals = RateLimitedLog(log)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer given instead of the route's."""

    status: int
    reason: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address.partition("%")[0]).is_loopback
    except ValueError:
        return False


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


@dataclass
class FrontDoor(httputil.HTTPServerConnectionDelegate):
    """Wraps the application; give it to the HTTP server instead of the application."""

    app: Application
    names: DeviceNames
    https_port: int | None = None
    """Where HTTPS listens; None while it is off (plain HTTP is then served to everyone)."""
    caps: ConnectionCaps = field(default_factory=ConnectionCaps)
    """The servers' connection table, told what each connection is doing."""

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        """A gate that checks the head, then hands the request to the application."""
        self.caps.set_state(cast(HTTP1Connection, request_conn).stream, WAITING)
        return _Gate(self, server_conn, cast(HTTP1Connection, request_conn))

    def on_close(self, server_conn: object) -> None:
        """Nothing to forget: the gate keeps no state per connection."""

    def check(
        self, start: httputil.RequestStartLine, headers: httputil.HTTPHeaders, conn: HTTP1Connection
    ) -> Refusal | None:
        """Why this request head is refused, or None to let it in."""
        path = start.path.partition("?")[0]
        if _has_control(unquote(path)):
            return Refusal(400, "Bad Request", "the path holds a control character; names never do")
        host = headers.get("Host", "")
        if not self.names.allows(host, _local_address(conn)):
            shown = repr(host[:80]) if host else "no Host at all"
            return Refusal(
                421,
                "Misdirected Request",
                f"this device does not answer to {shown}; use its own name (.local) or address",
            )
        refusal = self._clear_text(start, headers, conn)
        if refusal is not None:
            return refusal
        limit = body_limit(start.method, path)
        length = headers.get("Content-Length", "0").strip()
        if length.isdigit() and int(length) > limit.max_bytes:
            return Refusal(
                413,
                "Content Too Large",
                f"the body has {int(length)} bytes; {start.method} {path[:80]} takes at most "
                f"{limit.max_bytes} bytes",
            )
        return None

    def _clear_text(
        self, start: httputil.RequestStartLine, headers: httputil.HTTPHeaders, conn: HTTP1Connection
    ) -> Refusal | None:
        if self.https_port is None or conn.context.protocol != "http":  # type: ignore[attr-defined]
            return None
        if _is_loopback(conn.context.remote_ip):  # type: ignore[attr-defined]
            return None
        if headers.get("Upgrade", "").lower() == "websocket" and headers.get("Authorization"):
            # Scripts on laptops hold a token, not a cookie; the cookie is Secure and never sent here.
            return None
        host = split_host(headers.get("Host", ""))
        host = f"[{host}]" if ":" in host else host
        port = "" if self.https_port == 443 else f":{self.https_port}"
        target = f"https://{host}{port}{start.path}"
        if start.method in ("GET", "HEAD"):
            return Refusal(301, "Moved Permanently", f"this device answers at {target}", {"Location": target})
        why = f"send this over HTTPS: {target}; plain HTTP is for the device itself"
        return Refusal(403, "Forbidden", why)


def _local_address(conn: HTTP1Connection) -> str | None:
    stream = conn.stream
    sock = getattr(stream, "socket", None)
    if sock is None:
        return None
    try:
        return str(sock.getsockname()[0])
    except OSError:
        return None


class _Gate(httputil.HTTPMessageDelegate):
    """One request: refused at its head, or passed on to the application unchanged."""

    def __init__(self, door: FrontDoor, server_conn: object, conn: HTTP1Connection) -> None:
        self._door = door
        self._server_conn = server_conn
        self._conn = conn
        self._inner: httputil.HTTPMessageDelegate | None = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        start = cast(httputil.RequestStartLine, start_line)
        refusal = self._door.check(start, headers, self._conn)
        if refusal is not None:
            peer = str(getattr(self._conn.context, "remote_ip", "unknown"))
            # Keyed by the answer, not the peer: rotating addresses must not multiply the lines.
            refusals.warning(
                f"refused with {refusal.status}",
                "%s %s from %s: %s",
                start.method,
                start.path[:80],
                peer,
                refusal.message,
            )
            _refuse(self._conn, refusal, head_only=start.method == "HEAD")
            return None
        self._door.caps.set_state(self._conn.stream, READING)
        limit = body_limit(start.method, start.path.partition("?")[0])
        self._conn.set_max_body_size(limit.max_bytes)
        self._conn.set_body_timeout(limit.timeout_s)
        self._inner = self._door.app.start_request(self._server_conn, self._conn)
        return self._inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return None if self._inner is None else self._inner.data_received(chunk)

    def finish(self) -> None:
        self._door.caps.set_state(self._conn.stream, HANDLING)
        if self._inner is not None:
            self._inner.finish()

    def on_connection_close(self) -> None:
        if self._inner is not None:
            self._inner.on_connection_close()


def _refuse(conn: HTTP1Connection, refusal: Refusal, head_only: bool) -> None:
    body = (refusal.message + "\n").encode("utf-8", "replace")
    lines = [f"HTTP/1.1 {refusal.status} {refusal.reason}"]
    headers = {
        **SECURITY_HEADERS,
        **refusal.headers,
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
        "Connection": "close",
    }
    lines += [f"{k}: {v}" for k, v in headers.items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + (b"" if head_only else body)
    stream: IOStream = conn.detach()
    try:
        written = stream.write(raw)
    except StreamClosedError:
        return

    def close(done: Future[None]) -> None:
        done.exception()  # retrieved, so a peer that went away is not reported as an error
        stream.close()

    written.add_done_callback(close)
