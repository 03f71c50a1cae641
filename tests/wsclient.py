"""A protocol client for tests: connect, say hello, wait for a message type."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from browserinterface import protocol as P
from browserinterface import schema
from tests.browser_login import login
from tests.server import ApplianceProcess

#: Every connection made by a test, closed after it even when it failed.
OPEN: list[WebSocketClientConnection] = []


def close_all() -> None:
    while OPEN:
        OPEN.pop().close()


async def connect(
    server: ApplianceProcess, token: str | None = None, headers: dict[str, str] | None = None
) -> WebSocketClientConnection:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    request = HTTPRequest(f"ws://{server.device}{P.WS_PATH}", headers=all_headers)
    ws = await websocket_connect(request, max_message_size=16 << 20)
    OPEN.append(ws)
    return ws


async def receive(ws: WebSocketClientConnection, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next text message of type ``kind`` (others are skipped)."""

    async def find() -> dict[str, Any]:
        while True:
            msg = await ws.read_message()
            assert msg is not None, "connection closed"
            if isinstance(msg, str):
                schema.decode_device(msg)  # every message the device sends follows the schema
                parsed: dict[str, Any] = json.loads(msg)
                if parsed["type"] == kind:
                    return parsed

    return await asyncio.wait_for(find(), timeout)


async def hello(ws: WebSocketClientConnection, role: str = "script", **extra: Any) -> dict[str, Any]:
    await ws.write_message(json.dumps({"type": "hello", "protocol": 1, "role": role, **extra}))
    return await receive(ws, "welcome")


async def browser(
    server: ApplianceProcess, cookie: str | None = None
) -> tuple[WebSocketClientConnection, dict[str, Any]]:
    """Signed in as the admin from the device's own origin; the socket and its welcome.

    ``cookie``: a session signed in earlier (``tests.browser_login.login``), so as not to
    sign in (and run scrypt) again.
    """
    cookie = cookie or login(server.port, server.data_dir)
    ws = await connect(server, headers={"Cookie": cookie, "Origin": f"http://{server.device}"})
    return ws, await hello(ws, "browser")


async def shut(*sockets: WebSocketClientConnection) -> None:
    """Close and wait until closed, so nothing is left for the garbage collector."""
    for ws in sockets:
        ws.close()
        while await asyncio.wait_for(ws.read_message(), 5) is not None:
            pass


def stuck_socket(server: ApplianceProcess, headers: dict[str, str], messages: list[str]) -> socket.socket:
    """A WebSocket with a tiny receive window that sends ``messages`` and then simply stops reading.

    Raw bytes on a socket, since a client library keeps reading: only this way
    does the device meet a peer that is connected but never takes its data.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    sock.sendall(
        (
            f"GET {P.WS_PATH} HTTP/1.1\r\nHost: {server.device}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"{extra}\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    for text in messages:
        payload, mask = text.encode(), os.urandom(4)
        assert len(payload) < 126, "one short masked text frame each"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock
