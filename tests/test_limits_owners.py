"""Shares per owner on a real device: streams and tabs per credential, and who changed the config."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.websocket import WebSocketClientConnection

from appliance.sessions.handlers import MAX_HANDLERS, TABS_PER_OWNER, HandlerError, HandlerRegistry, Owner
from appliance.sessions.quotas import STREAMS_PER_OWNER
from tests.server import ApplianceProcess
from tests.wsclient import browser, connect, hello, shut


async def ask(ws: WebSocketClientConnection, msg: dict[str, Any]) -> dict[str, Any]:
    """Send a request and return its ack or error (matched by id)."""
    await ws.write_message(json.dumps(msg))
    while True:
        reply = await receive_any(ws)
        if reply.get("id") == msg["id"] and reply["type"] in ("ack", "error"):
            return reply


async def receive_any(ws: WebSocketClientConnection) -> dict[str, Any]:
    while True:
        raw = await ws.read_message()
        assert raw is not None, "connection closed"
        if isinstance(raw, str):
            parsed: dict[str, Any] = json.loads(raw)
            return parsed


async def test_one_token_cannot_take_every_stream(appliance: ApplianceProcess) -> None:
    greedy, modest = appliance.token("greedy"), appliance.token("modest")
    sockets = [await connect(appliance, greedy) for _ in range(2)]
    for ws in sockets:
        await hello(ws, "listener")
    replies = []
    for n in range(STREAMS_PER_OWNER + 1):
        ws = sockets[n % 2]
        replies.append(await ask(ws, {"type": "stream_start", "id": n, "port": 41000 + 2 * n}))
    assert [r["type"] for r in replies] == ["ack"] * STREAMS_PER_OWNER + ["error"]
    assert replies[-1]["message"] == (
        f"{STREAMS_PER_OWNER} streams are open with this api credential; "
        f"the limit is {STREAMS_PER_OWNER} per credential. Stop one first"
    )
    other = await connect(appliance, modest)
    await hello(other, "listener")
    assert (await ask(other, {"type": "stream_start", "id": 1, "port": 42000}))["type"] == "ack"
    await shut(*sockets, other)


async def test_a_script_cannot_remove_or_crowd_out_others_live_tabs(appliance: ApplianceProcess) -> None:
    view, _ = await browser(appliance)
    victim = await connect(appliance, appliance.token("victim"))
    await hello(victim, "script", name="victim.py", inform_browser=True)
    add = {"type": "add_handler", "id": 1, "name": "mine", "handler_type": "base:heatmap"}
    added = await ask(victim, add)
    mine = added["handler"]
    bully = await connect(appliance, appliance.token("bully"))
    await hello(bully, "script", name="bully.py", inform_browser=True)
    replies = [
        await ask(bully, {"type": "add_handler", "id": n, "name": f"t{n}", "handler_type": "base:heatmap"})
        for n in range(TABS_PER_OWNER + 4)
    ]
    assert [r["type"] for r in replies] == ["ack"] * TABS_PER_OWNER + ["error"] * 4
    assert replies[-1]["code"] == "bad_handler"
    assert replies[-1]["message"] == (
        f"{TABS_PER_OWNER} tabs of this script are open; the limit is {TABS_PER_OWNER} per script (or token)"
    )
    # The victim's tab is still there and still takes data.
    await victim.write_message(json.dumps({"type": "handler_data", "handler": mine, "data": [[1]]}))
    while True:
        msg = await receive_any(view)
        assert not (msg["type"] == "handler_removed" and msg["handler"] == mine)
        if msg["type"] == "handler_data" and msg["handler"] == mine:
            break
    await shut(victim, bully, view)


async def test_a_scripts_config_change_is_logged_with_who_made_it(appliance: ApplianceProcess) -> None:
    ws = await connect(appliance, appliance.token("tuner"))
    welcome = await hello(ws, "script", name="tune.py", host="lab-laptop")
    other = next(r for r in welcome["valid_rates"] if r != welcome["config"]["rate"])
    # Logged before the ack is sent.
    assert (await ask(ws, {"type": "change_config", "id": 1, "rate": other}))["type"] == "ack"
    await shut(ws)
    assert "by api:tuner (tune.py on lab-laptop)" in appliance.log()
    assert "Traceback" not in appliance.log()


def test_at_the_devices_limit_only_finished_tabs_give_way() -> None:
    reg = HandlerRegistry(lambda msg: None)
    owners = [Owner("script", f"s{i}", f"s{i}.py", "laptop", credential=f"api:t{i}") for i in range(3)]
    for n in range(MAX_HANDLERS):
        reg.add(f"t{n}", "base:heatmap", {}, owners[n % 2], visible=True)
    full = rf"^the device shows {MAX_HANDLERS} tabs of running scripts, its limit; stop a script"
    with pytest.raises(HandlerError, match=full):
        reg.add("late", "base:heatmap", {}, owners[2], visible=True)
    assert len(reg.visible()) == MAX_HANDLERS
    reg.end_owner("s0")
    reg.add("late", "base:heatmap", {}, owners[2], visible=True)
    names = [h["name"] for h in reg.visible()]
    assert "late" in names and "t0" not in names and "t1" in names
