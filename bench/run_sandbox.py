"""Script runs in the bubblewrap sandbox against the same runs without it (the peer).

For each way: the time from start to the script's first line (``print`` after
``import numpy``), and the time Stop takes for a script that left a ``setsid``
child behind (the sandbox must end it; without it the child survives and is
killed here afterwards).  Prints figures only.
``python -m bench run_sandbox`` (as root, with bubblewrap installed).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import time

from appliance.runs import sandbox
from appliance.runs.launcher import RlimitLauncher
from appliance.runs.runner import RunManager
from bench import count
from tests.isolation_support import Events, code, make_root

RUNS = count(5)
FIRST_LINE = """
import numpy
print("ready", flush=True)
"""
ESCAPER = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
print("ready", child.pid, flush=True)
time.sleep(600)
"""


async def _first_line(manager: RunManager, events: Events) -> float:
    began = time.monotonic()
    info = await manager.start("first", code(FIRST_LINE))
    await events.until(lambda: "ready" in events.texts(info.id))
    took = time.monotonic() - began
    await manager.wait(info.id)
    return took


async def _stop(manager: RunManager, events: Events, sandboxed: bool) -> tuple[float, bool]:
    info = await manager.start("escaper", code(ESCAPER))
    await events.until(lambda: any(t.startswith("ready") for t in events.texts(info.id)))
    child = int(next(t for t in events.texts(info.id) if t.startswith("ready")).split()[1])
    began = time.monotonic()
    await manager.stop(info.id)
    took = time.monotonic() - began
    survived = False
    if not sandboxed:  # the pid is ours only without a pid namespace
        try:
            os.kill(child, signal.SIGKILL)
            survived = True
        except ProcessLookupError:
            pass
    return took, survived


async def _measure(sandboxed: bool) -> tuple[list[float], list[float], int]:
    top = make_root()
    events = Events()
    manager = RunManager(top / "runs", RlimitLauncher(sandbox=sandboxed), lambda r, n: {}, events)
    try:
        firsts = [await _first_line(manager, events) for _ in range(RUNS)]
        stops = [await _stop(manager, events, sandboxed) for _ in range(RUNS)]
    finally:
        await manager.stop_all()
        shutil.rmtree(top)
    return firsts, [s for s, _ in stops], sum(survived for _, survived in stops)


def main() -> None:
    if os.geteuid() != 0 or not sandbox.bwrap_usable():
        print("needs root and bubblewrap with user namespaces; skipped")
        return
    for sandboxed in (False, True):
        firsts, stops, survivors = asyncio.run(_measure(sandboxed))
        name = "sandbox" if sandboxed else "no sandbox"
        print(
            f"{name}: start to first line median {statistics.median(firsts) * 1000:.0f} ms "
            f"(max {max(firsts) * 1000:.0f}); Stop with a setsid child median "
            f"{statistics.median(stops) * 1000:.0f} ms (max {max(stops) * 1000:.0f}); "
            f"setsid children left alive: {survivors} of {RUNS}"
        )


if __name__ == "__main__":
    main()
