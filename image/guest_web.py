"""The booted guest's web app, as a browser and a laptop on the LAN see it.

Used by ``image/image_test.py``. QEMU forwards a loopback port of this
machine to the guest's port 80 and another to 443; inside the guest those
connections come from QEMU's gateway, not from loopback, so the device
treats them as the LAN: plain HTTP only redirects to HTTPS, and everything
a browser does goes over HTTPS with the certificate the device made for
itself at first boot (pinned here by its fingerprint, read over SSH).
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import ssl
import urllib.parse
from typing import Any, Protocol

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from browserinterface.protocol import WS_PATH

RUN_DEADLINE_S = 120.0
#: Where the device keeps its own certificate (appliance/web/tls.py).
CERTIFICATE = "/var/lib/micarray/tls/certificate.pem"
PROJECT = "imagecheck"


class Guest(Protocol):
    def run(self, command: str, stdin: str | None = None, check: bool = True) -> str: ...


def _tls() -> ssl.SSLContext:
    # The device's certificate names the device, not this machine's forwarded
    # loopback port; it is checked by fingerprint instead (pin_certificate).
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def https(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
          ) -> tuple[int, dict[str, str], bytes, bytes]:  # fmt: skip
    """One HTTPS request: status, headers, body, and the server's certificate (DER)."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=_tls())
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        data = answer.read()
        sock = conn.sock
        der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        raw = answer.headers.get_all("Set-Cookie") or []
        cookies = "; ".join(_cookie_pairs(raw))
        return (
            answer.status,
            {**dict(answer.headers), "Set-Cookie": cookies, "Set-Cookie-Raw": "\n".join(raw)},
            data,
            der or b"",
        )
    finally:
        conn.close()


def _cookie_pairs(headers: list[str]) -> list[str]:
    return [header.split(";", 1)[0].strip() for header in headers]


def login_page(port: int) -> int | None:
    """The status of GET /login over HTTPS, or None while nothing answers yet."""
    try:
        return https(port, "GET", "/login")[0]
    except (OSError, http.client.HTTPException):
        # QEMU accepts on the forwarded port before anything listens in the guest.
        return None


def pin_certificate(port: int, guest: Guest) -> str:
    """The certificate served is the one in the guest's data directory; its SHA-256."""
    pem = guest.run(f"cat {CERTIFICATE}")
    wanted = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem + "\n")).hexdigest()
    served = hashlib.sha256(https(port, "GET", "/login")[3]).hexdigest()
    if served != wanted:
        raise SystemExit(f"HTTPS serves certificate {served[:16]}, the device keeps {wanted[:16]}")
    return wanted


