"""Opening the device's client-protocol WebSocket with a token (scripts, ``rtai``, ``appliance run``)."""

from __future__ import annotations

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from browserinterface import protocol as P
from browserinterface.device import DeviceAddress

#: Seconds to reach the device and finish the upgrade.
CONNECT_TIMEOUT_S = 5.0


async def open_api_socket(
    address: DeviceAddress, token: str, timeout: float = CONNECT_TIMEOUT_S
) -> WebSocketClientConnection:
    """Connect to ``address``'s WebSocket endpoint with a bearer token.

    Raises tornado's HTTPClientError (401 for a refused token) or OSError;
    callers turn those into their own words.
    """
    request = HTTPRequest(
        f"ws://{address.netloc}{P.WS_PATH}",
        headers={"Authorization": f"Bearer {token}"},
        connect_timeout=timeout,
        request_timeout=timeout,
    )
    return await websocket_connect(request, max_message_size=P.MAX_BINARY_BYTES * 2)
