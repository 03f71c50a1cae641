"""The one WebSocket endpoint of the client protocol (``/api/v1/ws``).

Authentication happens before the upgrade: a bearer token (scripts, laptops,
the local token) or the browser's session cookie.  A cookie is only accepted
together with an Origin header naming this very host, so a page from another
site can never ride on the admin's session.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlparse

from tornado.iostream import StreamClosedError
from tornado.web import HTTPError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from appliance.auth import Principal
from appliance.service import Service
from appliance.sessions import flow
from appliance.sessions.session import ClientSession
from appliance.web.access import SESSION_COOKIE, SESSION_DAYS, browser_user
from appliance.web.base import JsonErrors

log = logging.getLogger(__name__)


class _Transport:
    """Adapts the Tornado handler to the session's ``Transport``."""

    def __init__(self, handler: ApiSocket) -> None:
        self._handler = handler

    async def send(self, message: str | bytes) -> None:
        try:
            await self._handler.write_message(message, binary=isinstance(message, bytes))
        except (WebSocketClosedError, StreamClosedError):
            raise ConnectionError("client went away") from None

    def close(self, code: int, reason: str) -> None:
        self._handler.close(code, reason)


class ApiSocket(JsonErrors, WebSocketHandler):
    """Speaks the client protocol; the session object holds all state."""

    def initialize(self, service: Service) -> None:
        self.service = service
        self.principal: Principal | None = None
        self.session: ClientSession | None = None
        self.budget = flow.TextBudget()

    def _authenticate(self) -> Principal | None:
        header = self.request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return self.service.tokens.verify(header[len("Bearer ") :].strip())
        if browser_user(self) is not None and self._same_origin(required=True):
            return Principal("admin", "admin")
        return None

    def _same_origin(self, required: bool) -> bool:
        origin = self.request.headers.get("Origin")
        if origin is None:
            return not required
        return urlparse(origin).netloc.lower() == self.request.host.lower()

    async def get(self, *args: Any, **kwargs: Any) -> None:
        self.principal = self._authenticate()
        if self.principal is None:
            raise HTTPError(401, reason="a valid token or a signed-in browser session is needed")
        await super().get(*args, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The JSON error body, and for a refused login the scheme to use."""
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="micarray"')
        super().write_error(status_code, **kwargs)

    def check_origin(self, origin: str) -> bool:
        # Cross-origin pages are refused whatever they carry; tools send no Origin.
        return self._same_origin(required=False)

    def open(self, *args: str, **kwargs: str) -> None:
        assert self.principal is not None
        self.set_nodelay(True)
        peer = self.request.remote_ip or "unknown"
        self.session = ClientSession(
            self.service, _Transport(self), self.principal, peer, self.service.new_session_id()
        )
        if self.principal.kind == "admin":
            self.session.auth_generation = self.service.passwords.generation()
            browser_session = self._browser_session_id()
            if browser_session is not None:
                # Ending this browser session closes this socket (make_app wires the listener).
                self.session.register_credential(f"browser:{browser_session}")

    def _browser_session_id(self) -> str | None:
        """The id of the signed-in browser session (the cookie's ``s``), when it has one."""
        raw = self.get_signed_cookie(SESSION_COOKIE, max_age_days=SESSION_DAYS)
        try:
            value = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        sid = value.get("s") if isinstance(value, dict) else None
        return sid if isinstance(sid, str) and sid else None

    def on_message(self, message: str | bytes) -> None:
        if self.session is None:
            return
        # Sizes and budget before any decoding: the loop's time is everyone's audio.
        if not self.budget.admit(len(message), shared=self.service.text_budget):
            report = self.budget.report()
            if report is not None:
                self.session.error("over_budget", report)
            return
        if isinstance(message, bytes):
            self.session.on_binary(message)
        else:
            self.session.on_text(message)

    def on_close(self) -> None:
        if self.session is not None:
            self.session.close()
