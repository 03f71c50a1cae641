"""A sandboxed run on a real device still reaches the device's API, and only that."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from typing import Any

import pytest
from tornado.websocket import WebSocketClientConnection

from appliance.runs import sandbox
from tests.server import ApplianceProcess
from tests.wsclient import browser, receive, shut

pytestmark = [
    pytest.mark.skipif(not sandbox.bwrap_usable(), reason="needs bubblewrap with user namespaces"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a uid per run needs root"),
]

SCRIPT = textwrap.dedent(
    """
    import browserinterface as bi

    def configured(buffer_frames, rate, channels, volume):
        chart = bi.add_handler("inside", "base:graph:line", {"xName": "t", "series": ["a"]})
        chart.send_data([{"x": 1, "y": 2}])
        print("configured", rate, flush=True)

    bi.register_when_new_config(configured)
    bi.start()
    bi.loop_callbacks()
    """
)


async def _until_all(ws: WebSocketClientConnection, kinds: set[str]) -> dict[str, dict[str, Any]]:
    """The first message of each kind, in whatever order they come (output and tabs race)."""

    async def collect() -> dict[str, dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        while not kinds <= seen.keys():
            msg = await ws.read_message()
            assert msg is not None, f"connection closed; seen {sorted(seen)}"
            if isinstance(msg, str):
                parsed = json.loads(msg)
                seen.setdefault(parsed["type"], parsed)
        return seen

    return await asyncio.wait_for(collect(), 30)


async def test_a_sandboxed_script_talks_to_the_device_through_the_relay(appliance: ApplianceProcess) -> None:
    ws, welcome = await browser(appliance)
    await ws.write_message(json.dumps({"type": "run_start", "id": 1, "name": "inside.py", "code": SCRIPT}))
    run = (await receive(ws, "ack"))["run"]
    assert run["user"].startswith("run-")
    seen = await _until_all(ws, {"handler_added", "handler_data", "run_output"})
    assert seen["handler_added"]["handler"]["name"] == "inside"
    assert seen["handler_data"]["data"] == [{"x": 1, "y": 2}]
    assert seen["run_output"]["text"] == f"configured {welcome['config']['rate']}", seen
    await ws.write_message(json.dumps({"type": "run_stop", "id": 2, "run": run["id"]}))
    ended = await receive(ws, "run_ended")
    assert ended["run"]["state"] == "stopped"
    await shut(ws)
    assert "Traceback" not in appliance.log()
    assert "not sandboxed" not in appliance.log()
