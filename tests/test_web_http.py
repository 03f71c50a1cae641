"""The web app over plain HTTP against a real `appliance serve --source sim`:
first run, login and its backoff, logout, sessions, XSRF, the WebSocket's
Origin check, scripts, tokens, and a save that survives a restart."""

from __future__ import annotations

import asyncio
import http.client as http_client
import json

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from appliance.web.access import LoginLimiter
from tests.conftest_web import PASSWORD, Http, Server, device, server, wait_until
from tests.wsclient import shut

__all__ = ["device", "server"]  # fixtures used by name


def test_first_run_only_while_no_password(server: Server) -> None:
    http = Http(server.url)
    status, headers, _ = http.request("GET", "/")
    assert status == 302 and headers["Location"] == "/setup"
    assert http.request("GET", "/login")[1]["Location"] == "/setup"
    status, _, body = http.request("POST", "/setup", form={"password": "short", "confirm": "short"})
    assert status == 400 and b"at least 8 characters" in body
    status, _, body = http.request("POST", "/setup", form={"password": PASSWORD, "confirm": PASSWORD + "x"})
    assert status == 400 and b"The two passwords differ." in body
    assert http.setup() == 302
    assert http.request("GET", "/")[0] == 200
    # Once set, the first-run page is gone, for everyone.
    other = Http(server.url)
    assert other.request("GET", "/setup")[1]["Location"] == "/login"
    status, _, _ = other.request("POST", "/setup", form={"password": "x" * 12, "confirm": "x" * 12})
    assert status == 403
    assert other.login("x" * 12) == 403
    assert other.login() == 302


def test_nothing_but_login_without_a_session(device: Server) -> None:
    anon = Http(device.url)
    assert anon.request("GET", "/")[1]["Location"] == "/login"
    assert anon.request("GET", "/settings")[0] == 302
    for path in ("/api/v1/scripts", "/api/v1/examples", "/api/v1/tokens", "/api/v1/recordings"):
        status, _, body = anon.request("GET", path)
        assert status == 403, path
        assert json.loads(body) == {"error": "sign in first"}
    assert anon.request("GET", "/static/dist/main.js")[0] == 403
    assert anon.request("GET", "/static/pages.css")[0] == 200
    status, headers, body = anon.request("GET", "/login")
    assert status == 200 and b"Sign in" in body
    assert headers["Content-Security-Policy"].startswith("default-src 'self';")
    assert headers["X-Frame-Options"] == "DENY"


def test_login_logout_and_wrong_password(device: Server) -> None:
    http = Http(device.url)
    assert http.login("not the password") == 403
    assert http.request("GET", "/")[0] == 302
    assert http.login() == 302
    assert http.request("GET", "/")[0] == 200
    cookie = http.cookie("micarray_session")
    assert cookie
    status, headers, _ = http.request("POST", "/logout", form={})
    assert status == 302 and headers["Location"] == "/login"
    assert http.cookie("micarray_session") is None
    assert http.request("GET", "/")[0] == 302


def test_session_cookie_flags(device: Server) -> None:
    http = Http(device.url)
    http.request("GET", "/login")
    status, headers, _ = http.request(
        "POST", "/login", form={"password": PASSWORD, "_xsrf": http.xsrf()}, xsrf=False
    )
    assert status == 302
    set_cookie = headers.get("Set-Cookie", "")
    assert "micarray_session=" in set_cookie
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert "expires=" in set_cookie.lower()


def test_state_changing_requests_need_the_xsrf_token(device: Server) -> None:
    http = Http(device.url)
    assert http.login() == 302
    status, _, _ = http.request("PUT", "/api/v1/scripts/a.py", {"code": "x = 1\n"}, xsrf=False)
    assert status == 403
    assert http.request("POST", "/logout", form={}, xsrf=False)[0] == 403
    assert http.request("POST", "/login", form={"password": PASSWORD}, xsrf=False)[0] == 403
    assert http.json("PUT", "/api/v1/scripts/a.py", {"code": "x = 1\n"})[0] == 200


