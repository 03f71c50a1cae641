"""Signed-in browsers, kept on the device so that signing out really ends a session.

The signed cookie only carries a random session id; the device keeps the ids
it handed out in ``browser-sessions.json`` in the data directory (with when,
from where and which browser, for the Settings page). Signing out, ending a
session in Settings, or a new password removes ids, and a cookie whose id is
gone is refused, even a copy taken before.

``add_end_listener`` is the hook for whatever holds live connections opened
with a session (the WebSocket of an open page): it is called with each ended id.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.storage import DiskFullError, atomic_write_text

log = logging.getLogger(__name__)

SESSIONS_FILE = "browser-sessions.json"
MAX_SESSIONS = 32
"""Signed-in browsers kept at most; signing in once more ends the oldest."""
SESSION_SECONDS = 7 * 24 * 3600.0
"""A session ends this long after sign-in, whatever the cookie says."""
MAX_AGENT_CHARS = 200


class BrowserSessions:
    """The session ids handed out at sign-in, persisted in the data directory."""

    def __init__(self, data_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self._path = data_dir / SESSIONS_FILE
        self._clock = clock
        self._sessions: dict[str, dict[str, Any]] = self._load()
        self._listeners: list[Callable[[str], object]] = []

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            value = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # Losing the list only signs browsers out; say so and start afresh.
            log.warning("sessions in %s cannot be read (%s); every browser signs in again", self._path, exc)
            return {}
        if not isinstance(value, dict):
            return {}
        return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, dict)}

    def _save(self) -> None:
        # The ids are half of a credential (the signed cookie is the other): owner only.
        try:
            atomic_write_text(self._path, json.dumps(self._sessions, indent=1) + "\n", mode=0o600)
        except DiskFullError as exc:
            # Signing in must work on a full disk: it is how the admin frees space.
            # The list stays right in memory; only a restart would forget the change.
            log.warning("%s; signed-in browsers are kept in memory until it can be saved", exc)

    def add_end_listener(self, listener: Callable[[str], object]) -> None:
        """Call ``listener(session_id)`` whenever a session ends (sign-out, Settings, new password)."""
        self._listeners.append(listener)

    def start(self, address: str, agent: str) -> str:
        """A new session for a browser that just signed in; returns its id."""
        self._expire()
        while len(self._sessions) >= MAX_SESSIONS:
            self._end(min(self._sessions, key=lambda k: float(self._sessions[k].get("created", 0))))
        sid = secrets.token_urlsafe(18)
        self._sessions[sid] = {"created": self._clock(), "address": address, "agent": agent[:MAX_AGENT_CHARS]}
        self._save()
        return sid

    def valid(self, sid: object) -> bool:
        """Whether ``sid`` is a session the device handed out and has not ended."""
        if not isinstance(sid, str) or sid not in self._sessions:
            return False
        return self._clock() - float(self._sessions[sid].get("created", 0)) < SESSION_SECONDS

    def end(self, sid: str) -> bool:
        """End one session; False when there was none with this id."""
        if sid not in self._sessions:
            return False
        self._end(sid)
        self._save()
        return True

    def end_all_but(self, keep: str | None) -> int:
        """End every session except ``keep`` (a new password); returns how many ended."""
        ended = [sid for sid in self._sessions if sid != keep]
        for sid in ended:
            self._end(sid)
        if ended:
            self._save()
        return len(ended)

    def list(self) -> list[dict[str, Any]]:
        """Every live session, newest first: ``id``, ``created``, ``address``, ``agent``."""
        self._expire()
        rows = [{"id": sid, **info} for sid, info in self._sessions.items()]
        return sorted(rows, key=lambda r: -float(r.get("created", 0)))

    def _expire(self) -> None:
        old = [sid for sid in self._sessions if not self.valid(sid)]
        for sid in old:
            self._end(sid)
        if old:
            self._save()

    def _end(self, sid: str) -> None:
        self._sessions.pop(sid, None)
        for listener in self._listeners:
            listener(sid)
