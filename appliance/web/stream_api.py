"""``GET /api/v1/stream.sdp``: a stream's SDP at a URL, for ffmpeg, VLC and GStreamer.

    ffmpeg -protocol_whitelist http,tcp,udp,rtp \\
        -i 'http://micarray.local/api/v1/stream.sdp?port=5004&channels=1,2&token=T' out.wav

The request is authenticated (``Authorization: Bearer T``, or ``?token=T``
for tools that cannot set a header) and starts a stream to the address the
request came from: the TCP peer that just proved it holds a token, never an
address named in the request. Such a tool cannot renew a subscription, so the
stream runs for a lease (``duration``, default :data:`DEFAULT_LEASE_S`);
fetching the same URL again from the same address renews it, with the same
SSRC and SDP. A token in a URL can end up in shell history, ``ps`` and
proxy logs: the device never logs it (the access log line drops the query),
and a header is the better choice where the tool allows one.

Parameters: ``port`` (default 5004; RTCP goes to port + 1),
``channels`` (counted from 1, as ``rtai --channels``; default all) and
``duration`` in seconds (1 to :data:`MAX_LEASE_S`).
"""

from __future__ import annotations

import logging
from typing import Any

from tornado.web import HTTPError, RequestHandler, authenticated

from appliance.sessions.standing import StandingError, StandingStreams, parse_standing
from appliance.sessions.streaming import StreamError, StreamManager, StreamNotOpen
from appliance.web.base import BrowserHandler

log = logging.getLogger(__name__)

DEFAULT_PORT = 5004
DEFAULT_LEASE_S = 3600.0
"""An hour: long enough for a recording, short enough that a forgotten stream ends."""
MAX_LEASE_S = 86400.0
MAX_QUERY_BYTES = 1024
MAX_FORM_BYTES = 4096


class StreamSdpApi(RequestHandler):
    """Starts (or renews) a stream to the authenticated requester and answers its SDP."""

    def initialize(self, service: Any) -> None:
        self.service = service

    def _request_summary(self) -> str:
        # Tornado's access log line would carry ?token=...; the path alone is enough.
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    def prepare(self) -> None:
        """Refuse a request without a valid token before any work is done."""
        if len(self.request.query) > MAX_QUERY_BYTES:
            raise HTTPError(400, reason=f"the query is longer than {MAX_QUERY_BYTES} bytes")
        header = self.request.headers.get("Authorization", "")
        token = (
            header[len("Bearer ") :].strip()
            if header.startswith("Bearer ")
            else self.get_query_argument("token", "")
        )
        principal = self.service.tokens.verify(token)
        if principal is None:
            self.set_header("WWW-Authenticate", 'Bearer realm="micarray"')
            raise HTTPError(401, reason="a valid token is needed (Authorization: Bearer T, or ?token=T)")
        self.owner = f"sdp:{principal.name}@{self.request.remote_ip}"

    def get(self) -> None:
        """The SDP of the stream now flowing to the requester."""
        streams: StreamManager | None = self.service.streams
        if streams is None:
            raise HTTPError(503, reason="this device does not stream RTP")
        port = _number(self, "port", DEFAULT_PORT, 1, 65534)
        lease = float(_number(self, "duration", int(DEFAULT_LEASE_S), 1, int(MAX_LEASE_S)))
        channels = _channels(self.get_query_argument("channels", None))
        peer = str(self.request.remote_ip)
        key = (self.owner, port, tuple(channels or ()))
        leases: dict[tuple[str, int, tuple[int, ...]], str] = self.settings.setdefault("sdp_leases", {})
        live = {row["id"] for row in streams.listeners()}
        for gone in [k for k, v in leases.items() if v not in live]:  # bounded by the open streams
            del leases[gone]
        try:
            desc = self._renew(streams, leases.get(key), lease)
            if desc is None:
                desc = streams.subscribe(self.owner, peer, port, channels, lease_s=lease)
                leases[key] = desc["id"]
        except StreamError as exc:
            raise HTTPError(400, reason=str(exc)) from None
        self.set_header("Content-Type", "application/sdp")
        self.set_header("Cache-Control", "no-store")
        self.finish(desc["sdp"])

    def _renew(self, streams: StreamManager, stream_id: str | None, lease: float) -> dict[str, Any] | None:
        if stream_id is None:
            return None
        try:
            return streams.renew(self.owner, stream_id, lease_s=lease)
        except StreamNotOpen:
            return None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors in words, as plain text (what a tool shows its user)."""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{self._reason}\n")


def _number(handler: RequestHandler, name: str, default: int, low: int, high: int) -> int:
    raw = handler.get_query_argument(name, None)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise HTTPError(400, reason=f"{name} {raw!r} is not allowed; use a whole number from {low} to {high}")
    return int(raw)


def _channels(raw: str | None) -> list[int] | None:
    """``"1,3"`` (counted from 1) to ``[0, 2]``; the stream manager checks they exist."""
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        raise HTTPError(400, reason=f"channels {raw!r} is not allowed; give channel numbers from 1, like 1,3")
    return [int(p) - 1 for p in parts]


class StandingStreamsPage(BrowserHandler):
    """``/settings/streams``: the admin's standing streams, one ``NAME ADDRESS:PORT [CHANNELS]`` a line."""

    @property
    def standing(self) -> StandingStreams:
        found: StandingStreams | None = self.settings.get("standing")
        if found is None:
            raise HTTPError(503, reason="this device runs no standing streams")
        return found

    def _page(self, status: int = 200, text: str | None = None, **extra: Any) -> None:
        values: dict[str, Any] = {"error": None, "notice": None}
        values.update(extra)
        if text is None:
            text = "\n".join(s.text() for s in self.standing.streams)
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.render("streams.html", text=text, problems=list(self.standing.problems.values()), **values)

    @authenticated
    def get(self) -> None:
        """The form, filled with the current streams."""
        self._page()

    @authenticated
    async def post(self) -> None:
        """Check every line, then save and apply them all (or none, with the first error)."""
        text = self.get_body_argument("streams", "")
        if len(text) > MAX_FORM_BYTES:
            self._page(400, text="", error=f"the list is longer than {MAX_FORM_BYTES} characters")
            return
        try:
            streams = [parse_standing(line) for line in text.splitlines() if line.strip()]
            await self.standing.configure(streams)
        except StandingError as exc:
            self._page(400, text=text, error=f"Not saved: {exc}.")
            return
        log.info("standing streams set by %s: %s", self.request.remote_ip, ", ".join(s.name for s in streams))
        self._page(notice=f"Saved; {len(streams)} standing stream(s) configured.")
