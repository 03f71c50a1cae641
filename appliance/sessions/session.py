"""One client connection speaking the client protocol (docs/protocol.md).

Independent of Tornado: the WebSocket handler gives it a ``Transport`` and
feeds it frames.  Each session has a bounded outbox for text messages and,
when it asked for audio, its own bus subscription; both drain in tasks, so a
slow client only ever loses its own messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from appliance.auth import Principal
from appliance.capture.bus import Subscription
from appliance.errors import ApplianceError
from appliance.sessions.handlers import Owner
from appliance.system.ratelog import RateLimitedLog
from browserinterface import protocol as P

if TYPE_CHECKING:
    from appliance.service import Service

log = logging.getLogger(__name__)
bad_input = RateLimitedLog(log)

OUTBOX_MESSAGES = 1000
ROLES = ("script", "browser", "listener", "console")
#: Who may start and stop scripts on the device.
RUN_PRINCIPALS = ("admin", "local")
MAX_BROWSER_AUDIO_CHANNELS = 16
#: Lag at which a consumer is told it is behind live audio, in ms (a few
#: buffers' worth of TCP and scheduling jitter is not "behind").
LAG_TELL_MS = 100.0
#: Seconds between two lag messages to one client while it stays behind.
LAG_TELL_INTERVAL_S = 1.0
#: Seconds a script's own lag report is trusted for.
LAG_REPORT_FRESH_S = 3.0
#: Largest lag a script may report, in ms (a day).
MAX_REPORTED_LAG_MS = 86_400_000.0


class Transport(Protocol):
    """What a session needs from its connection."""

    def send(self, message: str | bytes) -> Awaitable[None]: ...

    def close(self, code: int, reason: str) -> None: ...


class ClientSession:
    """The state of one connection: role, audio subscription, outbox."""

    def __init__(self, service: Service, transport: Transport, principal: Principal, peer: str, sid: str):
        self.service = service
        self.transport = transport
        self.principal = principal
        self.peer = peer
        self.id = sid
        self.role: str | None = None
        self.name = ""
        self.host = peer
        self.inform_browser = False
        self.audio_channels: list[int] | None = None
        self._audio: Subscription | None = None
        self._audio_task: asyncio.Task[None] | None = None
        self._outbox: deque[str | bytes] = deque()
        self._wake = asyncio.Event()
        self.dropped_messages = 0
        self.auth_generation: str | None = None
        """For a browser: the password generation it signed in under; a change ends the session."""
        self._closed = False
        self.queue_lag_ms = 0.0
        """How far behind live audio the block sent last was, on the device's side."""
        self._script_lag = (0.0, -LAG_REPORT_FRESH_S)
        self._sender = asyncio.get_running_loop().create_task(self._drain())

    # -- sending --------------------------------------------------------------
    def push(self, msg: dict[str, Any] | bytes) -> None:
        """Queue a message; when the client is too slow the newest ones are dropped and counted."""
        if self._closed:
            return
        if len(self._outbox) >= OUTBOX_MESSAGES:
            self.dropped_messages += 1
            return
        self._outbox.append(msg if isinstance(msg, bytes) else P.encode_message(msg))
        self._wake.set()

    async def _drain(self) -> None:
        reported = 0
        while not self._closed:
            if not self._outbox:
                if self.dropped_messages != reported:
                    self._outbox.append(
                        P.encode_message({"type": "dropped", "messages": self.dropped_messages - reported})
                    )
                    reported = self.dropped_messages
                    continue
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self.transport.send(self._outbox.popleft())
            except ConnectionError:
                return

    def error(self, code: str, message: str, request_id: Any = None) -> None:
        reply: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if request_id is not None:
            reply["id"] = request_id
        self.push(reply)

    # -- receiving ------------------------------------------------------------
    def on_text(self, text: str | bytes) -> None:
        """Handle one JSON frame; never raises."""
        try:
            msg = P.decode_message(text, P.CLIENT_MESSAGES | _EXTRA_MESSAGES)
        except P.ProtocolError as exc:
            bad_input.warning(self.peer, "%s", exc)
            self.error(exc.code, str(exc))
            return
        kind = msg["type"]
        if self.role is None and kind != "hello":
            self.error("hello_first", "the first message must be hello", msg.get("id"))
            return
        handler = getattr(self, "_on_" + kind)
        try:
            handler(msg)
        except ApplianceError as exc:
            self.error(exc.code, str(exc), msg.get("id"))
        except (TypeError, ValueError, KeyError) as exc:
            bad_input.warning(self.peer, "bad %s message: %s", kind, exc)
            self.error("bad_message", f"bad {kind} message: {exc}", msg.get("id"))

    def on_binary(self, frame: bytes) -> None:
        """Handle one binary frame (``send_audio``); never raises."""
        try:
            audio = P.decode_audio(frame)
            if audio.kind != P.KIND_PLAYBACK:
                raise P.ProtocolError("bad_frame", "clients may only send playback frames (kind 2)")
        except P.ProtocolError as exc:
            bad_input.warning(self.peer, "%s", exc)
            self.error(exc.code, str(exc))
            return
        if self.role != "script":
            self.error("refused", "only scripts may send audio")
            return
        self.service.broadcast_browsers(frame)

    # -- messages -------------------------------------------------------------
    def _on_hello(self, msg: dict[str, Any]) -> None:
        if self.role is not None:
            raise _Refused("bad_message", "hello was already sent")
        if msg["protocol"] != P.PROTOCOL_VERSION:
            self.error(
                "protocol_version",
                f"protocol {msg['protocol']!r} is not spoken here; this device speaks {P.PROTOCOL_VERSION}",
            )
            self.transport.close(4002, "protocol version")
            return
        role = msg.get("role", "script")
        if role not in ROLES or (role == "browser" and self.principal.kind != "admin"):
            raise _Refused("bad_message", f"role {role!r} is not one of {', '.join(ROLES)} for this login")
        self.role = role
        self.name = str(msg.get("name") or self.principal.name)[:100]
        self.host = (
            "device" if self.principal.kind in ("run", "local") else str(msg.get("host") or self.peer)[:100]
        )
        self.inform_browser = bool(msg.get("inform_browser", False))
        self.service.attach(self)
        self.push(self.service.welcome(self))

    def _on_ping(self, msg: dict[str, Any]) -> None:
        self.push({"type": "pong", "id": msg.get("id")})

    def _on_audio(self, msg: dict[str, Any]) -> None:
        if not msg["on"]:
            self.stop_audio()
            return
        channels = msg.get("channels")
        if channels is not None:
            if not isinstance(channels, list) or not all(isinstance(c, int) and c >= 0 for c in channels):
                raise _Refused("bad_message", "channels must be a list of channel numbers from 0")
            if self.role == "browser" and len(channels) > MAX_BROWSER_AUDIO_CHANNELS:
                raise _Refused("bad_message", f"at most {MAX_BROWSER_AUDIO_CHANNELS} channels to a browser")
        elif self.role == "browser":
            channels = [0, 1][: self.service.config.channels]
        self.audio_channels = channels
        if self._audio is None:
            self._audio = self.service.bus.subscribe(f"session {self.id}", self.service.queue_blocks())
            self._audio_task = asyncio.get_running_loop().create_task(self._pump_audio(self._audio))
        self.push({"type": "ack", "id": msg.get("id")})

    async def _pump_audio(self, sub: Subscription) -> None:
        told_at, told_behind = -LAG_TELL_INTERVAL_S, False
        while True:
            try:
                block = await sub.get()
            except EOFError:
                return
            frame = self.service.encode_block(block, self.audio_channels)
            if frame is not None:
                try:
                    await self.transport.send(frame)
                except ConnectionError:
                    return
            self.queue_lag_ms = round(sub.lag_s * 1000, 1)
            lost = sub.take_new_losses()
            if lost:
                self.push({"type": "loss", "blocks": lost, "total": sub.dropped, "lag_ms": self.queue_lag_ms})
            behind = self.queue_lag_ms >= LAG_TELL_MS
            now = asyncio.get_running_loop().time()
            # At once when it falls behind or catches up, then once a second while behind.
            if behind != told_behind or (behind and now - told_at >= LAG_TELL_INTERVAL_S):
                self.push({"type": "lag", "ms": self.queue_lag_ms, "queued": sub.pending()})
                told_at, told_behind = now, behind

    @property
    def lag_ms(self) -> float:
        """How far behind live audio this client is: the device's queue or the script's own report."""
        reported, at = self._script_lag
        fresh = asyncio.get_running_loop().time() - at < LAG_REPORT_FRESH_S
        return max(self.queue_lag_ms, reported if fresh else 0.0)

    def _on_lag(self, msg: dict[str, Any]) -> None:
        ms = msg["ms"]
        if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 <= ms <= MAX_REPORTED_LAG_MS:
            raise _Refused("bad_message", f"lag ms must be a number from 0 to {MAX_REPORTED_LAG_MS:.0f}")
        self._script_lag = (float(ms), asyncio.get_running_loop().time())

    def stop_audio(self) -> None:
        if self._audio is not None:
            self._audio.close()
            self._audio = None

    def _on_change_config(self, msg: dict[str, Any]) -> None:
        fields = {k: msg.get(k) for k in ("rate", "channels", "buffer_frames", "volume")}
        config = self.service.change_config(**fields)
        self.push({"type": "ack", "id": msg.get("id"), "config": config.to_json()})

    @property
    def owner_key(self) -> str:
        """What this client's tabs belong to: its run, or this connection."""
        return self.principal.name if self.principal.kind == "run" else self.id

    def owner(self) -> Owner:
        if self.principal.kind == "run":
            return Owner("run", self.owner_key, self.name, "device", run=self.principal.name)
        return Owner("script", self.owner_key, self.name, self.host)

    def _on_add_handler(self, msg: dict[str, Any]) -> None:
        visible = self.principal.kind == "run" or self.inform_browser
        owner = self.owner()
        handler = self.service.handlers.add(
            msg["name"], msg["handler_type"], msg.get("parameters"), owner, visible
        )
        self.push({"type": "ack", "id": msg.get("id"), "handler": handler.id})

    def _on_handler_data(self, msg: dict[str, Any]) -> None:
        self.service.handlers.data(msg["handler"], msg["data"], self.owner_key)

    def _on_handler_close(self, msg: dict[str, Any]) -> None:
        self._need_admin()
        self.service.handlers.close(str(msg["handler"]))

    def _on_output(self, msg: dict[str, Any]) -> None:
        if self.inform_browser and self.principal.kind != "run":
            self.service.remote_output(self, str(msg["stream"]), str(msg["text"])[:10000])

    def _need_runs(self) -> None:
        if self.principal.kind not in RUN_PRINCIPALS:
            raise _Refused("forbidden", "only the admin and local users may start or stop scripts")

    def _need_admin(self) -> None:
        if self.principal.kind != "admin":
            raise _Refused("forbidden", "only the admin may do this")

    def _on_run_start(self, msg: dict[str, Any]) -> None:
        self._need_runs()
        name, code = msg["name"], msg["code"]
        if not isinstance(name, str) or not isinstance(code, str):
            raise _Refused("bad_message", "run_start needs a string name and string code")
        self.service.start_run(self, msg.get("id"), name, code)

    def _on_run_stop(self, msg: dict[str, Any]) -> None:
        self._need_runs()
        self.service.stop_run(self, msg.get("id"), str(msg["run"]))

    def _on_stream_start(self, msg: dict[str, Any]) -> None:
        self.service.stream_start(self, msg)

    def _on_stream_renew(self, msg: dict[str, Any]) -> None:
        self.service.stream_renew(self, str(msg["stream"]))

    def _on_stream_stop(self, msg: dict[str, Any]) -> None:
        self.service.stream_stop(self, msg.get("stream"))

    # -- teardown -------------------------------------------------------------
    def close(self) -> None:
        """The connection is gone: release everything it held."""
        if self._closed:
            return
        self._closed = True
        self.stop_audio()
        self._wake.set()
        self.service.detach(self)
        self._sender.cancel()
        if self._audio_task is not None:
            self._audio_task.cancel()

    async def wait_closed(self) -> None:
        for task in (self._sender, self._audio_task):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class _Refused(ApplianceError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_EXTRA_MESSAGES: dict[str, tuple[str, ...]] = {
    "lag": ("ms",),
    "handler_close": ("handler",),
    "run_start": ("name", "code"),
    "run_stop": ("run",),
    "stream_start": ("port",),
    "stream_renew": ("stream",),
    "stream_stop": (),
}
