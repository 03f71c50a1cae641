"""Revocation: a revoked token's connections and RTP streams end at once; so do a run's
and a signed-out browser session's."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

from tornado.websocket import WebSocketClientConnection

from appliance.auth import Connections, TokenStore
from tests.conftest_web import Http
from tests.server import BIN, ApplianceProcess
from tests.wsclient import browser, connect, hello, receive, shut


async def ask(ws: WebSocketClientConnection, msg: dict[str, Any]) -> dict[str, Any]:
    await ws.write_message(json.dumps(msg))
    while True:
        raw = await ws.read_message()
        assert raw is not None, "connection closed"
        if isinstance(raw, str):
            reply: dict[str, Any] = json.loads(raw)
            if reply.get("id") == msg["id"] and reply["type"] in ("ack", "error"):
                return reply


async def until_closed(ws: WebSocketClientConnection, timeout: float = 10.0) -> None:
    """Read (audio included) until the device closes the connection."""

    async def drain() -> None:
        while await ws.read_message() is not None:
            pass

    await asyncio.wait_for(drain(), timeout)


async def listening(
    appliance: ApplianceProcess, token: str
) -> tuple[WebSocketClientConnection, socket.socket]:
    """A listener with audio on and one RTP stream that is flowing."""
    ws = await connect(appliance, token)
    await hello(ws, "listener")
    assert (await ask(ws, {"type": "audio", "id": 1, "on": True}))["type"] == "ack"
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    rtp.setblocking(False)
    port = rtp.getsockname()[1]
    assert (await ask(ws, {"type": "stream_start", "id": 2, "port": port}))["type"] == "ack"
    await asyncio.wait_for(asyncio.get_running_loop().sock_recv(rtp, 2048), 10)
    return ws, rtp


async def listeners_now(view: WebSocketClientConnection) -> list[dict[str, Any]]:
    stats = await receive(view, "stats")
    result: list[dict[str, Any]] = stats["listeners"]
    return result


async def test_revoking_a_token_closes_its_connection_and_stream_at_once(appliance: ApplianceProcess) -> None:
    http = Http(appliance.url)
    assert http.setup() == 302
    ws, rtp = await listening(appliance, appliance.token("laptop"))
    view, _ = await browser(appliance)
    assert len(await listeners_now(view)) == 1
    status, _, _ = http.request("DELETE", "/api/v1/tokens/laptop")
    assert status == 200
    await until_closed(ws)
    assert (ws.close_code, ws.close_reason) == (4003, "token laptop was revoked")
    # The very next stats (sent after the close was handled) show no stream left.
    assert await listeners_now(view) == []
    rtp.close()
    await shut(view)
    assert "Traceback" not in appliance.log()


async def test_a_token_revoked_from_the_command_line_is_cut_off_too(appliance: ApplianceProcess) -> None:
    ws, rtp = await listening(appliance, appliance.token("tool"))
    subprocess.run(
        [str(BIN / "appliance"), "token", "revoke", "tool", "--data-dir", str(appliance.data_dir)],
        check=True,
        capture_output=True,
    )
    await until_closed(ws)
    assert (ws.close_code, ws.close_reason) == (4003, "token tool was revoked")
    rtp.close()


def test_connections_end_by_credential_and_a_run_token_ends_with_its_run(tmp_path: Path) -> None:
    closed: list[tuple[str, str]] = []
    registry = Connections()
    forget_a = registry.add(["api:a", "browser:s1"], lambda why: closed.append(("a", why)))
    registry.add(["api:a"], lambda why: closed.append(("a2", why)))
    registry.add(["api:b"], lambda why: closed.append(("b", why)))
    assert registry.close("browser:s1", "signed out") == 1
    forget_a()
    assert registry.close("api:a", "revoked") == 1
    assert closed == [("a", "signed out"), ("a2", "revoked")]
    assert registry.count("api:b") == 1

    store = TokenStore(tmp_path)
    ended: list[str] = []
    store.connections.add(["run:r1"], ended.append)
    store.connections.add(["browser:xyz"], ended.append)
    store.issue_run_token("r1")
    store.drop_run_token("r1")
    assert store.end_browser_session("xyz") == 1
    assert ended == ["run r1 ended", "signed out"]