def test_scripts_api(device: Server) -> None:
    http = Http(device.url)
    assert http.login() == 302
    status, info = http.json("PUT", "/api/v1/scripts/hello.py", {"code": "print('hi')\n"})
    assert status == 200 and info["name"] == "hello.py" and info["size"] == 12
    assert "hello.py" in [s["name"] for s in http.json("GET", "/api/v1/scripts")[1]]
    assert http.json("GET", "/api/v1/scripts/hello.py")[1]["code"] == "print('hi')\n"
    status, headers, body = http.request("GET", "/api/v1/scripts/hello.py?download=1")
    assert status == 200 and body == b"print('hi')\n"
    assert headers["Content-Disposition"] == 'attachment; filename="hello.py"'
    status, err = http.json("PUT", "/api/v1/scripts/..%2Fevil.py", {"code": ""})
    assert status == 400 and "script name '../evil.py' is not allowed" in err["error"]
    status, err = http.json("PUT", "/api/v1/scripts/notes.txt", {"code": ""})
    assert status == 400 and "ending in .py" in err["error"]
    assert http.json("PUT", "/api/v1/scripts/other.py", {"code": "pass\n"})[0] == 200
    status, err = http.json("POST", "/api/v1/scripts/hello.py/rename", {"to": "other.py"})
    assert status == 400 and err["error"] == ("a script named 'other.py' exists already; pick another name")
    assert http.json("POST", "/api/v1/scripts/hello.py/rename", {"to": "greet.py"})[0] == 200
    assert http.json("GET", "/api/v1/scripts/hello.py") == (404, {"error": "no script named 'hello.py'"})
    assert http.json("DELETE", "/api/v1/scripts/greet.py")[0] == 200
    assert http.json("DELETE", "/api/v1/scripts/greet.py")[0] == 404
    # No temporary files are left behind by the atomic writes.
    projects = device.data_dir / "projects"
    assert sorted(p.relative_to(projects).as_posix() for p in projects.rglob("*")) == [
        "a",
        "a/a.py",
        "other",
        "other/other.py",
    ]


def test_examples_are_listed_and_served(device: Server) -> None:
    http = Http(device.url)
    assert http.login() == 302
    status, examples = http.json("GET", "/api/v1/examples")
    names = {e["name"] for e in examples}
    assert {
        "level_meter.py",
        "spectrum.py",
        "spectrogram.py",
        "direction_of_arrival.py",
        "record_wav.py",
        "beamforming.py",
        "heatmap.py",
    } <= names
    titles = {e["name"]: e["title"] for e in examples}
    assert titles["level_meter.py"].startswith("Level meter")
    status, ex = http.json("GET", "/api/v1/examples/spectrum.py")
    assert status == 200 and "base:graph:line" in ex["code"]
    assert http.json("GET", "/api/v1/examples/nope.py")[0] == 404


def test_tokens_made_once_listed_and_revoked(device: Server) -> None:
    http = Http(device.url)
    assert http.login() == 302
    status, headers, _ = http.request("POST", "/settings/token", form={"name": "laptop"})
    assert status == 303 and headers["Location"].startswith("/settings?new=")  # a reload repeats no form
    status, _, body = http.request("GET", headers["Location"])
    assert status == 200 and 'id="new-token-value"' in body.decode()
    assert b"new-token-value" not in http.request("GET", headers["Location"])[2]  # shown once
    status, _, body = http.request("GET", "/settings")
    assert b"laptop" in body and b"new-token-value" not in body
    status, made = http.json("POST", "/api/v1/tokens", {"name": "tool"})
    assert status == 201 and len(made["token"]) > 30
    assert [t["name"] for t in http.json("GET", "/api/v1/tokens")[1]] == ["laptop", "tool"]
    status, err = http.json("POST", "/api/v1/tokens", {"name": "bad name"})
    assert status == 400 and "token name 'bad name' is not allowed" in err["error"]
    status, headers, _ = http.request("POST", "/settings/revoke", form={"name": "laptop"})
    assert status == 303
    assert b"Token laptop revoked." in http.request("GET", headers["Location"])[2]
    assert http.json("DELETE", "/api/v1/tokens/tool")[0] == 200
    assert http.json("GET", "/api/v1/tokens")[1] == []


def test_password_change_ends_other_sessions(device: Server) -> None:
    a, b = Http(device.url), Http(device.url)
    assert a.login() == 302 and b.login() == 302
    new = "another good password"
    form = {"current": PASSWORD, "password": new, "confirm": new}
    status, headers, _ = a.request("POST", "/settings/password", form=form)
    assert status == 303 and headers["Location"] == "/settings?done=password"
    assert b"Password changed" in a.request("GET", headers["Location"])[2]
    assert a.request("GET", "/")[0] == 200
    assert b.request("GET", "/")[0] == 302
    back = {"current": new, "password": PASSWORD, "confirm": PASSWORD}
    assert a.request("POST", "/settings/password", form=back)[0] == 303


async def _ws(url: str, cookie: str, origin: str) -> int:
    req = HTTPRequest(url, headers={"Cookie": cookie, "Origin": origin})
    try:
        conn = await websocket_connect(req)
    except HTTPClientError as err:
        return err.code
    try:
        await conn.write_message(json.dumps({"type": "hello", "protocol": 1, "role": "browser"}))
        msg = await asyncio.wait_for(conn.read_message(), 10)
        assert msg is not None and json.loads(msg)["type"] == "welcome"
        return 101
    finally:
        # Closed to the end before the loop goes: a socket left to the collector fails a later test.
        await shut(conn)


