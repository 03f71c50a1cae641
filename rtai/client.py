"""Getting a stream from a device: subscribe over its API and keep renewing.

    with DeviceStream("micarray.local", token, port=rx.port) as stream:
        rx = Receiver.from_description(stream.description, ...)

The control connection is the device's authenticated WebSocket
(``/api/v1/ws``, ``Authorization: Bearer <token>``).  A background thread
with its own event loop renews the subscription every second and reports
``stream_changed`` to ``on_change``; the device stops sending a few seconds
after the renewals stop, so a crashed listener is never flooded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from tornado.httpclient import HTTPClientError
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError

from browserinterface.apisocket import open_api_socket
from browserinterface.device import DeviceAddress
from browserinterface.protocol import PROTOCOL_VERSION, WS_PATH
from rtai.errors import DeviceRefused, DeviceUnreachable, RtaiError
from rtai.sdp import StreamDescription

log = logging.getLogger(__name__)

RENEW_INTERVAL_S = 1.0
"""Seconds between renewals (the device drops a stream after a few seconds without)."""
REPLY_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 1.0
"""How long the device may take to answer a closing handshake."""
START_ID = 1
RESTART_ID = 2
NOT_OPEN = "stream_not_open"
"""The device's error code when a renewed stream had expired (e.g. after a network outage)."""


async def close_connection(conn: WebSocketClientConnection) -> None:
    """Close a WebSocket and its socket before the event loop ends.

    Tornado waits for the peer's closing frame with a timer; an event loop
    that ends first would leave the socket open.
    """
    conn.close()
    stream = conn.stream
    deadline = asyncio.get_running_loop().time() + CLOSE_TIMEOUT_S
    while stream is not None and not stream.closed():
        if asyncio.get_running_loop().time() > deadline:
            stream.close()
            break
        await asyncio.sleep(0.01)


