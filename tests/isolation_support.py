"""Sandboxed script runs for the isolation tests, usable in-process or as a program.

As a program it runs one hostile script in a sandbox and prints its stdout
lines as JSON, so a test can run it inside a network namespace of its own:
``python -m tests.isolation_support NETWORK SCRIPT_FILE``.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from appliance.runs.launchbase import MIB, RunLimits
from appliance.runs.launcher import RlimitLauncher
from appliance.runs.runner import RunManager
from tests.run_support import Body, Events, code, make_root, with_manager

__all__ = ["Events", "code", "make_root", "sandboxed"]

T = TypeVar("T")


def sandboxed(
    top: Path,
    body: Body[T],
    *,
    network: str = "api",
    env: Callable[[str, str], dict[str, str]] | None = None,
    hidden: tuple[Path, ...] = (),
) -> T:
    """Run ``body`` with a manager whose runs are sandboxed; every run is stopped after."""
    limits = RunLimits(memory_bytes=256 * MIB, network=network)
    launcher = RlimitLauncher(limits, sandbox=True, hidden=hidden)
    return with_manager(top / "runs", launcher, env or (lambda run_id, name: {}), body)


def _main(network: str, script: Path) -> None:
    top = make_root("isolation-test-")

    async def body(manager: RunManager, events: Events) -> list[str]:
        info = await manager.wait((await manager.start("hostile", script.read_text())).id)
        return events.texts(info.id) + events.texts(info.id, "stderr")

    try:
        print(json.dumps(sandboxed(top, body, network=network)))
    finally:
        shutil.rmtree(top)


if __name__ == "__main__":
    _main(sys.argv[1], Path(sys.argv[2]))
