"""Sandboxed script runs for the isolation tests, usable in-process or as a program.

As a program it runs one hostile script in a sandbox and prints its stdout
lines as JSON, so a test can run it inside a network namespace of its own:
``python -m tests.isolation_support NETWORK SCRIPT_FILE``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from appliance.runs.launchbase import MIB, RunLimits
from appliance.runs.launcher import RlimitLauncher
from appliance.runs.runner import RunManager

T = TypeVar("T")
WAIT_S = 20.0
SCENARIO_S = 60.0


class Events:
    """Every event the manager sent, with a way to wait for one."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def __call__(self, event: dict[str, Any]) -> None:
        self.items.append(event)
        self._changed.set()

    def texts(self, run_id: str, stream: str = "stdout") -> list[str]:
        return [
            e["text"]
            for e in self.items
            if e["type"] == "run_output" and e["run"] == run_id and e["stream"] == stream
        ]

    async def until(self, done: Callable[[], bool], timeout: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._changed.clear()
                await self._changed.wait()


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def make_root() -> Path:
    """A run root the run users can enter (pytest's tmp is 0700)."""
    top = Path(tempfile.mkdtemp(prefix="isolation-test-"))
    top.chmod(0o711)
    return top


Body = Callable[[RunManager, Events], Awaitable[T]]


def sandboxed(
    top: Path,
    body: Body[T],
    *,
    network: str = "api",
    env: Callable[[str, str], dict[str, str]] | None = None,
    hidden: tuple[Path, ...] = (),
) -> T:
    """Run ``body`` with a manager whose runs are sandboxed; every run is stopped after."""

    async def main() -> T:
        events = Events()
        limits = RunLimits(memory_bytes=256 * MIB, network=network)
        launcher = RlimitLauncher(limits, sandbox=True, hidden=hidden)
        manager = RunManager(top / "runs", launcher, env or (lambda run_id, name: {}), events)
        try:
            return await asyncio.wait_for(body(manager, events), SCENARIO_S)
        finally:
            await manager.stop_all()

    return asyncio.run(main())


def _main(network: str, script: Path) -> None:
    top = make_root()

    async def body(manager: RunManager, events: Events) -> list[str]:
        info = await manager.wait((await manager.start("hostile", script.read_text())).id)
        return events.texts(info.id) + events.texts(info.id, "stderr")

    try:
        print(json.dumps(sandboxed(top, body, network=network)))
    finally:
        shutil.rmtree(top)


if __name__ == "__main__":
    _main(sys.argv[1], Path(sys.argv[2]))
