"""The connection to the device, on its own thread with its own event loop.

It turns protocol messages into events for the dispatcher (``_dispatch``) and
carries requests from the script's threads to the device.  When the device
goes away it reconnects, says hello again and re-creates the script's tabs,
so a restart of the service does not end the script.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from browserinterface import protocol as P
from browserinterface._locate import Target, reread_local_token
from browserinterface._ringfeed import RingFeed
from browserinterface.client import DeviceError, ProtocolClient
from browserinterface.ringfetch import fetch_ring, wants_ring

#: Waits between reconnection attempts, in seconds (doubling up to the last).
RECONNECT_DELAYS_S = (0.1, 0.2, 0.5, 1.0, 2.0)
REQUEST_TIMEOUT_S = 10.0
RING_FETCH_TIMEOUT_S = 3.0
#: How often the lag is measured from the ring and told to the device, in seconds.
LAG_TICK_S = 0.5
#: How long stop() waits for queued messages to be sent.
CLOSE_FLUSH_S = 2.0

Event = tuple[str, Any]


class RemoteHandler:
    """The client's record of one ``add_handler``: kept to re-create it after a reconnect."""

    def __init__(self, name: str, handler_type: str, parameters: dict[str, Any]) -> None:
        self.name = name
        self.handler_type = handler_type
        self.parameters = parameters
        self.server_id: str | None = None
        self.pending: list[Any] = []
        self.latest: Any = None


