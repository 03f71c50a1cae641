"""The client end of a WebSocket to the device on this machine, on asyncio streams alone.

A script on the device reaches the API on loopback, and with its audio in
the shared-memory ring it needs nothing of an HTTP client: this speaks just
enough RFC 6455 for the client protocol (one upgrade request with a bearer
token, masked frames out, text, binary, ping and close in; no extensions,
no fragments sent), so such a script never loads Tornado's HTTP client.
Scripts on other machines use Tornado's client (``browserinterface.apisocket``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import struct

from browserinterface import protocol as P

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEADER_BYTES = 16384
MAX_FRAME_BYTES = 2 * P.MAX_BINARY_BYTES
CLOSE_WAIT_S = 1.0
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class HandshakeError(OSError):
    """The device did not upgrade the connection; ``code`` is its HTTP status (599: timed out)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _mask(data: bytes, key: bytes) -> bytes:
    # XOR as one big integer: C speed without numpy for the few large frames (send_audio).
    n = len(data)
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(pad, "little")).to_bytes(n, "little")


class LoopSocket:
    """One upgraded connection: ``send``, ``receive``, ``close`` (see ``apisocket.ApiSocket``)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.close_reason: str | None = None
        peer = writer.get_extra_info("peername")
        self.peer_ip: str | None = peer[0] if peer else None
        self._closed = False

    async def send(self, message: str | bytes) -> None:
        """One frame; ConnectionError once the connection is gone."""
        if self._closed:
            raise ConnectionError("the WebSocket is closed")
        opcode, data = (OP_BINARY, message) if isinstance(message, bytes) else (OP_TEXT, message.encode())
        self._write_frame(opcode, data)
        await self._writer.drain()

    def _write_frame(self, opcode: int, data: bytes) -> None:
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        key = os.urandom(4)
        self._writer.write(head + key + _mask(data, key))

    async def receive(self) -> str | bytes | None:
        """The next message, or None once the device closed (``close_reason`` says why)."""
        parts: list[bytes] = []
        kind = OP_TEXT
        try:
            while True:
                fin, opcode, data = await self._frame()
                if opcode == OP_CLOSE:
                    self._on_close(data)
                    return None
                if opcode == OP_PING:
                    self._write_frame(OP_PONG, data)
                    continue
                if opcode == OP_PONG:
                    continue
                if opcode != OP_CONT:
                    kind, parts = opcode, []
                parts.append(data)
                if sum(len(p) for p in parts) > MAX_FRAME_BYTES:
                    raise ConnectionError(f"a message beyond {MAX_FRAME_BYTES} bytes")
                if fin:
                    message = b"".join(parts)
                    return message.decode() if kind == OP_TEXT else message
        except (asyncio.IncompleteReadError, ConnectionError, UnicodeDecodeError) as exc:
            self.close_reason = self.close_reason or f"the connection broke ({exc})"
            self._abort()
            return None

    async def _frame(self) -> tuple[bool, int, bytes]:
        first, second = await self._reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
        if length > MAX_FRAME_BYTES:
            raise ConnectionError(f"a frame of {length} bytes, beyond {MAX_FRAME_BYTES}")
        key = await self._reader.readexactly(4) if second & 0x80 else b""
        data = await self._reader.readexactly(length)
        return bool(first & 0x80), first & 0x0F, _mask(data, key) if key else data

    def _on_close(self, data: bytes) -> None:
        if len(data) >= 2:
            self.close_reason = data[2:].decode(errors="replace") or None
        if not self._closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._write_frame(OP_CLOSE, data[:2])
        self._abort()

    def _abort(self) -> None:
        self._closed = True
        self._writer.close()

    async def close(self) -> None:
        """Say goodbye and close the socket, waiting at most CLOSE_WAIT_S."""
        if not self._closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._write_frame(OP_CLOSE, struct.pack("!H", 1000))
            self._abort()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), CLOSE_WAIT_S)


async def connect(host: str, port: int, token: str, timeout: float) -> LoopSocket:
    """Open the API's WebSocket on ``host:port``; HandshakeError names a refusal's status."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        raise HandshakeError(599, "timed out") from None
    except OSError as exc:
        # asyncio words it "Connect call failed (addr)"; say the system's own words, as elsewhere.
        if exc.errno is None:
            raise
        raise OSError(exc.errno, os.strerror(exc.errno)) from None
    key = base64.b64encode(os.urandom(16)).decode()
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    request = (
        f"GET {P.WS_PATH} HTTP/1.1\r\nHost: {netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    try:
        writer.write(request.encode())
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise HandshakeError(502, "the device closed the connection during the upgrade") from None
        except TimeoutError:
            raise HandshakeError(599, "timed out") from None
        _check_upgrade(head, key)
    except BaseException:
        writer.close()
        raise
    return LoopSocket(reader, writer)


def _check_upgrade(head: bytes, key: str) -> None:
    if len(head) > MAX_HEADER_BYTES:
        raise HandshakeError(502, "the upgrade answer is too long")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 502
    if status != 101:
        raise HandshakeError(status, f"HTTP {status}")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
    if headers.get("sec-websocket-accept") != accept:
        raise HandshakeError(502, "the upgrade answer does not accept our key")
