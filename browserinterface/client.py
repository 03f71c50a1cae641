"""The one protocol client: connect, authenticate, say hello, make requests, read messages.

``browserinterface`` (scripts), ``rtai`` (listeners) and ``appliance run``
(the console) all reach the device through :class:`ProtocolClient`, so a
refused token, an unreachable device and a protocol error read the same
wherever they happen, as a :class:`DeviceError` whose message says what to do.
Each caller keeps only what is its own: the script's callbacks and
reconnection, the listener's renewals, the console's output.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from browserinterface import protocol as P
from browserinterface import schema as S
from browserinterface._locate import SetupError
from browserinterface.apisocket import ApiSocket, HandshakeError, close_tornado, open_api_socket

if TYPE_CHECKING:
    from tornado.websocket import WebSocketClientConnection
from browserinterface.device import DeviceAddress

REPLY_TIMEOUT_S = 10.0
TOKEN_HELP = "make a token in the device's web page (Settings), or with `appliance token new NAME` on it"


class DeviceError(SetupError):
    """The device could not be used; the message says why and what to do.

    ``kind`` is ``unreachable`` (no answer; trying again may help),
    ``refused`` (the token, the protocol version or a request was refused) or
    ``protocol`` (the device broke the protocol).  ``code`` is the device's
    error code and ``detail`` its own words, when it sent them.
    """

    def __init__(self, kind: str, message: str, code: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.detail = detail


def describe(address: DeviceAddress) -> str:
    """How messages name a device: ``name.local at host:port`` (or the host itself)."""
    return f"{address.name or address.host} at {address.netloc}"


def connect_error(address: DeviceAddress, exc: BaseException) -> DeviceError:
    """The words for a failed connection, the same for every client."""
    where = describe(address)
    if isinstance(exc, HandshakeError):
        if exc.code in (401, 403):
            return DeviceError(
                "refused", f"the device {where} refused the token (HTTP {exc.code}); {TOKEN_HELP}"
            )
        if exc.code == 599:
            return DeviceError("unreachable", f"cannot reach the device {where}: timed out")
        return DeviceError(
            "refused",
            f"the device {where} answered HTTP {exc.code} at {P.WS_PATH}; is it a micarray device?",
        )
    if isinstance(exc, TimeoutError):
        return DeviceError("unreachable", f"cannot reach the device {where}: timed out")
    if isinstance(exc, OSError):
        return DeviceError("unreachable", f"cannot reach the device {where}: {exc.strerror or exc}")
    return DeviceError("protocol", f"the connection to the device {where} failed: {exc}")


async def close_socket(ws: WebSocketClientConnection) -> None:
    """Close a Tornado WebSocket (a test's or a tool's own) and its socket before the loop ends."""
    await close_tornado(ws)


class ProtocolClient:
    """One authenticated connection; used from one event loop."""

    def __init__(self, address: DeviceAddress, token: str) -> None:
        self.address = address
        self._token = token
        self._ws: ApiSocket | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.welcome: dict[str, Any] = {}
        self.peer_ip: str | None = None
        """The device's address as connected (RTP must come from it)."""

    async def connect(self, hello: dict[str, Any]) -> dict[str, Any]:
        """Open the socket, say ``hello`` and return the ``welcome``; raises DeviceError."""
        try:
            self._ws = await open_api_socket(self.address, self._token)
        except (OSError, TimeoutError) as exc:
            raise connect_error(self.address, exc) from None
        self.peer_ip = self._ws.peer_ip or self.address.host
        await self.send(hello)
        while True:
            msg = await self._next(REPLY_TIMEOUT_S, "welcome")
            if isinstance(msg, bytes):
                continue
            if msg["type"] == "welcome":
                self.welcome = msg
                return msg
            if msg["type"] == "error":
                raise self._refusal(msg)

    async def send(self, msg: dict[str, Any] | bytes) -> None:
        """Send one message; a lost connection raises DeviceError (unreachable)."""
        if self._ws is None:
            raise DeviceError("unreachable", f"not connected to the device {describe(self.address)}")
        try:
            await self._ws.send(msg if isinstance(msg, bytes) else P.encode_message(msg))
        except ConnectionError:
            raise self._lost() from None

    async def request(self, msg: dict[str, Any], timeout: float = REPLY_TIMEOUT_S) -> dict[str, Any]:
        """Send a request with a fresh id; its ``ack`` (or ``pong``), or DeviceError for its ``error``.

        Replies are matched by :meth:`read`, which must be running (or be
        called) while this waits.
        """
        request_id = next(self._ids)
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = reply
        try:
            await self.send({**msg, "id": request_id})
            answer = await asyncio.wait_for(reply, timeout)
        except TimeoutError:
            raise DeviceError(
                "unreachable", f"the device did not answer {msg['type']} in {timeout:g} s"
            ) from None
        finally:
            self._waiting.pop(request_id, None)
        if answer["type"] == "error":
            words = f"the device refused {msg['type']}: {answer['message']}"
            raise DeviceError("refused", words, answer["code"], answer["message"])
        return answer

    async def read(
        self, on_message: Callable[[dict[str, Any]], Any], on_audio: Callable[[bytes], Any]
    ) -> None:
        """Read until the connection ends, handing messages on; replies to requests go to their waiter.

        Returns when the device closes the connection; a protocol version it
        refuses raises DeviceError.
        """
        while True:
            try:
                msg = await self._next(None, "")
            except DeviceError as exc:
                self._fail_waiting(exc)
                if exc.kind == "unreachable":
                    return
                raise
            if isinstance(msg, bytes):
                on_audio(msg)
                continue
            request_id = msg.get("id")
            replied = msg["type"] in ("ack", "error", "pong")
            waiter = self._waiting.get(request_id) if replied and isinstance(request_id, int) else None
            if waiter is not None and not waiter.done():
                waiter.set_result(msg)
            elif msg["type"] == "error" and msg.get("code") == "protocol_version":
                raise self._refusal(msg)
            else:
                on_message(msg)

    async def _next(self, timeout: float | None, waiting_for: str) -> dict[str, Any] | bytes:
        """The next message from the device, decoded and checked once, or a binary frame."""
        while True:
            ws = self._ws
            if ws is None:  # closed by close() meanwhile
                raise self._lost()
            try:
                raw = await asyncio.wait_for(ws.receive(), timeout)
            except TimeoutError:
                raise DeviceError(
                    "unreachable", f"the device sent no {waiting_for} within {timeout:g} s"
                ) from None
            if raw is None:
                raise self._lost()
            if isinstance(raw, bytes):
                return raw
            try:
                msg = S.decode_device(raw)
            except S.MessageError as exc:
                if exc.code == "unknown_type":
                    continue  # a newer device's message: not for this client
                raise DeviceError(
                    "protocol", f"the device sent a message this client cannot read: {exc}"
                ) from None
            decoded: dict[str, Any] = msgspec.to_builtins(msg)
            return decoded

    def _refusal(self, msg: dict[str, Any]) -> DeviceError:
        where = describe(self.address)
        return DeviceError(
            "refused", f"the device {where} refused this client: {msg['message']}", msg["code"]
        )

    def _lost(self) -> DeviceError:
        reason = (self._ws.close_reason if self._ws is not None else None) or "it closed the connection"
        return DeviceError("unreachable", f"lost the device {describe(self.address)}: {reason}")

    def _fail_waiting(self, exc: DeviceError) -> None:
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(exc)
        self._waiting.clear()

    async def close(self) -> None:
        """Close the socket, and wait (briefly) until it is closed before the loop ends."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    @property
    def close_reason(self) -> str | None:
        """Why the device closed the connection, when it said."""
        return self._ws.close_reason if self._ws is not None else None
