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
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from browserinterface.client import DeviceError, ProtocolClient
from browserinterface.device import DeviceAddress
from browserinterface.protocol import PROTOCOL_VERSION
from rtai.errors import RtaiError
from rtai.sdp import StreamDescription

log = logging.getLogger(__name__)

RENEW_INTERVAL_S = 1.0
"""Seconds between renewals (the device drops a stream after a few seconds without)."""
REPLY_TIMEOUT_S = 5.0
NOT_OPEN = "stream_not_open"
"""The device's error code when a renewed stream had expired (e.g. after a network outage)."""


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
        self._tasks: set[asyncio.Task[None]] = set()

    def open(self) -> StreamDescription:
        """Connect, subscribe and start renewing; raises RtaiError in words."""
        self._thread = threading.Thread(target=self._thread_main, name="rtai-control")
        self._thread.start()
        self._ready.wait()
        if self._error is not None or self.description is None:
            self._thread.join()
            raise self._error or RtaiError("the device ended the connection before the stream started")
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
        except Exception as exc:
            log.debug("the control thread failed", exc_info=True)
            self._error = RtaiError(f"the control connection to the device failed: {exc!r}")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        client = ProtocolClient(self.device, self._token)
        reader: asyncio.Task[None] | None = None
        try:
            try:
                hello = {
                    "type": "hello",
                    "protocol": PROTOCOL_VERSION,
                    "role": "listener",
                    "name": self._name,
                }
                welcome = await client.connect(hello)
                self.config = dict(welcome.get("config") or {})
                self.peer_ip = client.peer_ip
                reader = asyncio.create_task(client.read(lambda msg: self._on_message(client, msg), _ignore))
                ack = await client.request(self._start_message(), REPLY_TIMEOUT_S)
            except DeviceError as exc:
                raise RtaiError(str(exc)) from None
            try:
                self.description = StreamDescription.from_json(ack.get("stream"))
            except ValueError as exc:
                raise RtaiError(f"the device sent a stream description rtai cannot use: {exc}") from None
            self._ready.set()
            await self._renew_until_stopped(client, reader)
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, DeviceError):
                    await reader
            await client.close()

    def _start_message(self) -> dict[str, Any]:
        start: dict[str, Any] = {"type": "stream_start", "port": self.port}
        if self.channels is not None:
            start["channels"] = self.channels
        if self.max_payload is not None:
            start["max_payload"] = self.max_payload
        return start

    def _on_message(self, client: ProtocolClient, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "stream_changed":
            self._changed(msg.get("stream"))
        elif kind == "error" and msg.get("code") == NOT_OPEN:
            log.warning("the device had dropped the stream; subscribing again")
            task = asyncio.get_running_loop().create_task(self._resubscribe(client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == "error":
            log.warning("device: %s", msg.get("message"))

    async def _resubscribe(self, client: ProtocolClient) -> None:
        try:
            ack = await client.request(self._start_message(), REPLY_TIMEOUT_S)
        except DeviceError as exc:
            log.warning("could not subscribe again: %s", exc)
            return
        self._changed(ack.get("stream"))

    def _changed(self, stream: Any) -> None:
        try:
            desc = StreamDescription.from_json(stream)
        except ValueError as exc:
            log.warning("ignoring a stream description rtai cannot use: %s", exc)
            return
        self.description = desc
        if self.on_change is not None:
            self.on_change(desc)

    async def _renew_until_stopped(self, client: ProtocolClient, reader: asyncio.Task[None]) -> None:
        assert self._stop is not None and self.description is not None
        while not self._stop.is_set():
            stopper = asyncio.ensure_future(self._stop.wait())
            done, _ = await asyncio.wait(
                {stopper, reader}, timeout=RENEW_INTERVAL_S, return_when=asyncio.FIRST_COMPLETED
            )
            stopper.cancel()
            if reader in done:
                reason = client.close_reason or "the connection closed"
                if not reader.cancelled() and reader.exception() is not None:
                    reason = str(reader.exception())
                log.warning("lost the device: %s", reason)
                if self.on_lost is not None:
                    self.on_lost(reason)
                return
            sid = self.description.id
            msg = {"type": "stream_stop" if self._stop.is_set() else "stream_renew", "stream": sid}
            try:
                await client.send(msg)
            except DeviceError as exc:
                log.warning("%s", exc)
                return
        reader.cancel()


def _ignore(_frame: bytes) -> None:
    """Listeners get their audio over RTP; the control socket carries none."""
