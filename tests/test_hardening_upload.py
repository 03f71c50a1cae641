"""The streamed upload base: a body goes to disk chunk by chunk behind the
front door's limit, and nothing is left behind by a peer that goes away.

A real server (the front door and the guarded HTTP server) on loopback in a
thread of its own, with one route built on ``StreamedUpload``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado.web import Application, create_signed_value

from appliance.auth import PasswordStore
from appliance.web import limits
from appliance.web.access import SESSION_COOKIE
from appliance.web.frontdoor import FrontDoor
from appliance.web.hosts import DeviceNames
from appliance.web.server import GuardedHTTPServer
from appliance.web.upload import UPLOADS_DIR, StreamedUpload
from tests.conftest_web import wait_until
from tests.hostile_http import Client
from tests.server import free_port

LIMIT = 8 << 20
SECRET = b"s" * 48


class Sink(StreamedUpload):
    """Keeps the upload as ``stored.bin`` and says how it arrived."""

    chunks = 0

    async def data_received(self, chunk: bytes) -> None:
        self.chunks += 1
        await super().data_received(chunk)

    async def put(self) -> None:
        path = await self.finish_upload()
        os.replace(path, self.data_dir / "stored.bin")
        self.write_json({"bytes": self.received, "chunks": self.chunks})


@pytest.fixture
def upload_server(tmp_path: Path) -> Iterator[tuple[int, Path, str]]:
    PasswordStore(tmp_path).set("correct horse battery")
    value = json.dumps({"u": "admin", "g": PasswordStore(tmp_path).generation()})
    cookie = create_signed_value(SECRET, SESSION_COOKIE, value).decode()
    port = free_port()
    limits.add_route_limit(r"^/api/v1/test-upload$", limits.BodyLimit(LIMIT, 30.0))
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        app = Application([(r"/api/v1/test-upload", Sink)], cookie_secret=SECRET, data_dir=str(tmp_path))
        GuardedHTTPServer(FrontDoor(app, DeviceNames())).listen(port, "127.0.0.1")
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop)
    ready.wait(10)
    try:
        yield port, tmp_path, cookie
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        limits.ROUTE_LIMITS.pop(0)


def _put(port: int, cookie: str, body: bytes) -> tuple[int, bytes]:
    client = Client(port, cookies={SESSION_COOKIE: cookie})
    reply = client.request("PUT", "/api/v1/test-upload", body, {"Content-Type": "application/octet-stream"})
    return reply.status, reply.body


def test_an_upload_streams_to_disk_in_chunks(upload_server: tuple[int, Path, str]) -> None:
    port, data, cookie = upload_server
    body = os.urandom(5 << 20)
    status, reply = _put(port, cookie, body)
    assert status == 200, reply
    answer = json.loads(reply)
    assert answer["bytes"] == len(body) and answer["chunks"] > 10
    assert (data / "stored.bin").read_bytes() == body
    assert list((data / UPLOADS_DIR).iterdir()) == []


def test_an_upload_over_its_limit_is_refused_unread(upload_server: tuple[int, Path, str]) -> None:
    port, _, cookie = upload_server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = (
            f"PUT /api/v1/test-upload HTTP/1.1\r\nHost: localhost\r\nCookie: {SESSION_COOKIE}={cookie}\r\n"
            f"Content-Length: {LIMIT + 1}\r\n\r\n"
        )
        sock.sendall(head.encode())
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert f"PUT /api/v1/test-upload takes at most {LIMIT} bytes".encode() in reply


def test_an_upload_cut_off_leaves_nothing_behind(upload_server: tuple[int, Path, str]) -> None:
    port, data, cookie = upload_server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = (
            f"PUT /api/v1/test-upload HTTP/1.1\r\nHost: localhost\r\nCookie: {SESSION_COOKIE}={cookie}\r\n"
            f"Content-Length: {LIMIT}\r\n\r\n"
        )
        sock.sendall(head.encode() + bytes(1 << 20))
        wait_until(lambda: any((data / UPLOADS_DIR).glob("upload-*")), 10, "the upload to start")
    wait_until(lambda: not any((data / UPLOADS_DIR).glob("upload-*")), 10, "the partial upload to be removed")
    assert not (data / "stored.bin").exists()


def test_an_upload_without_a_session_is_refused_before_its_body(upload_server: tuple[int, Path, str]) -> None:
    port, data, _ = upload_server
    status, reply = _put(port, "forged", bytes(1 << 20))
    assert status == 403 and json.loads(reply) == {"error": "sign in first"}
    assert not (data / UPLOADS_DIR).exists() or not any((data / UPLOADS_DIR).glob("upload-*"))
