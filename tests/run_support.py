"""A real RunManager for the run tests: its events, a fresh loop, every run stopped after.

Shared by tests/test_runner.py (unsandboxed runs) and tests/isolation_support.py
(sandboxed runs).
"""

from __future__ import annotations

import asyncio
import tempfile
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from appliance.runs.launchbase import Launcher
from appliance.runs.launcher import group_alive
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

    def of(self, run_id: str, kind: str = "run_output") -> list[dict[str, Any]]:
        def run_of(event: dict[str, Any]) -> str:
            run = event["run"]
            return str(run["id"] if isinstance(run, dict) else run)

        return [e for e in self.items if e["type"] == kind and run_of(e) == run_id]

    def texts(self, run_id: str, stream: str = "stdout") -> list[str]:
        return [e["text"] for e in self.of(run_id) if e["stream"] == stream]

    async def until(self, done: Callable[[], bool], timeout: float = WAIT_S) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError("the expected events did not arrive in time")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def make_root(prefix: str = "runs-test-") -> Path:
    """A folder the run users can enter (pytest's tmp is 0700); the caller removes it."""
    top = Path(tempfile.mkdtemp(prefix=prefix))
    top.chmod(0o711)
    return top


Body = Callable[[RunManager, Events], Awaitable[T]]


def with_manager(
    root: Path,
    launcher: Launcher,
    env: Callable[[str, str], dict[str, str]],
    body: Body[T],
    projects_root: Path | None = None,
) -> T:
    """Run ``body`` with a fresh manager on a fresh loop; always stop every run.

    A hung run fails here (after SCENARIO_S) and the runs are still stopped;
    a run whose processes outlive the stop fails the test.
    """

    async def main() -> T:
        events = Events()
        manager = RunManager(root, launcher, env, events, projects_root=projects_root)
        try:
            return await asyncio.wait_for(body(manager, events), SCENARIO_S)
        finally:
            await manager.stop_all()
            for info in manager.list():
                assert not group_alive(info.pid), f"run {info.name} left processes behind"

    return asyncio.run(main())
