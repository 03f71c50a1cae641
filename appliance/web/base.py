"""The request handler every page and HTTP API of the web app builds on."""

from __future__ import annotations

import json
import logging
from http.client import responses
from pathlib import Path
from typing import Any

from tornado.web import HTTPError, RequestHandler

from appliance.auth import PasswordStore
from appliance.storage import DiskFullError
from appliance.web.access import browser_user
from appliance.web.headers import SECURITY_HEADERS

log = logging.getLogger(__name__)


class BrowserHandler(RequestHandler):
    """A handler whose user is the session cookie's (``admin`` or None)."""

    def get_current_user(self) -> str | None:
        """The signed-in user, from the session cookie."""
        return browser_user(self)

    @property
    def data_dir(self) -> Path:
        """The device's data directory."""
        return Path(self.settings["data_dir"])

    @property
    def passwords(self) -> PasswordStore:
        """The admin password store (stateless: it reads the file each time)."""
        return PasswordStore(self.data_dir)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """A full disk is 507 with its words ("the disk is full (N MB free)..."), not a 500."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, DiskFullError):
            status_code, kwargs["reason"] = 507, str(exc)
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """A full disk is the admin's to fix, not a bug: one line, no traceback."""
        if isinstance(value, DiskFullError):
            log.warning("%s %s: %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    def set_default_headers(self) -> None:
        # The app never needs to be framed or to load anything from elsewhere.
        for name, value in SECURITY_HEADERS.items():
            self.set_header(name, value)


class NotFoundPage(BrowserHandler):
    """Any path no route takes: a 404 with the security headers, like every other answer."""

    def prepare(self) -> None:
        """Refuse before any method runs."""
        raise HTTPError(404, reason="no such page")


class JsonErrors(RequestHandler):
    """Errors as ``{"error": "words"}`` bodies, with the standard reason in the status line.

    Handlers refuse with ``HTTPError(status, reason=words)``; the words go in
    the body, where any character is safe (Tornado blanks a status reason it
    cannot put on the wire, so "€.py" once came back as "Unknown").
    """

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Keep the exception's words for the body; the status line gets the standard reason."""
        words = responses.get(status_code, "Unknown")
        exc_info = kwargs.get("exc_info")
        exception = exc_info[1] if exc_info else None
        if isinstance(exception, HTTPError) and exception.reason:
            words, exception.reason = exception.reason, None
        elif isinstance(exception, DiskFullError):
            status_code, words = 507, str(exception)
        self._error_words = words
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The body of every error: JSON naming what was wrong."""
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        words = getattr(self, "_error_words", None) or responses.get(status_code, "Unknown")
        self.finish(json.dumps({"error": words}))


class ApiHandler(JsonErrors, BrowserHandler):
    """A JSON API for the signed-in browser: 403 instead of a redirect, errors as JSON."""

    def prepare(self) -> None:
        """Refuse every request without a session before any work is done."""
        if self.current_user is None:
            raise HTTPError(403, reason="sign in first")

    def write_json(self, value: Any, status: int = 200) -> None:
        """Send ``value`` as JSON (lists too, unlike ``write``)."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(value))

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object, or a 400 naming what is wrong."""
        try:
            value = json.loads(self.request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPError(400, reason=f"the body is not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise HTTPError(400, reason="the body must be a JSON object")
        return value
