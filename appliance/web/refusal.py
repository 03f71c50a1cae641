"""Refusals whose words go in the JSON body, not in the HTTP reason phrase.

Tornado replaces a reason phrase holding ``<`` or anything but printable
ASCII with "Unknown", and our messages quote what the user sent (a file name
with any character, the naming rule with ``<>:"|?*``).  :class:`Refusal`
carries the message; :class:`RefusingApi` writes it as ``{"error": ...}``.
"""

from __future__ import annotations

import json
from typing import Any

from tornado.web import HTTPError

from appliance.web.base import ApiHandler


class Refusal(HTTPError):
    """An HTTP error status with a message in words for the body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status)
        self.message = message


class RefusingApi(ApiHandler):
    """An API whose errors say what was wrong, whatever characters that takes."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """``{"error": words}``: the refusal's message, else the reason phrase."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.message if isinstance(exc, Refusal) else self._reason
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": message}))
