"""``appliance run FILE``: run a script on the device and follow it in the terminal.

The script runs exactly as if started from the web editor (same isolation,
same console in the browser); this terminal shows its output and ends with
its exit status.  Ctrl-C stops the run.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path
from typing import Any

from browserinterface import protocol as P
from browserinterface._locate import find_target
from browserinterface.apisocket import open_api_socket


async def run_file(path: Path, device: str | None = None) -> int:
    """Start ``path`` on the device, print its output, return its exit status."""
    target = find_target(device)
    ws = await open_api_socket(target.address, target.token)
    hello = {"type": "hello", "protocol": P.PROTOCOL_VERSION, "role": "console", "name": "appliance run"}
    await ws.write_message(P.encode_message(hello))
    start = {"type": "run_start", "id": 1, "name": path.name, "code": path.read_text()}
    user_file = UserFile(path)
    await ws.write_message(P.encode_message(start))
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop_requested.set)
    run_id: str | None = None
    early: list[dict[str, Any]] = []
    stopper: asyncio.Future[object] = loop.create_task(stop_requested.wait())
    try:
        while True:
            reader: asyncio.Future[str | bytes | None] = asyncio.ensure_future(ws.read_message())
            waiting: set[asyncio.Future[Any]] = {reader, stopper}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done and run_id is not None:
                await ws.write_message(P.encode_message({"type": "run_stop", "id": 2, "run": run_id}))
                stopper = loop.create_task(asyncio.Event().wait())
            message = await reader
            if message is None:
                print("appliance run: the device closed the connection", file=sys.stderr)
                return 1
            if isinstance(message, bytes):
                continue
            msg = P.decode_message(message)
            if msg["type"] == "error" and msg.get("id") == 1:
                print(f"appliance run: {msg['message']}", file=sys.stderr)
                return 2
            if msg["type"] == "ack" and msg.get("id") == 1:
                run_id = msg["run"]["id"]
                for event in early:
                    code = _show(event, run_id, user_file)
                    if code is not None:
                        return code
                continue
            if run_id is None:
                early.append(msg)
                continue
            code = _show(msg, run_id, user_file)
            if code is not None:
                return code
    finally:
        stopper.cancel()
        loop.remove_signal_handler(signal.SIGINT)
        ws.close()


class UserFile:
    """Puts the user's own path back into traceback lines.

    The device runs a copy of the file in the run's directory, so its frames
    name that copy; the terminal should name the file the user ran.
    """

    def __init__(self, path: Path) -> None:
        self._path = str(path.resolve())
        name = re.escape(path.name)
        # `  File "/run/dir/NAME", line 3` and the warnings module's `/run/dir/NAME:3: UserWarning`
        self._frame = re.compile(rf'^(\s*File ")[^"]*/{name}(", line \d+)')
        self._warning = re.compile(rf"^/[^:\s]*/{name}(:\d+: )")

    def rewrite(self, text: str) -> str:
        """``text`` with a path to the device's copy replaced by the user's path."""
        text = self._frame.sub(lambda m: f"{m[1]}{self._path}{m[2]}", text, count=1)
        return self._warning.sub(lambda m: f"{self._path}{m[1]}", text, count=1)


def _show(msg: dict[str, Any], run_id: str, user_file: UserFile) -> int | None:
    """Print one run event; the exit status once the run has ended."""
    if msg.get("run") != run_id and not (isinstance(msg.get("run"), dict) and msg["run"]["id"] == run_id):
        return None
    if msg["type"] == "run_output":
        stream = sys.stderr if msg["stream"] == "stderr" else sys.stdout
        print(user_file.rewrite(msg["text"]), file=stream, flush=True)
    elif msg["type"] == "run_dropped":
        print(f"[{msg['lines']} lines of output were dropped]", file=sys.stderr, flush=True)
    elif msg["type"] == "run_ended":
        run = msg["run"]
        print(f"[{run['name']}: {run.get('reason') or run['state']}]", file=sys.stderr, flush=True)
        code = run.get("exit_code")
        return int(code) if isinstance(code, int) else 1
    return None
