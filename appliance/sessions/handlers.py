"""Chart tabs made by scripts with ``add_handler``, and the data they keep.

A browser opened after a script started must still see its charts, so every
handler keeps a bounded history of what was sent to it; a browser replays it
in order.  The history is held as the JSON text it arrives as (never as
Python objects, which take some 20 times more), and the bytes counted are
the bytes held.  Bounds are per chart (messages and bytes) and for the whole
device, so neither a chatty script nor 64 of them can make the daemon grow
without limit; a script's history is let go :data:`ENDED_KEEP_S` after it
ended unless a browser is showing its tabs.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import ApplianceError
from appliance.sessions.handler_params import check_parameters

MAX_HANDLERS = 64
#: Live tabs one credential (a run, a token, the local token) may have at once.
TABS_PER_OWNER = 32
HISTORY_MESSAGES = 300
#: Bytes of history one chart holds (as counted by :func:`held_bytes`).
HISTORY_BYTES = 2 << 20
#: Largest ``send_data`` message, as JSON: a 256x256 heatmap fits with room to spare.
MAX_DATA_BYTES = 512 << 10
#: Bytes of history all charts together hold.
DEVICE_HISTORY_BYTES = 24 << 20
#: Seconds an ended script's tabs and history are kept while no browser shows them.
ENDED_KEEP_S = 600.0
#: What one history entry costs besides its text: its deque slot and tuple.
ENTRY_OVERHEAD = 80
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
    credential: str = ""
    """Who connected (``run:ID``, ``api:NAME``...): quotas count per credential, so
    one token cannot take every tab with many connections.  Empty: the key."""

    @property
    def quota_key(self) -> str:
        return self.credential or self.key

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "run": self.run, "name": self.name, "host": self.host}


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
    ended_at: float | None = None
    """``time.monotonic()`` when its script ended."""
    history: deque[tuple[int, str]] = field(default_factory=deque)
    """(bytes held, the data as JSON text) per message, oldest first."""
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
            out["history"] = [json.loads(text) for _, text in self.history]
        return out

    def to_json_text(self) -> str:
        """:meth:`to_json` as JSON text, the history spliced in as held (nothing decoded)."""
        head = json.dumps(self.to_json(with_history=False), separators=(",", ":"), allow_nan=False)
        return head[:-1] + ',"history":[' + ",".join(text for _, text in self.history) + "]}"


def held_bytes(text: str) -> int:
    """What keeping ``text`` in a history really costs, in bytes."""
    return sys.getsizeof(text) + ENTRY_OVERHEAD


class HandlerRegistry:
    """All handlers; ``notify`` receives the browser events (``handler_added`` ...)."""

    def __init__(self, notify: Callable[[dict[str, Any] | str], None]) -> None:
        self._notify = notify
        """Gets browser events: dicts, or ``handler_data`` already as JSON text."""
        self._handlers: dict[str, Handler] = {}
        self._ids = itertools.count(1)
        self._held = 0

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
        check_parameters(handler_type, parameters)
        for old in list(self._handlers.values()):
            if old.ended and old.name == name and old.owner.name == owner.name:
                self.close(old.id)
        self._check_share(owner)
        self._make_room()
        handler = Handler(f"h{next(self._ids)}", name, handler_type, parameters, owner, visible)
        self._handlers[handler.id] = handler
        if visible:
            self._notify({"type": "handler_added", "handler": handler.to_json()})
        return handler

    def _check_share(self, owner: Owner) -> None:
        key = owner.quota_key
        live = sum(1 for h in self._handlers.values() if not h.ended and h.owner.quota_key == key)
        if live >= TABS_PER_OWNER:
            raise HandlerError(
                f"{live} tabs of this script are open; the limit is {TABS_PER_OWNER} per script (or token)"
            )

    def _make_room(self) -> None:
        """Only finished tabs give way: a script never removes another's live tab."""
        while len(self._handlers) >= MAX_HANDLERS:
            ended = [h for h in self._handlers.values() if h.ended]
            if not ended:
                raise HandlerError(
                    f"the device shows {len(self._handlers)} tabs of running scripts, its limit; "
                    "stop a script or close its tabs first"
                )
            self.close(ended[0].id)

    def data(self, handler_id: Any, data: Any, owner_key: str) -> None:
        """Record ``data`` for a handler the caller owns and pass it to browsers."""
        handler = self._handlers.get(handler_id) if isinstance(handler_id, str) else None
        if handler is None or handler.owner.key != owner_key:
            raise HandlerError(f"handler {handler_id!r} does not exist or is not yours")
        try:
            text = json.dumps(data, separators=(",", ":"), allow_nan=False)
        except ValueError:
            raise HandlerError("handler data must be JSON without NaN or Infinity") from None
        size = held_bytes(text)
        if len(text) > MAX_DATA_BYTES or size > HISTORY_BYTES:
            limit = min(MAX_DATA_BYTES, HISTORY_BYTES - held_bytes(""))
            raise HandlerError(
                f"handler data of {len(text)} bytes is too big; "
                f"one message may hold up to {limit} bytes of JSON"
            )
        handler.history.append((size, text))
        handler.history_bytes += size
        self._held += size
        while len(handler.history) > HISTORY_MESSAGES or handler.history_bytes > HISTORY_BYTES:
            self._drop_oldest(handler)
        self._trim_device()
        if handler.visible:
            # Encoded once for every browser, from the text already made.
            self._notify(f'{{"type":"handler_data","handler":{json.dumps(handler.id)},"data":{text}}}')

    def _drop_oldest(self, handler: Handler) -> None:
        size = handler.history.popleft()[0]
        handler.history_bytes -= size
        self._held -= size

    def _trim_device(self) -> None:
        """Over the device's budget: ended scripts' oldest data go first, then the biggest chart's."""
        while self._held > DEVICE_HISTORY_BYTES:
            ended = [h for h in self._handlers.values() if h.ended and h.history]
            victim = ended[0] if ended else max(self._handlers.values(), key=lambda h: h.history_bytes)
            self._drop_oldest(victim)

    @property
    def held(self) -> int:
        """Bytes of history held by all charts together."""
        return self._held

    def end_owner(self, owner_key: str) -> None:
        """Mark every handler of a finished run or closed script as ended."""
        for handler in self._handlers.values():
            if handler.owner.key == owner_key and not handler.ended:
                handler.ended = True
                handler.ended_at = time.monotonic()
                if handler.visible:
                    self._notify({"type": "handler_ended", "handler": handler.id})

    def close(self, handler_id: str) -> None:
        """Forget a handler (the user closed its tab)."""
        handler = self._handlers.pop(handler_id, None)
        if handler is None:
            return
        self._held -= handler.history_bytes
        if handler.visible:
            self._notify({"type": "handler_removed", "handler": handler_id})

    def sweep(self, now: float, shown: bool) -> None:
        """Let go of tabs whose script ended :data:`ENDED_KEEP_S` ago, unless ``shown``.

        ``shown``: a browser is connected, and every browser shows every tab.
        """
        if shown:
            return
        for handler in list(self._handlers.values()):
            if handler.ended_at is not None and now - handler.ended_at >= ENDED_KEEP_S:
                self.close(handler.id)

    def visible(self) -> list[dict[str, Any]]:
        """Every handler a browser should show, with its history decoded (for tools and tests)."""
        return [h.to_json() for h in self._handlers.values() if h.visible]

    def visible_json(self) -> str:
        """:meth:`visible` as JSON text, made from the held text without decoding it."""
        return "[" + ",".join(h.to_json_text() for h in self._handlers.values() if h.visible) + "]"
