"""Refusals of the workspace APIs: an HTTP status with the words for the JSON body.

``Refusal(413, "...")`` is ``HTTPError(413, reason="...")``; the base's
``JsonErrors`` puts the words in the body (any character is safe there) and
the standard reason in the status line.
"""

from __future__ import annotations

from tornado.web import HTTPError

from appliance.web.base import ApiHandler


class Refusal(HTTPError):
    """An HTTP error status with a message in words for the body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, reason=message)
        self.message = message


class RefusingApi(ApiHandler):
    """The base of the workspace APIs (projects, runs, recordings, packages)."""
