"""A hostile LAN peer against the web server, before it ever signs in:
half-sent requests, connection floods, huge bodies, and DNS rebinding.

Every peer is an address of 127.0.0.0/8 (see ``tests/hostile_http.py``);
the device is a real ``appliance serve`` with the 1024 open files a systemd
service gets.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import socket
import time
from collections.abc import Iterator

import pytest

from appliance.system.ratelog import RepeatFilter
from appliance.web import limits
from browserinterface.protocol import WS_PATH
from tests.conftest_web import PASSWORD, Server, device_dir, running_server, wait_until
from tests.hostile_http import Client, half_sent, open_files, peer, rss_mib

SYSTEMD_NOFILE = 1024
"""The soft and hard open-files limit systemd gives a service."""
FLOOD = 1100
"""Half-sent requests in the flood: more than a systemd service can hold."""


@pytest.fixture(scope="module")
def device() -> Iterator[Server]:
    """A device with the admin password set, held to systemd's open-files limit."""
    with running_server(password=True) as srv:
        assert srv.proc is not None
        resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (SYSTEMD_NOFILE, SYSTEMD_NOFILE))
        yield srv
        assert "Traceback" not in srv.log(), srv.log()[-3000:]


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    try:
        yield held
    finally:
        for sock in held:
            sock.close()


def _closed(sock: socket.socket) -> bool:
    """True once the server has closed ``sock``; never blocks."""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _flood(port: int, held: list[socket.socket], count: int, addresses: int) -> int:
    """Open ``count`` half-sent requests from ``addresses`` peers; returns how many connected."""
    stalls = 0
    for i in range(count):
        try:
            held.append(half_sent(port, peer(i % addresses)))
        except OSError:  # refused, reset, or a backlog that no longer moves
            stalls += 1
            if stalls > 20:
                break
    return len(held)


def test_a_slowloris_flood_costs_neither_service_nor_log(device: Server) -> None:
    assert device.proc is not None
    lines_before = device.log().count("\n")
    with sockets() as held:
        _flood(device.port, held, FLOOD, addresses=100)
        # A real user from an address of their own is served while the flood is held open.
        user = Client(device.port, source=peer(900))
        reply = user.request("GET", "/login", timeout=10)
        assert reply.status == 200 and b"Sign in" in reply.body
        assert open_files(device.proc.pid) < limits.MAX_CONNECTIONS + 200
    logged = device.log().count("\n") - lines_before
    assert logged < 60, device.log()[-3000:]


def test_out_of_descriptors_the_oldest_waiting_connection_gives_way() -> None:
    with running_server(password=True) as srv:
        assert srv.proc is not None
        # Fewer files than the connection cap: descriptors run out before the cap is reached.
        files = open_files(srv.proc.pid) + 60
        resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (files, files))
        lines_before = srv.log().count("\n")
        with sockets() as held:
            _flood(srv.port, held, 300, addresses=30)
            reply = Client(srv.port, source=peer(901)).request("GET", "/login", timeout=10)
            assert reply.status == 200
        assert srv.log().count("\n") - lines_before < 60, srv.log()[-3000:]
        assert "Traceback" not in srv.log()


def test_one_address_gets_its_share_of_connections_only(device: Server) -> None:
    with sockets() as held:
        for _ in range(limits.MAX_CONNECTIONS_PER_ADDRESS + 10):
            held.append(half_sent(device.port, "127.0.3.7"))
        closed = wait_until(
            lambda: sum(_closed(s) for s in held) >= 10 and sum(_closed(s) for s in held),
            10,
            "the connections over the per-address cap to be closed",
        )
        assert closed == 10
        assert Client(device.port, source="127.0.3.8").request("GET", "/login").status == 200


def test_headers_trickled_a_byte_at_a_time_are_cut_off(device: Server) -> None:
    with sockets() as held:
        sock = half_sent(device.port, "127.0.4.1")
        held.append(sock)
        deadline = time.monotonic() + limits.HEADER_TIMEOUT_S + 10
        while not _closed(sock):
            assert time.monotonic() < deadline, "the server kept a trickled request open"
            with contextlib.suppress(OSError):
                sock.send(b"X")  # one byte of one more header, never the end
            time.sleep(0.25)  # the trickle's pace, not a wait for the server


