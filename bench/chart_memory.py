"""64 chart tabs filled with history on a real device: the service's memory, and a
listening script's lost blocks.

A real ``appliance serve --source sim``; 64 script connections each open a
tab and send chart messages of about 50 kB of numbers (the shape whose
Python objects are some 20 times their JSON) for ``SECONDS``; one more
script listens to the audio and counts the blocks it was told it lost.
Prints the service's resident memory before and after, its peak, the
messages the device refused for its budgets, and the blocks lost.
Prints figures only. ``python -m bench chart_memory``.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from appliance.auth import TokenStore
from bench import count, span
from browserinterface import protocol as P
from tests.server import ApplianceProcess

CHARTS = count(64, smoke=4)
SECONDS = span(30.0, smoke=1.0)
MESSAGE_FLOATS = 5000  # about 50 kB of JSON
PAUSE_S = 0.5  # per connection; 64 of them then offer about 6 MB/s


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def _connect(server: ApplianceProcess, token: str) -> WebSocketClientConnection:
    request = HTTPRequest(f"ws://{server.device}{P.WS_PATH}", headers={"Authorization": f"Bearer {token}"})
    return await websocket_connect(request, max_message_size=16 << 20)


async def _reply(ws: WebSocketClientConnection, kind: str) -> dict[str, Any]:
    while True:
        raw = await ws.read_message()
        assert raw is not None
        if isinstance(raw, str) and (msg := json.loads(raw))["type"] == kind:
            return dict(msg)


async def _chart(server: ApplianceProcess, token: str, n: int, end: float, refused: list[int]) -> None:
    ws = await _connect(server, token)
    await ws.write_message(
        json.dumps({"type": "hello", "protocol": 1, "name": f"c{n}.py", "inform_browser": True})
    )
    await _reply(ws, "welcome")
    await ws.write_message(
        json.dumps({"type": "add_handler", "id": 1, "name": f"c{n}", "handler_type": "x:y"})
    )
    tab = (await _reply(ws, "ack"))["handler"]
    text = json.dumps(
        {"type": "handler_data", "handler": tab, "data": [[n / 3 + k / 7 for k in range(MESSAGE_FLOATS)]]}
    )

    async def count_refusals() -> None:
        while (raw := await ws.read_message()) is not None:
            if isinstance(raw, str) and '"over_budget"' in raw:
                refused[0] += int(json.loads(raw)["message"].split()[0])

    counting = asyncio.ensure_future(count_refusals())
    while time.monotonic() < end:
        await ws.write_message(text)
        await asyncio.sleep(PAUSE_S)
    ws.close()
    await asyncio.wait_for(counting, 10)


async def _listen(server: ApplianceProcess, token: str, stop: asyncio.Event) -> int:
    ws = await _connect(server, token)
    await ws.write_message(json.dumps({"type": "hello", "protocol": 1, "name": "listen.py"}))
    await _reply(ws, "welcome")
    await ws.write_message(json.dumps({"type": "audio", "id": 1, "on": True}))
    lost = 0
    while not stop.is_set():
        raw = await ws.read_message()
        if raw is None:
            break
        if isinstance(raw, str) and (msg := json.loads(raw))["type"] == "loss":
            lost += int(msg["blocks"])
    ws.close()
    return lost


async def _measure(server: ApplianceProcess) -> None:
    assert server.proc is not None
    pid = server.proc.pid
    # Made here, not with the CLI (a process each): the service re-reads tokens.json.
    store = TokenStore(server.data_dir)
    tokens = [store.create(f"c{n}") for n in range(CHARTS)]
    before = _rss_kib(pid, "VmRSS")
    stop = asyncio.Event()
    listening = asyncio.ensure_future(_listen(server, store.create("listener"), stop))
    refused = [0]
    end = time.monotonic() + SECONDS
    await asyncio.gather(*(_chart(server, token, n, end, refused) for n, token in enumerate(tokens)))
    stop.set()
    lost = await asyncio.wait_for(listening, 30)
    after, peak = _rss_kib(pid, "VmRSS"), _rss_kib(pid, "VmHWM")
    print(
        f"{CHARTS} charts for {SECONDS:.0f} s: service RSS {before / 1024:.0f} -> {after / 1024:.0f} MiB "
        f"(peak {peak / 1024:.0f} MiB); messages refused for the budgets: {refused[0]}; "
        f"blocks the listening script lost: {lost}"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-charts-") as top:
        server = ApplianceProcess(Path(top) / "data").start()
        try:
            asyncio.run(_measure(server))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