class Connection:
    """Owns the WebSocket; every method but the coroutines is safe from any thread."""

    def __init__(
        self,
        target: Target,
        hello: dict[str, Any],
        emit: Callable[[Event], None],
        tick: Callable[[], None] = lambda: None,
    ) -> None:
        self._target = target
        self._hello = {**hello, "ring": True} if wants_ring(target) else hello
        self._emit = emit
        self._tick = tick
        """Called every LAG_TICK_S while audio comes from the ring (the lag is measured there)."""
        self._loop = asyncio.new_event_loop()
        self._client: ProtocolClient | None = None
        self._handlers: list[RemoteHandler] = []
        self._want_audio = False
        self._ring_offer: dict[str, Any] | None = None
        self._ring_on = False
        self._lag_task: asyncio.Task[None] | None = None
        self._closing = False
        self._shutdown_task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self.connected = threading.Event()
        self.settled = threading.Event()
        """Set once connected, or once the device refused the script for good."""
        self.refusal: str | None = None
        self._thread = threading.Thread(target=self._run, name="browserinterface-connection", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Send what is queued (up to CLOSE_FLUSH_S), then disconnect."""
        if not self._closing:
            self._closing = True
            # The thread may end (and close its loop) right after this check, as it does
            # once the device refused the token: then there is nothing left to shut down.
            if self._thread.is_alive():
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._begin_shutdown)
        # Every caller waits for the flush: the main thread must not end the
        # interpreter while a callback's stop() is still sending.
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=CLOSE_FLUSH_S + 1)

    def _begin_shutdown(self) -> None:
        self._shutdown_task = self._loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        # Sends may queue more sends (a tab's data after its ack): wait until none is left.
        deadline = self._loop.time() + CLOSE_FLUSH_S
        while self._sends and (left := deadline - self._loop.time()) > 0:
            await asyncio.wait(set(self._sends), timeout=left)
        if self._client is not None:
            await self._client.close()
        me = asyncio.current_task()
        for task in asyncio.all_tasks(self._loop):
            if task is not me:
                task.cancel()

    # -- the connection thread ----------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._keep_connected())
        except asyncio.CancelledError:
            pass
        finally:
            # The connection may end while the shutdown still closes the socket: let it finish.
            task = self._shutdown_task
            if task is not None and not task.done():
                with contextlib.suppress(asyncio.CancelledError):
                    self._loop.run_until_complete(task)
            self._loop.close()

    async def _keep_connected(self) -> None:
        failures = 0
        while not self._closing:
            try:
                await self._session()
                failures = 0
            except DeviceError as exc:
                if exc.kind == "refused" and not self._token_changed(exc):
                    self.refusal = str(exc)
                    self.settled.set()
                    self._emit(("fatal", str(exc)))
                    return
                if failures == 0 and exc.kind != "refused":
                    self._emit(("disconnected", str(exc)))
                failures += 1
            self.connected.clear()
            if self._closing:
                return
            await asyncio.sleep(RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)])

    def _token_changed(self, exc: DeviceError) -> bool:
        """On the device itself, a refused local token may have been renewed: use the new one."""
        if self._target.local and "refused the token" in str(exc):
            fresh = reread_local_token()
            if fresh and fresh != self._target.token:
                self._target = Target(self._target.address, fresh, True)
                return True
        return False

    async def _session(self) -> None:
        client = ProtocolClient(self._target.address, self._target.token)
        self._client = client
        try:
            welcome = await client.connect(self._hello)
            self._on_welcome(welcome)
            await client.read(self._on_message, self._on_binary)
        finally:
            self._client = None
            self._stop_ring()
            await client.close()
            for handler in self._handlers:
                handler.server_id = None

    def _on_binary(self, frame: bytes) -> None:
        try:
            audio = P.decode_audio(frame)
        except P.ProtocolError as exc:
            self._emit(("warning", f"ignored a bad audio frame: {exc}"))
            return
        self._emit(("block", audio))

    def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "config":
            self._emit(("config", msg))
        elif kind == "error":
            self._emit(("warning", f"device: {msg.get('message')}"))
        elif kind == "loss":
            self._emit(("loss", int(msg.get("blocks", 0))))
        elif kind == "stop":
            self._emit(("stop", "stopped from the browser"))

    def _on_welcome(self, msg: dict[str, Any]) -> None:
        # Nothing here may await: a tab added meanwhile would be registered twice.
        self._emit(("config", msg))
        self._ring_offer = msg.get("ring")
        self.connected.set()
        self.settled.set()
        if self._want_audio:
            self._start_audio()
        for handler in self._handlers:
            # Not awaited: the reply arrives through the read loop.
            self._track(self._register(handler))

    # -- audio: the ring on the device, else binary frames ----------------------
    def _start_audio(self) -> None:
        if self._ring_offer is None:
            self._send_soon({"type": "audio", "on": True})
        else:
            self._track(self._attach_ring(self._ring_offer))

    async def _attach_ring(self, offer: dict[str, Any]) -> None:
        try:
            reader = await asyncio.wait_for(fetch_ring(offer), RING_FETCH_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            self._ring_offer = None
            self._emit(("warning", f"audio comes over the WebSocket: the ring could not be mapped ({exc})"))
            self._send_soon({"type": "audio", "on": True})
            return
        if self._ring_offer is not offer:
            return  # the connection ended meanwhile
        self._ring_on = True
        self._emit(("ring", RingFeed(reader)))
        if self._lag_task is None:
            self._lag_task = self._loop.create_task(self._tell_lag())

    def ring_closed(self) -> None:
        """The device made a new ring (another shape): fetch it (from any thread)."""

        def refetch() -> None:
            if self._ring_on and self._ring_offer is not None:
                self._track(self._attach_ring(self._ring_offer))

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(refetch)

    async def _tell_lag(self) -> None:
        while True:
            await asyncio.sleep(LAG_TICK_S)
            self._tick()

    def _stop_ring(self) -> None:
        self._ring_offer = None
        if self._ring_on:
            self._ring_on = False
            self._emit(("ring", None))
        if self._lag_task is not None:
            self._lag_task.cancel()
            self._lag_task = None

    # -- requests -----------------------------------------------------------------
    def _send_soon(self, msg: dict[str, Any] | bytes) -> None:
        """Queue a message in order; stop() waits for these (loop thread only)."""
        self._track(self._send(msg))

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self, msg: dict[str, Any] | bytes) -> None:
        if self._client is None:
            return
        # A lost connection is noticed by the read loop, which reconnects.
        with contextlib.suppress(DeviceError):
            await self._client.send(msg)

    async def _request(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The device's reply: its ack, or its error as a message (callers word it)."""
        if self._client is None:
            raise ConnectionError("not connected to the device")
        try:
            return await self._client.request(msg)
        except DeviceError as exc:
            if exc.code is None:
                raise ConnectionError(str(exc)) from None
            return {"type": "error", "code": exc.code, "message": exc.detail or str(exc)}

    async def _register(self, handler: RemoteHandler) -> None:
        reply = await self._request(
            {
                "type": "add_handler",
                "name": handler.name,
                "handler_type": handler.handler_type,
                "parameters": handler.parameters,
            }
        )
        if reply["type"] == "error":
            self._emit(("warning", f"add_handler {handler.name!r}: {reply.get('message')}"))
            return
        handler.server_id = reply["handler"]
        pending, handler.pending = handler.pending, []
        if not pending and handler.latest is not None:
            pending = [handler.latest]  # after a reconnect, show the last state again
        # Queued without awaiting, so data sent from now on cannot overtake these.
        for data in pending:
            self._send_soon({"type": "handler_data", "handler": handler.server_id, "data": data})

    def call(self, msg: dict[str, Any], timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        """Send a request from any thread and wait for its reply."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("browserinterface requests cannot be made from the connection thread")
        return asyncio.run_coroutine_threadsafe(self._request(msg), self._loop).result(timeout)

    def post(self, msg: dict[str, Any] | bytes) -> None:
        """Send without waiting, from any thread."""
        self._loop.call_soon_threadsafe(self._send_soon, msg)

    def want_audio(self) -> None:
        def turn_on() -> None:
            if not self._want_audio:
                self._want_audio = True
                if self._client is not None and self.connected.is_set():
                    self._start_audio()

        self._loop.call_soon_threadsafe(turn_on)

    def add_handler(self, handler: RemoteHandler) -> None:
        def add() -> None:
            self._handlers.append(handler)
            if self._client is not None and self.connected.is_set():
                self._track(self._register(handler))

        self._loop.call_soon_threadsafe(add)

    def send_data(self, handler: RemoteHandler, data: Any) -> None:
        def send() -> None:
            handler.latest = data
            if handler.server_id is None:
                handler.pending.append(data)
                del handler.pending[:-1000]  # keep memory bounded while disconnected
            else:
                self._send_soon({"type": "handler_data", "handler": handler.server_id, "data": data})

        self._loop.call_soon_threadsafe(send)


def default_hello(inform_browser: bool) -> dict[str, Any]:
    """The hello a script sends: who it is and where it runs."""
    name = sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "python"
    return {
        "type": "hello",
        "protocol": P.PROTOCOL_VERSION,
        "role": "script",
        "name": name or "python",
        "host": socket.gethostname(),
        "inform_browser": inform_browser,
    }
