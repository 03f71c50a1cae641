"""Guessing the password from many addresses, open redirects, names with
control characters, and the security headers on every kind of answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from appliance.web.access import LOGIN_DEVICE_BURST, LOGIN_DEVICE_RATE_PER_S, LoginLimiter, local_path
from tests.conftest_web import PASSWORD, Server, running_server
from tests.hostile_http import Client, peer

GUESSES = 30


@pytest.fixture(scope="module")
def device() -> Iterator[Server]:
    with running_server(password=True) as srv:
        yield srv
        assert "Traceback" not in srv.log(), srv.log()[-3000:]


def _signed_in(port: int) -> Client:
    client = Client(port)
    client.request("GET", "/login")
    assert client.form("/login", {"password": PASSWORD}).status == 302
    return client


def test_guesses_from_rotating_addresses_share_one_device_wide_limit(device: Server) -> None:
    started = time.monotonic()
    statuses: list[int] = []
    refusal = b""
    for i in range(GUESSES):
        reply = Client(device.port, source=peer(i)).form("/login", {"password": f"guess {i}"})
        statuses.append(reply.status)
        if reply.status == 429:
            refusal = reply.body
    elapsed = time.monotonic() - started
    checked = statuses.count(403)
    assert set(statuses) <= {403, 429}, statuses
    assert checked <= LOGIN_DEVICE_BURST + LOGIN_DEVICE_RATE_PER_S * elapsed + 1, (statuses, elapsed)
    assert b"The device is receiving too many sign-in attempts; try again in" in refusal
    # Meanwhile the admin, from an address that signed in before, is not locked out.
    assert _signed_in(device.port).cookies.get("micarray_session")
    assert "failed login from" in device.log()
    assert device.log().count("failed login from") <= 6  # rate limited, not a line per guess


def test_the_device_wide_limit_refills_at_its_rate() -> None:
    limiter = LoginLimiter()
    admitted = [limiter.admit(peer(i), now=100.0)[0] == 0 for i in range(LOGIN_DEVICE_BURST + 3)]
    assert admitted == [True] * LOGIN_DEVICE_BURST + [False] * 3
    wait, why = limiter.admit("10.0.0.9", now=100.0)
    assert wait == pytest.approx(1 / LOGIN_DEVICE_RATE_PER_S) and why.startswith("the device is receiving")
    assert limiter.admit("10.0.0.9", now=100.0 + wait)[0] == 0
    limiter.succeeded("10.0.0.7")
    assert limiter.admit("10.0.0.7", now=100.0 + wait) == (0.0, "")


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example",
        "//evil.example",
        "/\t/evil.example",
        "https://evil.example/",
        "/\\/evil.example",
        "evil",
    ],
)
def test_next_accepts_only_paths_on_the_device(device: Server, target: str) -> None:
    client = Client(device.port)
    client.request("GET", "/login")
    reply = client.form(f"/login?next={quote(target, safe='')}", {"password": PASSWORD})
    assert reply.status == 302 and reply.header("Location") == "/", target


def test_next_keeps_a_local_path() -> None:
    assert local_path("/settings?x=1") == "/settings?x=1"
    assert local_path("/\\evil.example") == "/"


@pytest.mark.parametrize("name", ["a.py\n", "a\x00.py", "a\x1b[31m.py", "a.py\r"])
def test_a_script_name_with_a_control_character_is_refused(device: Server, name: str) -> None:
    client = _signed_in(device.port)
    hdrs = {"Content-Type": "application/json", "X-XSRFToken": client.cookies["_xsrf"]}
    body = json.dumps({"code": "print(1)\n"}).encode()
    reply = client.request("PUT", f"/api/v1/scripts/{quote(name)}", body, hdrs)
    assert reply.status == 400 and b"control character" in reply.body, reply
    assert not any(c in p.name for p in (device.data_dir / "scripts").glob("*") for c in "\n\r\x00\x1b")
    assert client.request("PUT", "/api/v1/scripts/ok.py", body, hdrs).status == 200
    renamed = client.request("POST", "/api/v1/scripts/ok.py/rename", json.dumps({"to": name}).encode(), hdrs)
    assert renamed.status == 400 and b"is not allowed" in renamed.body
    control = next(c for c in name if ord(c) < 0x20)
    made = client.request("POST", "/api/v1/tokens", json.dumps({"name": "t" + control}).encode(), hdrs)
    assert made.status == 400, made


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/static/pages.css", 200),
        ("/static/dist/main.js", 403),
        ("/no-such-page", 404),
        ("/api/v1/scripts", 403),
    ],
)
def test_security_headers_on_static_files_and_errors(device: Server, path: str, status: int) -> None:
    reply = Client(device.port).request("GET", path)
    assert reply.status == status
    assert "frame-ancestors 'none'" in reply.header("Content-Security-Policy")
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert reply.header("Referrer-Policy") == "same-origin"
