"""One client connection speaking the client protocol (docs/protocol.md).

Independent of Tornado: the WebSocket handler gives it a ``Transport`` and
feeds it frames.  Each session has a bounded outbox for text messages and,
when it asked for audio, its own bus subscription; both drain in tasks, so a
slow client only ever loses its own messages.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol

from appliance.auth import Principal, TokenStore
from appliance.capture.block import Block
from appliance.capture.bus import Bus, Subscription
from appliance.capture.config import AudioConfig
from appliance.errors import ApplianceError
from appliance.sessions import batching, flow
from appliance.sessions.handlers import HandlerRegistry, Owner
from appliance.system.ratelog import RateLimitedLog
from appliance.system.supervisor import log_failure
from browserinterface import protocol as P
from browserinterface import schema as S

log = logging.getLogger(__name__)
bad_input = RateLimitedLog(log)

OUTBOX_MESSAGES = 1000
#: Extra fields of a request's ack, or None when the handler answers by itself.
Reply = dict[str, Any] | None
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


class SessionHost(Protocol):
    """What a session needs from the service: the narrow seam between the two.

    ``appliance.service.Service`` implements it; nothing here imports the
    service, so dependencies point one way, from the service down.
    """

    bus: Bus
    handlers: HandlerRegistry
    tokens: TokenStore
    """Its ``connections`` end this session when its credential is revoked or ends."""

    @property
    def config(self) -> AudioConfig: ...

    def attach(self, session: ClientSession) -> None: ...

    def detach(self, session: ClientSession) -> None: ...

    def welcome(self, session: ClientSession) -> dict[str, Any]: ...

    def welcome_text(self, session: ClientSession) -> str: ...

    def queue_blocks(self) -> int: ...

    def encode_block(self, block: Block, channels: list[int] | None) -> bytes | None: ...

    def change_config(self, by: str = "the device", **fields: Any) -> AudioConfig: ...

    def broadcast_browsers(self, msg: dict[str, Any] | bytes | str) -> None: ...

    def remote_output(self, session: ClientSession, stream: str, text: str) -> None: ...

    def start_run(
        self, session: ClientSession, request_id: Any, name: str, code: str, **where: Any
    ) -> None: ...

    def stop_run(self, session: ClientSession, request_id: Any, run_id: str) -> None: ...

    def run_origin(self, run_id: str) -> str: ...

    def stream_start(
        self, session: ClientSession, port: int, channels: list[int] | None, max_payload: int | None
    ) -> dict[str, Any]: ...

    def stream_renew(self, session: ClientSession, stream_id: str) -> None: ...

    def stream_stop(self, session: ClientSession, stream_id: str | None) -> None: ...


class Transport(Protocol):
    """What a session needs from its connection."""

    def send(self, message: str | bytes) -> Awaitable[None]: ...

    def close(self, code: int, reason: str) -> None: ...


class ClientSession:
    """The state of one connection: role, audio subscription, outbox."""

    def __init__(self, service: SessionHost, transport: Transport, principal: Principal, peer: str, sid: str):
        self.service = service
        self.transport = transport
        self.principal = principal
        self.peer = peer
        self.id = sid
        self.role: str | None = None
        self.name = ""
        self.host = peer
        self.inform_browser = False
        self.batch = False
        """The client takes several messages in one text frame (``appliance.sessions.batching``)."""
        self._last_text = 0.0
        self.wants_ring = False
        """A script on this machine that can map the audio ring (``hello`` said ``ring``)."""
        self.audio_channels: list[int] | None = None
        self._audio: Subscription | None = None
        self._audio_task: asyncio.Task[None] | None = None
        self._outbox: deque[str | bytes] = deque()
        self._outbox_bytes = 0
        self._wake = asyncio.Event()
        self.dropped_messages = 0
        self.auth_generation: str | None = None
        """For a browser: the password generation it signed in under; a change ends the session."""
        self._closed = False
        self.queue_lag_ms = 0.0
        """How far behind live audio the block sent last was, on the device's side."""
        self._script_lag = (0.0, -LAG_REPORT_FRESH_S)
        self._sender = asyncio.get_running_loop().create_task(self._drain(), name=f"session {sid} sender")
        self._sender.add_done_callback(log_failure)
        self._forget = [service.tokens.connections.add([self.credential], self.end)]

    def register_credential(self, key: str) -> None:
        """Also end this connection when ``key`` is ended (``browser:SESSION`` on sign-out)."""
        self._forget.append(self.service.tokens.connections.add([key], self.end))

    def end(self, reason: str) -> None:
        """The credential was revoked or the session ended: close at once."""
        self.transport.close(4003, reason[:120])
        self.close()

    # -- sending --------------------------------------------------------------
    def push(self, msg: dict[str, Any] | bytes | str) -> None:
        """Queue a message (a ``str`` is a text frame already encoded); when the
        client is too slow the newest ones are dropped and counted."""
        if self._closed:
            return
        frame = msg if isinstance(msg, (bytes, str)) else P.encode_message(msg)
        # Bounded in bytes too: a peer that does not read holds at most OUTBOX_BYTES.
        if len(self._outbox) >= OUTBOX_MESSAGES or self._outbox_bytes + len(frame) > flow.OUTBOX_BYTES:
            self.dropped_messages += 1
            return
        self._outbox.append(frame)
        self._outbox_bytes += len(frame)
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
            frame = self._outbox.popleft()
            self._outbox_bytes -= len(frame)
            if self.batch and isinstance(frame, str):
                frame = await self._gather(frame)
            try:
                await self.transport.send(frame)
            except ConnectionError:
                return

    async def _gather(self, first: str) -> str:
        """Wait out the rest of the batch interval, then take what queued behind ``first``."""
        loop = asyncio.get_running_loop()
        wait = self._last_text + batching.BATCH_INTERVAL_S - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        frame, taken = batching.take_batch(first, self._outbox)
        self._outbox_bytes -= taken
        self._last_text = loop.time()
        return frame

    def error(self, code: str, message: str, request_id: Any = None, field: str | None = None) -> None:
        reply: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if request_id is not None:
            reply["id"] = request_id
        if field is not None:
            reply["field"] = field
        self.push(reply)

    # -- receiving ------------------------------------------------------------
    def on_text(self, text: str | bytes) -> None:
        """Handle one JSON frame: decoded and validated here, once; never raises for bad input."""
        try:
            msg = S.decode_client(text)
        except S.MessageError as exc:
            bad_input.warning(self.peer, "%s", exc)
            self.error(exc.code, str(exc), exc.request_id, exc.field)
            return
        if self.role is None and not isinstance(msg, S.Hello):
            self.error("hello_first", "the first message must be hello", msg.id)
            return
        try:
            reply = self._handlers[type(msg)](self, msg)
        except ApplianceError as exc:
            self.error(exc.code, str(exc), msg.id)
            return
        # Every request with an id gets exactly one answer; handlers that answer
        # themselves (hello, ping, runs) return None.
        if reply is not None and msg.id is not None:
            self.push({"type": "ack", "id": msg.id, **reply})

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
    def _on_hello(self, msg: S.Hello) -> Reply:
        if self.role is not None:
            raise _Refused("bad_message", "hello was already sent")
        if msg.protocol != P.PROTOCOL_VERSION:
            self.error(
                "protocol_version",
                f"protocol {msg.protocol!r} is not spoken here; this device speaks {P.PROTOCOL_VERSION}",
                msg.id,
            )
            self.transport.close(4002, "protocol version")
            return None
        if msg.role == "browser" and self.principal.kind != "admin":
            raise _Refused("forbidden", "only the admin's browser session may take the role browser")
        self.role = msg.role
        self.name = msg.name or self.principal.name
        self.host = "device" if self.principal.kind in ("run", "local") else msg.host or self.peer
        self.inform_browser = msg.inform_browser
        self.batch = msg.batch
        self.wants_ring = msg.ring and msg.role == "script" and _is_loopback(self.peer)
        self.service.attach(self)
        self.push(self.service.welcome_text(self))
        return None

    def _on_ping(self, msg: S.Ping) -> Reply:
        self.push({"type": "pong", "id": msg.id})
        return None

    def _on_audio(self, msg: S.Audio) -> Reply:
        if not msg.on:
            self.stop_audio()
            return {}
        channels = msg.channels
        if channels is not None:
            if self.role == "browser" and len(channels) > MAX_BROWSER_AUDIO_CHANNELS:
                raise _Refused("bad_message", f"at most {MAX_BROWSER_AUDIO_CHANNELS} channels to a browser")
        elif self.role == "browser":
            channels = [0, 1][: self.service.config.channels]
        self.audio_channels = channels
        if self._audio is None:
            self._audio = self.service.bus.subscribe(f"session {self.id}", self.service.queue_blocks())
            pump = self._pump_audio(self._audio)
            self._audio_task = asyncio.get_running_loop().create_task(pump, name=f"session {self.id} audio")
            self._audio_task.add_done_callback(log_failure)
        return {}

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

    def _on_lag(self, msg: S.LagReport) -> Reply:
        self._script_lag = (float(msg.ms), asyncio.get_running_loop().time())
        return None

    def stop_audio(self) -> None:
        if self._audio is not None:
            self._audio.close()
            self._audio = None

    def _on_change_config(self, msg: S.ChangeConfig) -> Reply:
        who = f"{self.credential} ({self.name} on {self.host})"
        config = self.service.change_config(**msg.fields(), by=who)
        return {"config": config.to_json()}

    @property
    def owner_key(self) -> str:
        """What this client's tabs belong to: its run, or this connection."""
        return self.principal.name if self.principal.kind == "run" else self.id

    @property
    def credential(self) -> str:
        """Who this connection is, for quotas and logs: ``run:ID``, ``api:NAME``, ``admin:admin``."""
        return f"{self.principal.kind}:{self.principal.name}"

    def owner(self) -> Owner:
        if self.principal.kind == "run":
            origin = self.service.run_origin(self.principal.name)
            return Owner("run", self.owner_key, self.name, "device", run=self.principal.name, origin=origin)
        return Owner("script", self.owner_key, self.name, self.host, credential=self.credential)

    def _on_add_handler(self, msg: S.AddHandler) -> Reply:
        visible = self.principal.kind == "run" or self.inform_browser
        handler = self.service.handlers.add(msg.name, msg.handler_type, msg.parameters, self.owner(), visible)
        return {"handler": handler.id}

    def _on_handler_data(self, msg: S.HandlerData) -> Reply:
        self.service.handlers.data(msg.handler, msg.data, self.owner_key)
        return {}

    def _on_handler_close(self, msg: S.HandlerClose) -> Reply:
        self._need_admin()
        self.service.handlers.close(msg.handler)
        return {}

    def _on_output(self, msg: S.Output) -> Reply:
        if self.inform_browser and self.principal.kind != "run":
            self.service.remote_output(self, msg.stream, msg.text)
        return {}

    def _need_runs(self) -> None:
        if self.principal.kind not in RUN_PRINCIPALS:
            raise _Refused("forbidden", "only the admin and local users may start or stop scripts")

    def _need_admin(self) -> None:
        if self.principal.kind != "admin":
            raise _Refused("forbidden", "only the admin may do this")

    def _on_run_start(self, msg: S.RunStart) -> Reply:
        self._need_runs()
        files = _run_files(msg.files)
        self.service.start_run(self, msg.id, msg.name, msg.code, project=msg.project, files=files)
        return None

    def _on_run_stop(self, msg: S.RunStop) -> Reply:
        self._need_runs()
        self.service.stop_run(self, msg.id, msg.run)
        return None

    def _on_stream_start(self, msg: S.StreamStart) -> Reply:
        return {"stream": self.service.stream_start(self, msg.port, msg.channels, msg.max_payload)}

    def _on_stream_renew(self, msg: S.StreamRenew) -> Reply:
        self.service.stream_renew(self, msg.stream)
        return {}

    def _on_stream_stop(self, msg: S.StreamStop) -> Reply:
        self.service.stream_stop(self, msg.stream)
        return {}

    _handlers: ClassVar[dict[type[S.ClientMessage], Callable[[ClientSession, Any], Reply]]] = {
        S.Hello: _on_hello,
        S.Ping: _on_ping,
        S.LagReport: _on_lag,
        S.Audio: _on_audio,
        S.ChangeConfig: _on_change_config,
        S.AddHandler: _on_add_handler,
        S.HandlerData: _on_handler_data,
        S.HandlerClose: _on_handler_close,
        S.Output: _on_output,
        S.RunStart: _on_run_start,
        S.RunStop: _on_run_stop,
        S.StreamStart: _on_stream_start,
        S.StreamRenew: _on_stream_renew,
        S.StreamStop: _on_stream_stop,
    }

    # -- teardown -------------------------------------------------------------
    def close(self) -> None:
        """The connection is gone: release everything it held."""
        if self._closed:
            return
        self._closed = True
        for forget in self._forget:
            forget()
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


def _is_loopback(peer: str) -> bool:
    """Whether the peer is on this machine (only there can it map the ring)."""
    try:
        return ipaddress.ip_address(peer.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False


def _run_files(files: dict[str, str] | None) -> dict[str, bytes] | None:
    """run_start's ``files``: ``{"relative/path": "base64"}`` (``appliance run DIR``), decoded."""
    if files is None:
        return None
    try:
        return {str(path): base64.b64decode(data, validate=True) for path, data in files.items()}
    except binascii.Error as exc:
        raise _Refused("bad_message", f"run_start's files: a file is not valid base64 ({exc})") from None


class _Refused(ApplianceError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
