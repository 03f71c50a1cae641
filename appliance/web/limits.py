"""Every bound the web server enforces, with its unit, in one place.

The connection bounds keep a flood of half-open connections far from the
1024 open files a systemd service gets, so capture, script runs and saves
always have descriptors left. The body bounds are checked from the request
headers, before a byte of the body is read: a route that takes a small form
never buffers more than that, and uploads are streamed to disk by
:class:`appliance.web.upload.StreamedUpload`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER_TIMEOUT_S = 10.0
"""Time a connection gets to send a request's headers, counted from the
connection (or the end of the previous request on a kept-alive connection).
It is a deadline, not an inactivity timer, so trickling a byte a second does
not keep a connection open. It is also how long an idle kept-alive
connection stays open."""
MAX_HEADER_BYTES = 16 << 10
"""Largest request line plus headers (16 KiB; a browser sends about 1 KiB)."""
MAX_CONNECTIONS = 256
"""Open connections the server keeps at most (WebSockets included); one more is closed at once."""
MAX_CONNECTIONS_PER_ADDRESS = 32
"""Open connections one peer address keeps at most: a browser uses about 8,
each script run one WebSocket."""
ACCEPT_PAUSE_S = 0.5
"""When the process is out of file descriptors, accepting pauses this long
instead of spinning (and logging) on a listening socket that stays readable."""


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """How much body one route takes, and how long it may take to arrive."""

    max_bytes: int
    timeout_s: float


FORM = BodyLimit(16 << 10, 10.0)
"""Login, setup and settings forms: a password and an XSRF token."""
API = BodyLimit(64 << 10, 10.0)
"""JSON APIs other than the script save."""
SCRIPT = BodyLimit((1 << 20) + (64 << 10), 30.0)
"""A script save: the store's 1 MiB script limit plus JSON escaping headroom.
Escaping can double a script's size; the store then refuses it in words."""
NO_BODY = BodyLimit(0, 10.0)
"""GET, HEAD, and the WebSocket upgrade carry no body."""
UPLOAD = BodyLimit(256 << 20, 600.0)
"""Streamed uploads (project files): written to disk as they arrive, never held."""

ROUTE_LIMITS: list[tuple[re.Pattern[str], BodyLimit]] = [
    (re.compile(r"^/(login|setup|logout|settings(/.*)?)$"), FORM),
    (re.compile(r"^/api/v1/scripts/[^/]+$"), SCRIPT),
    (re.compile(r"^/api/v1/"), API),
]
"""Path patterns and their body limits, first match wins; anything else takes
:data:`API`. A route that streams its body to disk adds itself with
:func:`add_route_limit` (before the server starts)."""


def add_route_limit(pattern: str, limit: BodyLimit) -> None:
    """Give paths matching ``pattern`` (a regular expression) their own limit, ahead of the others."""
    ROUTE_LIMITS.insert(0, (re.compile(pattern), limit))


def body_limit(method: str, path: str) -> BodyLimit:
    """The body limit for a request, from its method and path alone."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return NO_BODY
    for pattern, limit in ROUTE_LIMITS:
        if pattern.search(path):
            return limit
    return API