def _post_head(port: int, path: str, length: int, source: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    sock.settimeout(10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def _read_reply(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_a_huge_login_body_is_refused_from_its_headers(device: Server) -> None:
    assert device.proc is not None
    before = rss_mib(device.proc.pid)
    with sockets() as held:
        for i in range(4):
            held.append(_post_head(device.port, "/login", 95 << 20, peer(500 + i)))
        for sock in held:
            # Not a byte of the body was sent: the answer comes from the headers alone.
            reply = _read_reply(sock)
            assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
            assert b"the body has 99614720 bytes; POST /login takes at most 16384 bytes" in reply
            assert b"Content-Security-Policy:" in reply
    assert rss_mib(device.proc.pid) - before < 16


def test_a_chunked_body_stops_at_the_route_limit(device: Server) -> None:
    sock = socket.socket()
    sock.bind(("127.0.5.1", 0))
    sock.connect(("127.0.0.1", device.port))
    sock.settimeout(10)
    with sockets() as held:
        held.append(sock)
        head = f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{device.port}\r\nTransfer-Encoding: chunked\r\n\r\n"
        sock.sendall(head.encode())
        sent = 0
        with contextlib.suppress(OSError):
            while sent < 4 << 20:
                sock.sendall(b"10000\r\n" + bytes(0x10000) + b"\r\n")
                sent += 0x10000
        # The server stopped reading at the limit and closed; its "400" may be lost
        # to the reset that closing with unread data causes, so only the bound is asserted.
        assert sent < 4 << 20
        with contextlib.suppress(OSError):
            reply = _read_reply(sock)
            assert not reply or reply.startswith(b"HTTP/1.1 400 "), reply[:100]


def test_a_script_save_larger_than_the_store_takes_is_refused_unread(device: Server) -> None:
    client = Client(device.port)
    client.request("GET", "/login")
    assert client.form("/login", {"password": PASSWORD}).status == 302
    cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    size = 2 << 20
    with socket.create_connection(("127.0.0.1", device.port), timeout=10) as sock:
        head = (
            f"PUT /api/v1/scripts/big.py HTTP/1.1\r\nHost: 127.0.0.1:{device.port}\r\nCookie: {cookies}\r\n"
            f"X-XSRFToken: {client.cookies['_xsrf']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n"
        )
        sock.sendall(head.encode())  # and not a byte of the body
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 413 ")
    expected = (
        f"the body has {size} bytes; PUT /api/v1/scripts/big.py takes at most {limits.SCRIPT.max_bytes} bytes"
    )
    assert expected.encode() in reply


# -- DNS rebinding -------------------------------------------------------------

OTHER_NAMES = ("rebind.example", "rebind.example:80", "127.0.0.1.rebind.example", "micarray.attacker.test")


@pytest.mark.parametrize("path", ["/", "/setup", "/login", "/static/pages.css", "/no-such-page", WS_PATH])
def test_a_host_that_is_not_the_device_is_refused_everywhere(device: Server, path: str) -> None:
    for name in OTHER_NAMES:
        reply = Client(device.port, host=name).request("GET", path)
        assert reply.status == 421, (name, path, reply)
        assert f"this device does not answer to {name!r}".encode() in reply.body
        assert reply.header("Content-Security-Policy").startswith("default-src 'self'")


def test_the_device_answers_to_its_own_names(device: Server) -> None:
    port = device.port
    own = (
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        "LOCALHOST.",
        f"127.0.0.2:{port}",
        f"[::1]:{port}",
        f"{socket.gethostname()}.local:{port}",
        socket.gethostname(),
    )
    for name in own:
        assert Client(port, host=name).request("GET", "/login").status == 200, name


def test_a_request_without_host_is_refused(device: Server) -> None:
    with socket.create_connection(("127.0.0.1", device.port), timeout=10) as sock:
        sock.sendall(b"GET /login HTTP/1.0\r\n\r\n")
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 421 ") and b"does not answer to no Host at all" in reply


def test_first_run_setup_cannot_be_claimed_through_a_rebound_name() -> None:
    with running_server(password=False) as srv:
        attacker = Client(srv.port, host="rebind.example")
        assert attacker.request("GET", "/setup").status == 421
        reply = attacker.form("/setup", {"password": "x" * 12, "confirm": "x" * 12})
        assert reply.status == 421
        assert not (srv.data_dir / "password.json").exists()
        assert Client(srv.port).request("GET", "/setup").status == 200


def test_the_same_message_is_logged_a_few_times_a_window_then_counted() -> None:
    logger = logging.getLogger("tests.hardening.repeats")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    keep = Keep()
    logger.addHandler(keep)
    logger.propagate = False
    repeat = RepeatFilter(burst=3, window_s=3600)
    logger.addFilter(repeat)
    try:
        for i in range(1000):
            logger.warning("malformed request from %s", f"10.0.0.{i % 250}")
        logger.warning("another message")
        assert records == [f"malformed request from 10.0.0.{i}" for i in range(3)] + ["another message"]
        repeat.window_s = 0.0  # the window is over: the next one passes and says what was dropped
        logger.warning("malformed request from %s", "10.0.0.9")
        assert records[-1] == "malformed request from 10.0.0.9 (and 997 more like it not logged)"
    finally:
        logger.removeFilter(repeat)
        logger.removeHandler(keep)


def test_a_name_the_admin_allows_is_answered_too() -> None:
    with device_dir() as data:
        srv = Server(data, "sim", None, "--allow-host", "mic.lab.example")
        try:
            srv.start()
            assert Client(srv.port, host=f"mic.lab.example:{srv.port}").request("GET", "/setup").status == 200
            assert Client(srv.port, host="MIC.LAB.EXAMPLE.").request("GET", "/setup").status == 200
            assert Client(srv.port, host="lab.example").request("GET", "/setup").status == 421
            assert Client(srv.port, host="mic.local").request("GET", "/setup").status == 421
        finally:
            srv.stop()
        srv.assert_clean_log()
