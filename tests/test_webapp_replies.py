"""Every request that carries an id gets exactly one ``ack`` or ``error`` (docs/protocol.md).

The page waits for the answer to each request it sends; a request the device
never answers became a red "did not answer within 15 s" toast.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from typing import Any

from tornado.websocket import WebSocketClientConnection

from tests.server import ApplianceProcess
from tests.wsclient import browser, shut

REPLY_TIMEOUT_S = 20.0


async def replies_until(
    ws: WebSocketClientConnection, wanted: set[int], seen: Counter[int], types: set[str] | None = None
) -> dict[int, Any]:
    """Read until every id in ``wanted`` has a reply (and every type in ``types`` came).

    Counts every reply with an id in ``seen``.
    """
    found: dict[int, Any] = {}
    missing = set(types or ())

    async def read() -> None:
        while not wanted <= set(found) or missing:
            raw = await ws.read_message()
            assert raw is not None, "the device closed the connection"
            if not isinstance(raw, str):
                continue
            msg = json.loads(raw)
            missing.discard(msg["type"])
            if msg["type"] in ("ack", "error", "pong") and isinstance(msg.get("id"), int):
                seen[msg["id"]] += 1
                found.setdefault(msg["id"], msg)

    await asyncio.wait_for(read(), REPLY_TIMEOUT_S)
    return found


async def test_every_request_with_an_id_gets_one_reply(appliance: ApplianceProcess) -> None:
    ws, welcome = await browser(appliance)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        seen: Counter[int] = Counter()
        rate = welcome["config"]["rate"]
        first: list[dict[str, Any]] = [
            {"type": "ping"},
            {"type": "audio", "on": True, "channels": [0]},
            {"type": "audio", "on": False},
            {"type": "change_config", "rate": rate},
            {"type": "change_config", "rate": 12345},  # refused: an error, still one reply
            {"type": "add_handler", "name": "t", "handler_type": "base:graph:line", "parameters": {}},
            {"type": "output", "stream": "stdout", "text": "hi"},
            {"type": "stream_start", "port": udp.getsockname()[1]},
            {"type": "handler_data", "handler": "h-none", "data": [1]},  # refused
            {"type": "run_stop", "run": "no-such-run"},  # refused
        ]
        for i, msg in enumerate(first, start=1):
            await ws.write_message(json.dumps({**msg, "id": i}))
        got = await replies_until(ws, set(range(1, len(first) + 1)), seen)
        handler, stream = got[6]["handler"], got[8]["stream"]["id"]
        assert got[5]["type"] == "error" and got[9]["type"] == "error" and got[10]["type"] == "error"
        second: list[dict[str, Any]] = [
            {"type": "handler_data", "handler": handler, "data": [{"x": 1, "y": 2}]},
            {"type": "handler_close", "handler": handler},
            {"type": "stream_renew", "stream": stream},
            {"type": "stream_stop", "stream": stream},
            {"type": "run_start", "name": "replies.py", "code": "import time\ntime.sleep(60)\n"},
        ]
        base = 100
        for i, msg in enumerate(second, start=base):
            await ws.write_message(json.dumps({**msg, "id": i}))
        got = await replies_until(ws, set(range(base, base + len(second))), seen)
        run = got[base + 4]["run"]["id"]
        await ws.write_message(json.dumps({"type": "run_stop", "run": run, "id": 200}))
        await replies_until(ws, {200}, seen, {"run_ended"})
        # A last round trip: anything still owed or sent twice has arrived by now.
        await ws.write_message(json.dumps({"type": "ping", "id": 300}))
        await replies_until(ws, {300}, seen)
        twice = {i: n for i, n in seen.items() if n != 1}
        assert not twice, f"requests answered more than once: {twice}"
        assert set(seen) == {*range(1, len(first) + 1), *range(base, base + len(second)), 200, 300}
    finally:
        udp.close()
        await shut(ws)
    assert "Traceback" not in appliance.log()
