"""``appliance run FILE``: run a script on the device and follow it in the terminal.

The script runs exactly as if started from the web editor (same isolation,
same console in the browser); this terminal shows its output and ends with
its exit status.  Ctrl-C stops the run.  Given a folder, the folder goes
along as it is (helper modules, packages, data files) and is the run's
working directory; the script is ``DIR/<folder name>.py``, else
``DIR/main.py``, else the folder's only ``.py`` file.  The connection is the
one protocol client every tool uses, so a refused token or a device that is
not running reads here as it does in scripts and in ``rtai``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import signal
import sys
from pathlib import Path
from typing import Any

from appliance.runs.runner import MAX_RUN_FILES, MAX_RUN_FILES_BYTES
from browserinterface import protocol as P
from browserinterface._locate import find_target
from browserinterface.client import DeviceError, ProtocolClient

HELLO = {"type": "hello", "protocol": P.PROTOCOL_VERSION, "role": "console", "name": "appliance run"}


class FolderError(ValueError):
    """A folder that cannot be run as it is (no script to pick, too large)."""


def pick_script(folder: Path) -> Path:
    """The script of a project folder: ``<name>.py``, ``main.py`` or the only ``.py``."""
    for candidate in (folder / f"{folder.name}.py", folder / "main.py"):
        if candidate.is_file():
            return candidate
    scripts = sorted(folder.glob("*.py"))
    if len(scripts) == 1:
        return scripts[0]
    raise FolderError(
        f"{folder} has no {folder.name}.py or main.py and {len(scripts)} other .py files; "
        "name the script to run: appliance run FOLDER/SCRIPT.py"
    )


def pack_folder(folder: Path) -> dict[str, str]:
    """Every plain file of ``folder`` as ``{relative path: base64}``; hidden files and caches left out."""
    paths = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.is_file() and not path.is_symlink():
            paths.append((rel.as_posix(), path))
    total = sum(path.stat().st_size for _, path in paths)
    if total > MAX_RUN_FILES_BYTES or len(paths) > MAX_RUN_FILES:
        raise FolderError(
            f"{folder} holds {len(paths)} files, {total} bytes; a folder run this way brings at most "
            f"{MAX_RUN_FILES} files and {MAX_RUN_FILES_BYTES} bytes: upload large data files to the "
            "project in the web app (Files) and run it from there"
        )
    return {rel: base64.b64encode(path.read_bytes()).decode("ascii") for rel, path in paths}


def start_message(path: Path) -> dict[str, Any]:
    """The ``run_start`` request for a file, or for a folder brought along as it is."""
    if path.is_dir():
        script = pick_script(path)
        return {
            "type": "run_start",
            "name": script.name,
            "code": script.read_text(),
            "files": pack_folder(path),
        }
    return {"type": "run_start", "name": path.name, "code": path.read_text()}


async def run_file(path: Path, device: str | None = None) -> int:
    """Start ``path`` (a script or a project folder) on the device, print its output, return its status.

    Raises DeviceError (in words) when the device cannot be reached or refuses.
    """
    try:
        start = start_message(path)
    except (FolderError, OSError) as exc:
        print(f"appliance run: {exc}", file=sys.stderr)
        return 2
    target = find_target(device)
    client = ProtocolClient(target.address, target.token)
    await client.connect(HELLO)
    events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    reader = asyncio.create_task(_read(client, events))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, lambda: events.put_nowait({"type": "_interrupt"}))
    try:
        try:
            ack = await client.request(start)
        except DeviceError as exc:
            if exc.kind != "refused":
                raise
            print(f"appliance run: {exc}", file=sys.stderr)
            return 2
        return await _follow(client, events, ack["run"]["id"], UserFile(path))
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


async def _follow(
    client: ProtocolClient, events: asyncio.Queue[dict[str, Any] | None], run_id: str, user_file: UserFile
) -> int:
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
        code = _show(msg, run_id, user_file)
        if code is not None:
            return code


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
    run = msg.get("run")
    if run != run_id and not (isinstance(run, dict) and run.get("id") == run_id):
        return None
    if msg["type"] == "run_output":
        stream = sys.stderr if msg["stream"] == "stderr" else sys.stdout
        print(user_file.rewrite(msg["text"]), file=stream, flush=True)
    elif msg["type"] == "run_dropped":
        print(f"[{msg['lines']} lines of output were dropped]", file=sys.stderr, flush=True)
    elif msg["type"] == "run_ended" and isinstance(run, dict):
        print(f"[{run['name']}: {run.get('reason') or run['state']}]", file=sys.stderr, flush=True)
        code = run.get("exit_code")
        return int(code) if isinstance(code, int) else 1
    return None
