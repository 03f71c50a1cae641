"""Big chart messages against a real device: size limits, a per-connection budget,
and a browser that is connected but never reads holding bounded memory while
another script keeps every block."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

from tornado.websocket import WebSocketClientConnection

from appliance.sessions import flow
from appliance.sessions.flow import TextBudget
from browserinterface import protocol as P
from tests.browser_login import login
from tests.server import ApplianceProcess
from tests.wsclient import connect, hello, receive, shut, stuck_socket

FLOOD_MESSAGES = 100
#: Just under the largest chart message, so each one is accepted on its own.
MESSAGE_BYTES = 500_000


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def stuck_browser(server: ApplianceProcess) -> socket.socket:
    """A signed-in browser's WebSocket that says hello and then never reads again."""
    cookie = login(server.port, server.data_dir)
    return stuck_socket(
        server,
        {"Cookie": cookie, "Origin": f"http://{server.device}"},
        ['{"type":"hello","protocol":1,"role":"browser"}'],
    )


FLOODER = """
import asyncio, json, sys
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

async def main(url, token, messages, size, too_large):
    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": "Bearer " + token}))
    async def reply(kind):
        while (msg := json.loads(await ws.read_message()))["type"] != kind:
            pass
        return msg
    hello = {"type": "hello", "protocol": 1, "name": "flood.py", "inform_browser": True}
    await ws.write_message(json.dumps(hello))
    await reply("welcome")
    await ws.write_message(json.dumps({"type": "add_handler", "id": 1, "name": "f", "handler_type": "x:y"}))
    tab = (await reply("ack"))["handler"]
    # First, while the budget is full: too large is refused on its size alone.
    await ws.write_message("x" * too_large)
    text = json.dumps({"type": "handler_data", "handler": tab, "data": [[0.5] * (size // 4)]})
    for _ in range(messages):
        await ws.write_message(text)
    await ws.write_message(json.dumps({"type": "ping", "id": 99}))
    errors = {}
    while (msg := json.loads(await ws.read_message()))["type"] != "pong":
        if msg["type"] == "error":
            errors.setdefault(msg["code"], msg["message"])
    print(json.dumps(errors))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])))
"""


async def count_losses(ws: WebSocketClientConnection, stop: asyncio.Event) -> list[dict[str, Any]]:
    losses = []
    while not stop.is_set():
        raw = await ws.read_message()
        assert raw is not None
        if isinstance(raw, str) and json.loads(raw)["type"] == "loss":
            losses.append(json.loads(raw))
    return losses


async def test_a_chart_flood_is_budgeted_and_costs_another_script_nothing(
    appliance: ApplianceProcess,
) -> None:
    assert appliance.proc is not None
    listener = await connect(appliance, appliance.token("listener"))
    await hello(listener)
    await listener.write_message(json.dumps({"type": "audio", "id": 1, "on": True}))
    await receive(listener, "ack")
    stuck = stuck_browser(appliance)
    before = peak_rss_kib(appliance.proc.pid)
    stop = asyncio.Event()
    counting = asyncio.ensure_future(count_losses(listener, stop))
    # Its own process, so sending the flood does not slow this one's reading.
    flood = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FLOODER, f"ws://{appliance.device}{P.WS_PATH}", appliance.token("flooder"),
        str(FLOOD_MESSAGES), str(MESSAGE_BYTES), str(P.MAX_TEXT_BYTES + 1),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(flood.communicate(), 120)
    assert flood.returncode == 0
    errors = json.loads(out)
    assert errors["too_large"] == f"message of {P.MAX_TEXT_BYTES + 1} bytes exceeds {P.MAX_TEXT_BYTES}"
    assert errors["over_budget"].endswith(
        "this connection sent more than 512 KiB/s (bursts up to 2048 KiB), "
        "or all clients together more than 1024 KiB/s; send less often or less data"
    )
    stop.set()
    await listener.write_message(json.dumps({"type": "ping", "id": 2}))
    losses = await asyncio.wait_for(counting, 30)
    grown_mib = (peak_rss_kib(appliance.proc.pid) - before) / 1024
    print(
        f"\nchart flood: service peak RSS grew {grown_mib:.0f} MiB; the other script lost {len(losses)} times"
    )
    assert losses == []
    # The stuck browser's queue, the budget's burst and the history are bounded.
    assert grown_mib < 64, grown_mib
    stuck.close()
    await shut(listener)
    assert "Traceback" not in appliance.log()


def test_many_connections_share_the_devices_budget() -> None:
    big = flow.SMALL_FRAME_BYTES + 1
    device = TextBudget(big, 2 * big, now=0)
    a, b, c = (TextBudget(big, 1.5 * big, now=0) for _ in range(3))
    assert a.admit(int(1.5 * big), now=0, shared=device)
    assert not b.admit(big, now=0, shared=device)  # b has room, the device has half a frame left
    assert b.admit(big // 2, now=0, shared=device)
    assert not a.admit(big, now=0, shared=device)
    # A control message always gets through, however busy the others keep the device.
    assert c.admit(200, now=0, shared=device)
    assert b.report(now=0) is not None and b.report(now=0.5) is None  # once a second at most
    assert b.admit(big, now=1.0, shared=device)  # a second later both have refilled
    report = a.report(now=1.0)
    assert report is not None and report.startswith("1 message(s) dropped: this connection sent more than")