class DeviceStream:
    """One subscription to a device's RTP stream, renewed from a background thread."""

    def __init__(
        self,
        device: DeviceAddress,
        token: str,
        port: int,
        *,
        channels: list[int] | None = None,
        max_payload: int | None = None,
        name: str = "rtai",
        on_change: Callable[[StreamDescription], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.device = device
        self.port = port
        self.channels = channels
        self.max_payload = max_payload
        self.on_change = on_change
        self.on_lost = on_lost
        self.description: StreamDescription | None = None
        self.config: dict[str, Any] = {}
        """The device's audio configuration from its welcome message."""
        self.peer_ip: str | None = None
        """The device's address as connected (packets must come from it)."""
        self._token = token
        self._name = name
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def open(self) -> StreamDescription:
        """Connect, subscribe and start renewing; raises RtaiError in words."""
        self._thread = threading.Thread(target=self._thread_main, name="rtai-control")
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        assert self.description is not None
        return self.description

    def close(self) -> None:
        """Stop the stream on the device (when still connected) and end the thread."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            # The loop may close between the check and the call when the device
            # went away at this moment; then there is nothing left to stop.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> DeviceStream:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the control thread ----------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except RtaiError as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        conn = await self._connect()
        try:
            await self._subscribe(conn)
            self._ready.set()
            reader = asyncio.create_task(self._read(conn))
            await self._renew_until_stopped(conn, reader)
        finally:
            await close_connection(conn)

    async def _connect(self) -> WebSocketClientConnection:
        where = f"{self.device.name or self.device.host} at {self.device.netloc}"
        try:
            conn = await open_api_socket(self.device, self._token)
        except HTTPClientError as exc:
            if exc.code in (401, 403):
                raise DeviceRefused(
                    f"the device {where} refused the token (HTTP {exc.code}); make a token "
                    "in its web page under Tokens, or with `appliance token new NAME` on it"
                ) from None
            if exc.code == 599:
                raise DeviceUnreachable(f"cannot reach the device {where}: timed out") from None
            raise DeviceRefused(
                f"the device {where} answered HTTP {exc.code} at {WS_PATH}; is it an appliance?"
            ) from None
        except OSError as exc:
            raise DeviceUnreachable(f"cannot reach the device {where}: {exc.strerror or exc}") from None
        sock = conn.stream.socket if conn.stream is not None else None
        self.peer_ip = sock.getpeername()[0] if sock is not None else self.device.host
        return conn

    def _start_message(self, request_id: int) -> str:
        start: dict[str, Any] = {"type": "stream_start", "id": request_id, "port": self.port}
        if self.channels is not None:
            start["channels"] = self.channels
        if self.max_payload is not None:
            start["max_payload"] = self.max_payload
        return json.dumps(start)

    async def _subscribe(self, conn: WebSocketClientConnection) -> None:
        hello = {"type": "hello", "protocol": PROTOCOL_VERSION, "role": "listener", "name": self._name}
        await conn.write_message(json.dumps(hello))
        welcome = await self._reply(conn, "welcome")
        self.config = dict(welcome.get("config") or {})
        await conn.write_message(self._start_message(START_ID))
        ack = await self._reply(conn, "ack")
        try:
            self.description = StreamDescription.from_json(ack.get("stream"))
        except ValueError as exc:
            raise RtaiError(f"the device sent a stream description rtai cannot use: {exc}") from None

    async def _reply(self, conn: WebSocketClientConnection, kind: str) -> dict[str, Any]:
        """The next message of type ``kind``; an error or a closed connection raises."""
        while True:
            try:
                text = await asyncio.wait_for(conn.read_message(), REPLY_TIMEOUT_S)
            except TimeoutError:
                raise DeviceUnreachable(f"the device sent no {kind} within {REPLY_TIMEOUT_S:g} s") from None
            if text is None:
                reason = conn.close_reason or "no reason given"
                raise DeviceRefused(f"the device closed the connection: {reason}")
            msg = json.loads(text)
            if msg.get("type") == "error":
                raise DeviceRefused(f"the device refused: {msg.get('message', msg)}")
            if msg.get("type") == kind:
                return dict(msg)

    async def _read(self, conn: WebSocketClientConnection) -> None:
        while (text := await conn.read_message()) is not None:
            try:
                msg = json.loads(text)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            kind = msg.get("type")
            if kind == "stream_changed" or (kind == "ack" and msg.get("id") == RESTART_ID):
                self._changed(msg.get("stream"))
            elif kind == "error" and msg.get("code") == NOT_OPEN:
                log.warning("the device had dropped the stream; subscribing again")
                await conn.write_message(self._start_message(RESTART_ID))
            elif kind == "error":
                log.warning("device: %s", msg.get("message"))

    def _changed(self, stream: Any) -> None:
        try:
            desc = StreamDescription.from_json(stream)
        except ValueError as exc:
            log.warning("ignoring a stream description rtai cannot use: %s", exc)
            return
        self.description = desc
        if self.on_change is not None:
            self.on_change(desc)

    async def _renew_until_stopped(self, conn: WebSocketClientConnection, reader: asyncio.Task[None]) -> None:
        assert self._stop is not None and self.description is not None
        while not self._stop.is_set():
            stopper = asyncio.ensure_future(self._stop.wait())
            done, _ = await asyncio.wait(
                {stopper, reader}, timeout=RENEW_INTERVAL_S, return_when=asyncio.FIRST_COMPLETED
            )
            stopper.cancel()
            if reader in done:
                reason = conn.close_reason or "the connection closed"
                log.warning("lost the device: %s", reason)
                if self.on_lost is not None:
                    self.on_lost(reason)
                return
            sid = self.description.id
            msg = {"type": "stream_stop" if self._stop.is_set() else "stream_renew", "stream": sid}
            try:
                await conn.write_message(json.dumps(msg))
            except (WebSocketClosedError, StreamClosedError) as exc:
                log.warning("lost the device: %s", exc)
                return
        reader.cancel()
