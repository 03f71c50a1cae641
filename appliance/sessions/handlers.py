"""Chart tabs made by scripts with ``add_handler``, and the data they keep.

A browser opened after a script started must still see its charts, so every
handler keeps a bounded history of what was sent to it; a browser replays it
in order.  Bounds are in messages and bytes, so a chatty script cannot make
the daemon grow without limit.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import ApplianceError

MAX_HANDLERS = 64
HISTORY_MESSAGES = 300
HISTORY_BYTES = 2 << 20
MAX_NAME = 100
HANDLER_TYPE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class HandlerError(ApplianceError):
    """A bad ``add_handler`` or ``send_data`` request."""

    code = "bad_handler"


@dataclass(frozen=True, slots=True)
class Owner:
    """Where a handler comes from: a run started by the device, or a script elsewhere."""

    kind: str
    """``run`` for scripts the device launched, ``script`` for terminal or laptop scripts."""
    key: str
    """The run id or the client session id; the handler ends with it."""
    name: str
    """The script's name, shown on the tab."""
    host: str
    """Where the script runs (``device`` or a host name or address)."""
    run: str | None = None
    origin: str = "editor"
    """For a run: ``editor`` or ``terminal`` (``appliance run``), shown on the tab."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "run": self.run,
            "name": self.name,
            "host": self.host,
            "origin": self.origin,
        }


@dataclass(slots=True)
class Handler:
    id: str
    name: str
    handler_type: str
    parameters: dict[str, Any]
    owner: Owner
    visible: bool
    """False for terminal scripts that did not set ``inform_browser``."""
    ended: bool = False
    history: deque[tuple[int, Any]] = field(default_factory=deque)
    history_bytes: int = 0

    def to_json(self, with_history: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "handler_type": self.handler_type,
            "parameters": self.parameters,
            "owner": self.owner.to_json(),
            "ended": self.ended,
        }
        if with_history:
            out["history"] = [data for _, data in self.history]
        return out


class HandlerRegistry:
    """All handlers; ``notify`` receives the browser events (``handler_added`` ...)."""

    def __init__(self, notify: Callable[[dict[str, Any]], None]) -> None:
        self._notify = notify
        self._handlers: dict[str, Handler] = {}
        self._ids = itertools.count(1)

    def add(self, name: Any, handler_type: Any, parameters: Any, owner: Owner, visible: bool) -> Handler:
        """Create a tab; a finished tab of the same script and name is replaced."""
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            raise HandlerError(f"handler name must be a string of 1 to {MAX_NAME} characters, not {name!r}")
        if not isinstance(handler_type, str) or not HANDLER_TYPE.match(handler_type):
            raise HandlerError(f"handler type {handler_type!r} is not a name like 'base:graph:line'")
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, dict):
            raise HandlerError(f"handler parameters must be an object, not {type(parameters).__name__}")
        for old in list(self._handlers.values()):
            if old.ended and old.name == name and old.owner.name == owner.name:
                self.close(old.id)
        self._make_room()
        handler = Handler(f"h{next(self._ids)}", name, handler_type, parameters, owner, visible)
        self._handlers[handler.id] = handler
        if visible:
            self._notify({"type": "handler_added", "handler": handler.to_json()})
        return handler

    def _make_room(self) -> None:
        while len(self._handlers) >= MAX_HANDLERS:
            victims = [h for h in self._handlers.values() if h.ended] or list(self._handlers.values())
            self.close(victims[0].id)

    def data(self, handler_id: Any, data: Any, owner_key: str) -> None:
        """Record ``data`` for a handler the caller owns and pass it to browsers."""
        handler = self._handlers.get(handler_id) if isinstance(handler_id, str) else None
        if handler is None or handler.owner.key != owner_key:
            raise HandlerError(f"handler {handler_id!r} does not exist or is not yours")
        try:
            size = len(json.dumps(data, separators=(",", ":"), allow_nan=False))
        except ValueError:
            raise HandlerError("handler data must be JSON without NaN or Infinity") from None
        handler.history.append((size, data))
        handler.history_bytes += size
        while len(handler.history) > HISTORY_MESSAGES or (
            handler.history_bytes > HISTORY_BYTES and len(handler.history) > 1
        ):
            handler.history_bytes -= handler.history.popleft()[0]
        if handler.visible:
            self._notify({"type": "handler_data", "handler": handler.id, "data": data})

    def end_owner(self, owner_key: str) -> None:
        """Mark every handler of a finished run or closed script as ended."""
        for handler in self._handlers.values():
            if handler.owner.key == owner_key and not handler.ended:
                handler.ended = True
                if handler.visible:
                    self._notify({"type": "handler_ended", "handler": handler.id})

    def close(self, handler_id: str) -> None:
        """Forget a handler (the user closed its tab)."""
        handler = self._handlers.pop(handler_id, None)
        if handler is not None and handler.visible:
            self._notify({"type": "handler_removed", "handler": handler_id})

    def visible(self) -> list[dict[str, Any]]:
        """Every handler a browser should show, with its history."""
        return [h.to_json() for h in self._handlers.values() if h.visible]
