"""Opening the device's client-protocol WebSocket with a token (scripts, ``rtai``, ``appliance run``).

On this machine (loopback) the socket is ``browserinterface.loopws``, which
needs only asyncio; elsewhere Tornado's WebSocket client, imported only then,
so a script on the device never loads Tornado's HTTP client.  Both look the
same to the protocol client: :class:`ApiSocket`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING, Protocol

from browserinterface import protocol as P
from browserinterface.device import DeviceAddress
from browserinterface.loopws import CLOSE_WAIT_S, HandshakeError, connect

if TYPE_CHECKING:
    from tornado.websocket import WebSocketClientConnection

#: Seconds to reach the device and finish the upgrade.
CONNECT_TIMEOUT_S = 5.0

__all__ = ["CONNECT_TIMEOUT_S", "ApiSocket", "HandshakeError", "close_tornado", "open_api_socket"]


class ApiSocket(Protocol):
    """An open WebSocket to the device."""

    peer_ip: str | None

    @property
    def close_reason(self) -> str | None:
        """Why the device closed the connection, when it said."""

    async def send(self, message: str | bytes) -> None:
        """One message; ConnectionError once the connection is gone."""

    async def receive(self) -> str | bytes | None:
        """The next message, None once the connection is closed."""

    async def close(self) -> None:
        """Close, and wait (briefly) until the socket is closed."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _TornadoSocket:
    """Tornado's WebSocket client as an :class:`ApiSocket` (devices on other machines)."""

    def __init__(self, ws: WebSocketClientConnection) -> None:
        self._ws = ws
        sock = ws.stream.socket if ws.stream is not None else None
        self.peer_ip: str | None = sock.getpeername()[0] if sock is not None else None

    @property
    def close_reason(self) -> str | None:
        return self._ws.close_reason

    async def send(self, message: str | bytes) -> None:
        from tornado.iostream import StreamClosedError  # noqa: PLC0415 - only for remote devices
        from tornado.websocket import WebSocketClosedError  # noqa: PLC0415

        try:
            await self._ws.write_message(message, binary=isinstance(message, bytes))
        except (WebSocketClosedError, StreamClosedError):
            raise ConnectionError("the WebSocket is closed") from None

    async def receive(self) -> str | bytes | None:
        return await self._ws.read_message()

    async def close(self) -> None:
        await close_tornado(self._ws)


async def close_tornado(ws: WebSocketClientConnection) -> None:
    """Close a Tornado WebSocket and its socket before the event loop ends.

    Tornado waits for the peer's closing frame with a timer; an event loop
    that ends first would leave the socket open.
    """
    ws.close()
    stream = ws.stream
    deadline = asyncio.get_running_loop().time() + CLOSE_WAIT_S
    while stream is not None and not stream.closed():
        if asyncio.get_running_loop().time() > deadline:
            stream.close()
            break
        await asyncio.sleep(0.01)


async def open_api_socket(
    address: DeviceAddress, token: str, timeout: float = CONNECT_TIMEOUT_S
) -> ApiSocket:
    """Connect to ``address``'s WebSocket endpoint with a bearer token.

    Raises HandshakeError (``code`` 401 for a refused token, 599 for a
    timeout) or OSError; callers turn those into their own words.
    """
    if is_loopback(address.host):
        return await connect(address.host, address.port, token, timeout)
    from tornado.httpclient import HTTPClientError, HTTPRequest  # noqa: PLC0415 - remote devices only
    from tornado.websocket import websocket_connect  # noqa: PLC0415

    request = HTTPRequest(
        f"ws://{address.netloc}{P.WS_PATH}",
        headers={"Authorization": f"Bearer {token}"},
        connect_timeout=timeout,
        request_timeout=timeout,
    )
    try:
        ws = await websocket_connect(request, max_message_size=P.MAX_BINARY_BYTES * 2)
    except HTTPClientError as exc:
        raise HandshakeError(exc.code, str(exc)) from None
    return _TornadoSocket(ws)
