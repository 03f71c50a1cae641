"""The loopback WebSocket client against hostile or broken peers on real sockets.

A peer that answers the upgrade with the wrong key, refuses it, closes
mid-handshake, or announces a frame beyond the limit gets a clear error or
a closed connection, never a hang or a huge allocation.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import Awaitable, Callable

import pytest

from browserinterface import loopws

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


HANDLED: list[asyncio.Event] = []
"""Set when the fake peer's handler has closed its side (the test awaits it)."""


async def _against(answer: Answer) -> tuple[asyncio.Server, int]:
    done = asyncio.Event()
    HANDLED[:] = [done]

    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await answer(reader, writer)
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(closing, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def _read_request(reader: asyncio.StreamReader) -> str:
    return (await reader.readuntil(b"\r\n\r\n")).decode()


def _accept_for(request: str) -> str:
    key = next(
        line.split(":", 1)[1].strip()
        for line in request.split("\r\n")
        if line.startswith("Sec-WebSocket-Key")
    )
    return base64.b64encode(hashlib.sha1(key.encode() + loopws._GUID).digest()).decode()


async def _connect_to(answer: Answer) -> loopws.LoopSocket:
    server, port = await _against(answer)
    try:
        return await loopws.connect("127.0.0.1", port, "token", 2.0)
    finally:
        server.close()  # stops listening; the connection made stays open


async def _done(ws: loopws.LoopSocket) -> None:
    await ws.close()
    await asyncio.wait_for(HANDLED[0].wait(), 5)  # the peer saw the end and closed its side


def test_a_refused_upgrade_says_its_status() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    with pytest.raises(loopws.HandshakeError) as caught:
        asyncio.run(_connect_to(refuse))
    assert caught.value.code == 401


def test_a_wrong_accept_key_is_refused() -> None:
    async def wrong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\n\r\n")
        await writer.drain()

    with pytest.raises(loopws.HandshakeError, match="does not accept our key"):
        asyncio.run(_connect_to(wrong))


def test_a_peer_closing_mid_handshake_is_said_in_words() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 101 Swi")
        writer.close()

    with pytest.raises(loopws.HandshakeError, match="closed the connection during the upgrade"):
        asyncio.run(_connect_to(hang_up))


def test_a_frame_beyond_the_limit_closes_the_connection_without_reading_it() -> None:
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        writer.write(f"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {_accept_for(request)}\r\n\r\n".encode())
        writer.write(struct.pack("!BBQ", 0x82, 127, 1 << 40))  # a terabyte announced, nothing sent
        await writer.drain()
        await reader.read()  # until the client hangs up

    async def main() -> tuple[object, str | None]:
        ws = await _connect_to(huge)
        got = await asyncio.wait_for(ws.receive(), 5)
        await _done(ws)
        return got, ws.close_reason

    got, reason = asyncio.run(main())
    assert got is None
    assert reason is not None and "beyond" in reason


def test_text_binary_ping_and_close_reason_come_through() -> None:
    pongs: list[tuple[int, bytes]] = []

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        writer.write(f"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {_accept_for(request)}\r\n\r\n".encode())
        writer.write(struct.pack("!BB", 0x89, 2) + b"hi")  # ping: answered with a pong
        writer.write(struct.pack("!BB", 0x01, 3) + b"hel" + struct.pack("!BB", 0x80, 2) + b"lo")  # fragments
        writer.write(struct.pack("!BBH", 0x82, 126, 300) + bytes(300))
        writer.write(struct.pack("!BB", 0x88, 6) + struct.pack("!H", 4003) + b"gone")
        await writer.drain()
        first, second = await reader.readexactly(2)
        masked = await reader.readexactly(4 + (second & 0x7F))
        pongs.append((first, bytes(b ^ masked[i % 4] for i, b in enumerate(masked[4:]))))
        await reader.read()

    async def main() -> list[object]:
        ws = await _connect_to(talk)
        got: list[object] = [await ws.receive() for _ in range(3)]
        got.append(ws.close_reason)
        await _done(ws)
        return got

    assert asyncio.run(main()) == ["hello", bytes(300), None, "gone"]
    assert pongs == [(0x8A, b"hi")]
