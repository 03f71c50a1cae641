"""``appliance run FILE``: run a script on the device and follow it in the terminal.

The script runs exactly as if started from the web editor (same isolation,
same console in the browser); this terminal shows its output and ends with
its exit status.  Ctrl-C stops the run.  The connection is the one protocol
client every tool uses, so a refused token or a device that is not running
reads here as it does in scripts and in ``rtai``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from browserinterface import protocol as P
from browserinterface._locate import find_target
from browserinterface.client import DeviceError, ProtocolClient

HELLO = {"type": "hello", "protocol": P.PROTOCOL_VERSION, "role": "console", "name": "appliance run"}


async def run_file(path: Path, device: str | None = None) -> int:
    """Start ``path`` on the device, print its output, return its exit status.

    Raises DeviceError (in words) when the device cannot be reached or refuses.
    """
    target = find_target(device)
    client = ProtocolClient(target.address, target.token)
    await client.connect(HELLO)
    events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    reader = asyncio.create_task(_read(client, events))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, lambda: events.put_nowait({"type": "_interrupt"}))
    try:
        try:
            ack = await client.request({"type": "run_start", "name": path.name, "code": path.read_text()})
        except DeviceError as exc:
            if exc.kind != "refused":
                raise
            print(f"appliance run: {exc}", file=sys.stderr)
            return 2
        return await _follow(client, events, ack["run"]["id"])
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await client.close()


async def _read(client: ProtocolClient, events: asyncio.Queue[dict[str, Any] | None]) -> None:
    try:
        await client.read(events.put_nowait, lambda _frame: None)
    finally:
        events.put_nowait(None)  # the device went away


async def _follow(client: ProtocolClient, events: asyncio.Queue[dict[str, Any] | None], run_id: str) -> int:
    stopping = False
    while True:
        msg = await events.get()
        if msg is None:
            print("appliance run: the device closed the connection", file=sys.stderr)
            return 1
        if msg["type"] == "_interrupt":
            if not stopping:
                stopping = True
                await client.send({"type": "run_stop", "run": run_id})
            continue
        code = _show(msg, run_id)
        if code is not None:
            return code


def _show(msg: dict[str, Any], run_id: str) -> int | None:
    """Print one run event; the exit status once the run has ended."""
    run = msg.get("run")
    if run != run_id and not (isinstance(run, dict) and run.get("id") == run_id):
        return None
    if msg["type"] == "run_output":
        stream = sys.stderr if msg["stream"] == "stderr" else sys.stdout
        print(msg["text"], file=stream, flush=True)
    elif msg["type"] == "run_dropped":
        print(f"[{msg['lines']} lines of output were dropped]", file=sys.stderr, flush=True)
    elif msg["type"] == "run_ended" and isinstance(run, dict):
        print(f"[{run['name']}: {run.get('reason') or run['state']}]", file=sys.stderr, flush=True)
        code = run.get("exit_code")
        return int(code) if isinstance(code, int) else 1
    return None