def plain_http_redirects(http_port: int, https_port_in_guest: int = 443) -> str:
    """Plain HTTP from the LAN only redirects to HTTPS, and refuses a POST (no password in clear)."""
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
    try:
        conn.request("GET", "/login")
        answer = conn.getresponse()
        answer.read()
        location = answer.headers.get("Location", "")
        conn.request(
            "POST",
            "/login",
            body=b"password=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        post = conn.getresponse()
        post.read()
    finally:
        conn.close()
    if answer.status != 301 or not location.startswith("https://"):
        raise SystemExit(
            f"plain HTTP GET /login answered {answer.status} {location!r}, not a redirect to HTTPS"
        )
    if post.status != 403:
        raise SystemExit(f"plain HTTP POST /login answered {post.status}, not 403")
    return f"GET -> {answer.status} {location}, POST -> {post.status}"


def _jar(cookie_header: str) -> dict[str, str]:
    return dict(pair.partition("=")[::2] for pair in cookie_header.split("; ") if pair)


def web_login(port: int, password: str) -> dict[str, str]:
    """Sign in the way a browser does: _xsrf cookie from the form, POST it back, over HTTPS."""
    status, headers, _, _ = https(port, "GET", "/login")
    jar = _jar(headers["Set-Cookie"])
    if "_xsrf" not in jar:
        raise SystemExit(f"GET /login set no _xsrf cookie (status {status})")
    body = urllib.parse.urlencode({"password": password, "_xsrf": jar["_xsrf"]}).encode()
    status, headers, _, _ = https(port, "POST", "/login", body, {
        "Cookie": _cookie_header(jar), "Content-Type": "application/x-www-form-urlencoded",
    })  # fmt: skip
    if status != 302:
        raise SystemExit(f"POST /login answered {status}, expected a redirect")
    raw = headers["Set-Cookie-Raw"].splitlines()
    insecure = [
        line.split("=")[0] for line in raw if not line.startswith("_xsrf") and "secure" not in line.lower()
    ]
    if insecure:
        raise SystemExit(f"the session cookie set over HTTPS is not Secure: {insecure}")
    jar.update(_jar(headers["Set-Cookie"]))
    status, _, _, _ = https(port, "GET", "/", headers={"Cookie": _cookie_header(jar)})
    if status != 200:
        raise SystemExit(f"GET / after login answered {status}")
    return jar


def says_simulated(port: int, jar: dict[str, str]) -> str:
    """The page tells that the sound is the simulator's (no array is plugged into the guest)."""
    status, _, html, _ = https(port, "GET", "/", headers={"Cookie": _cookie_header(jar)})
    if status != 200 or b"simulated-banner" not in html:
        raise SystemExit(f"GET / ({status}) does not say the data is simulated")
    return "the page says the data is simulated"


def _cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


async def _run(port: int, jar: dict[str, str], start: dict[str, Any], stop_on: str | None) -> dict[str, Any]:
    """One run started over the browser's WebSocket: its ended state and console lines.

    With ``stop_on``, the run is stopped (as the page's Stop does) once a
    console line starts with it.
    """
    request = HTTPRequest(
        f"wss://127.0.0.1:{port}{WS_PATH}",
        headers={"Cookie": _cookie_header(jar), "Origin": f"https://127.0.0.1:{port}"},
        validate_cert=False,
    )
    ws = await websocket_connect(request)
    try:
        await ws.write_message(json.dumps({"type": "hello", "protocol": 1, "role": "browser"}))
        await ws.write_message(json.dumps({"type": "run_start", "id": 1, **start}))
        run_id, output = None, []
        while True:
            raw = await asyncio.wait_for(ws.read_message(), RUN_DEADLINE_S)
            if raw is None:
                raise SystemExit("the device closed the browser's WebSocket during an editor run")
            if isinstance(raw, bytes):
                continue
            msg = json.loads(raw)
            if msg["type"] == "error" and msg.get("id") in (1, 2):
                raise SystemExit(f"the device refused: {msg['message']}")
            if msg["type"] == "ack" and msg.get("id") == 1:
                run_id = msg["run"]["id"]
            elif msg["type"] == "run_output" and msg["run"] == run_id:
                output.append(msg["text"])
                if stop_on is not None and msg["text"].startswith(stop_on):
                    await ws.write_message(json.dumps({"type": "run_stop", "id": 2, "run": run_id}))
            elif msg["type"] == "run_ended" and msg["run"]["id"] == run_id:
                return {**msg["run"], "lines": output}
    finally:
        ws.close()


def run(port: int, jar: dict[str, str], start: dict[str, Any], stop_on: str | None = None) -> dict[str, Any]:
    return asyncio.run(_run(port, jar, start, stop_on))


def api(
    port: int, jar: dict[str, str], method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    """The page's own API request: the session cookie and the XSRF header, over HTTPS."""
    headers = {"Cookie": _cookie_header(jar), "X-XSRFToken": jar["_xsrf"]}
    status, _, data, _ = https(port, method, path, body, headers)
    return status, data


EDITOR_SCRIPT = """
import os
import browserinterface
browserinterface.start()
print("ran as", os.environ.get("USER", "?"), "uid", os.getuid(), "at", browserinterface.rate, "Hz")
browserinterface.stop()
"""


def editor_run(port: int, jar: dict[str, str]) -> tuple[str, int]:
    """Execute a script as the web editor does: in the run template, as a user of its own."""
    ended = run(port, jar, {"name": "image_check.py", "code": EDITOR_SCRIPT})
    words: list[str] = next((line.split() for line in ended["lines"] if line.startswith("ran as ")), [])
    if ended["state"] != "finished" or words[2:3] != [f"micarray-run-{ended['id']}"]:
        raise SystemExit(f"the editor run ended {ended['state']} ({ended.get('reason')}): {ended['lines']}")
    return " ".join(words), int(words[4])


#: A script that tries what a hostile or buggy one would, then leaves a
#: setsid child behind and waits to be stopped.
HOSTILE_SCRIPT = r"""
import os, socket, subprocess
print("user", os.environ.get("USER", "?"), os.getuid())
print("cwd", os.getcwd())
print("data", open("data.txt").read().strip())
open("written.txt", "w").write("by the run")
print("sees", sorted(os.listdir("/var/lib/micarray")), os.listdir("/var/lib/micarray/runs"))
for path in ("/var/lib/micarray/tokens.json", "/var/lib/micarray/password.json", "/run/micarray/local.json"):
    try:
        open(path).read()
        print("read", path)
    except OSError as exc:
        print("hidden", path, type(exc).__name__)
for path in ("/tmp", "/dev/shm", "/var/tmp"):
    print("private", path, os.listdir(path))
address = "GUEST_ADDRESS"  # the guest's own LAN address (sshd listens there)
try:
    socket.create_connection((address, 22), timeout=5).close()
    print("reached", address)
except OSError as exc:
    print("network", address, type(exc).__name__)
child = subprocess.Popen(["setsid", "sleep", "600"])
print("child", child.pid)
import time
while True:
    time.sleep(1)
"""


def hostile_project_run(port: int, jar: dict[str, str], guest: Guest, first_uid: int) -> list[str]:
    """A project's run starts in its project, writes there as its own user, reaches nothing else,
    and leaves nothing running after Stop."""
    status, body = api(port, jar, "POST", "/api/v1/projects", json.dumps({"name": PROJECT}).encode())
    if status not in (200, 201):
        raise SystemExit(f"making a project answered {status}: {body[:200]!r}")
    status, body = api(port, jar, "PUT", f"/api/v1/projects/{PROJECT}/files/data.txt", b"42\n")
    if status not in (200, 201, 204):
        raise SystemExit(f"uploading a project file answered {status}: {body[:200]!r}")
    address = guest.run("ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1 | head -1")
    code = HOSTILE_SCRIPT.replace("GUEST_ADDRESS", address)
    ended = run(port, jar, {"name": "hostile.py", "code": code, "project": PROJECT}, stop_on="child ")
    lines = ended["lines"]
    said = {line.split()[0]: line for line in lines}
    problems = []
    user, uid = f"micarray-run-{ended['id']}", int(said.get("user", "user ? -1").split()[2])
    if said.get("user", "").split()[1:2] != [user] or uid == first_uid:
        problems.append(f"not a user of its own: {said.get('user')} (the first run had uid {first_uid})")
    if (
        said.get("cwd") != f"cwd /var/lib/micarray/runs/{ended['id']}/project"
        or said.get("data") != "data 42"
    ):
        problems.append(f"not started in its project: {said.get('cwd')}, {said.get('data')}")
    if "'runs'" not in said.get("sees", "") or f"['{ended['id']}']" not in said.get("sees", ""):
        problems.append(f"sees more than its own: {said.get('sees')}")
    problems += [line for line in lines if line.startswith(("read ", "reached "))]
    problems += [line for line in lines if line.startswith("private ") and not line.endswith("[]")]
    if not any(line.startswith("network ") for line in lines):
        problems.append("the network check did not run")
    child = int(said.get("child", "child 0").split()[1])
    gone = guest.run(f"sleep 2; kill -0 {child} 2>/dev/null && echo alive || echo gone", check=False)
    if child == 0 or gone != "gone":
        problems.append(f"its setsid child {child} is {gone} 2 s after Stop")
    owner = guest.run(f"stat -c '%u %G %a' /var/lib/micarray/{PROJECT_PATH}/written.txt", check=False)
    if owner.split()[:2] != [str(uid), "micarray-run"]:
        problems.append(f"written.txt in the project is {owner!r}, not the run's with the run group")
    if ended["state"] != "stopped" or problems:
        raise SystemExit(f"hostile run ended {ended['state']} ({ended.get('reason')}): {problems}; {lines}")
    return [line for line in lines if not line.startswith("data")]


PROJECT_PATH = f"projects/{PROJECT}"