def test_websocket_checks_origin(device: Server) -> None:
    http = Http(device.url)
    assert http.login() == 302
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.jar)
    ws = f"ws://127.0.0.1:{device.port}/api/v1/ws"
    assert asyncio.run(_ws(ws, cookie, device.url)) == 101
    assert asyncio.run(_ws(ws, cookie, "http://evil.example")) in (401, 403)
    assert asyncio.run(_ws(ws, "", device.url)) in (401, 403)


def test_save_survives_a_restart(device: Server) -> None:
    http = Http(device.url)
    assert http.login() == 302
    code = "# kept\nprint('still here')\n"
    assert http.json("PUT", "/api/v1/scripts/kept.py", {"code": code})[0] == 200
    device.restart()
    again = Http(device.url)
    assert again.login() == 302
    assert again.json("GET", "/api/v1/scripts/kept.py")[1]["code"] == code
    # The old browser session survives too: the cookie secret is the device's own.
    assert http.request("GET", "/")[0] == 200


def test_login_backoff_per_address(device: Server) -> None:
    http = Http(device.url)
    statuses = []
    for _ in range(12):
        status = http.login("wrong password")
        statuses.append(status)
        if status == 429:
            break
    assert statuses[-1] == 429, statuses
    status, headers, body = http.request("POST", "/login", form={"password": PASSWORD})
    assert status == 429 and b"Too many failed attempts" in body
    assert int(headers["Retry-After"]) >= 1
    # The right password works once the wait is over, and clears the record.
    wait_until(lambda: http.login() == 302, 30, "the login wait to end")


def test_login_limiter_doubles_the_wait() -> None:
    limiter = LoginLimiter(first_s=1.0, max_s=8.0, free_failures=2)
    assert [limiter.failed("a", now=0.0) for _ in range(7)] == [0, 0, 1, 2, 4, 8, 8]
    assert limiter.wait_s("a", now=3.0) == pytest.approx(5.0)
    assert limiter.wait_s("b", now=3.0) == 0.0
    limiter.succeeded("a")
    assert limiter.wait_s("a", now=3.0) == 0.0


def test_recordings_listed_downloaded_and_deleted(device: Server) -> None:
    folder = device.data_dir / "recordings"
    folder.mkdir(exist_ok=True)
    body = b"RIFF" + bytes(300_000)
    (folder / "take-1.wav").write_bytes(body)
    http = Http(device.url)
    assert http.login() == 302
    status, listing = http.json("GET", "/api/v1/recordings")
    assert status == 200 and [r["name"] for r in listing] == ["take-1.wav"]
    assert listing[0]["size"] == len(body)
    status, headers, data = http.request("GET", "/api/v1/recordings/take-1.wav")
    assert status == 200 and data == body
    assert headers["Content-Type"] == "audio/wav"
    status, err = http.json("GET", "/api/v1/recordings/..%2Fsecret")
    assert status == 400 and "recording name '../secret' is not allowed" in err["error"]
    assert http.json("GET", "/api/v1/recordings/none.wav") == (
        404,
        {"error": "no recording named 'none.wav'"},
    )
    assert http.json("DELETE", "/api/v1/recordings/take-1.wav")[0] == 200
    assert not (folder / "take-1.wav").exists()


def test_errors_are_json_bodies_with_a_standard_status_line(device: Server) -> None:
    """The words go in the body, where any character survives; the status line keeps its reason."""
    http = Http(device.url)
    assert http.login() == 302
    conn = http_client.HTTPConnection("127.0.0.1", device.port, timeout=10)
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.jar)
    cases = [
        ("GET", "/api/v1/scripts/%E2%82%AC.py", {"Cookie": cookie}, 400, "Bad Request", "€"),
        ("GET", "/api/v1/scripts", {}, 403, "Forbidden", "sign in first"),
        ("GET", "/api/v1/ws", {}, 401, "Unauthorized", "a valid token"),
        ("GET", "/api/v1/ws", {"Authorization": "Bearer nope"}, 401, "Unauthorized", "a valid token"),
    ]
    for method, path, headers, status, reason, words in cases:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        assert (response.status, response.reason) == (status, reason), (path, response.reason, body)
        assert response.getheader("Content-Type", "").startswith("application/json"), path
        assert words in json.loads(body)["error"], (path, body)
        if status == 401:
            assert response.getheader("WWW-Authenticate") == 'Bearer realm="micarray"'
    conn.close()
