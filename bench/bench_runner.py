"""Script runs: start and stop latency, and what an output flood costs the service.

Run: ``.venv/bin/python -m bench bench_runner``.  Prints figures; never fails
on a time.  The flood is compared with a peer in the same run: a plain
``readline()`` loop that forwards every line (no rate limit, no pauses).
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.runs.launcher import RlimitLauncher
from appliance.runs.runner import RunManager
from bench import span

FLOOD_S = span(3.0)
READY = 'import time\nprint("ready")\nwhile True:\n    time.sleep(0.01)\n'
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    'print("ready")\n'
    "while True:\n    time.sleep(0.01)\n"
)
FLOOD = 'i = 0\nwhile True:\n    print("flood line", i)\n    i += 1\n'


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def wait_line(events: list[dict[str, Any]], run_id: str, text: str, timeout_s: float = 60.0) -> None:
    """Until the run prints ``text``; a run that ends first or never prints it fails the benchmark."""
    deadline = time.monotonic() + timeout_s
    while not any(e.get("run") == run_id and e.get("text") == text for e in events):
        ended = [e for e in events if e.get("type") == "run_ended" and e["run"]["id"] == run_id]
        if ended or time.monotonic() > deadline:
            output = [e.get("text") for e in events if e.get("run") == run_id]
            raise SystemExit(
                f"the run never printed {text!r}: {ended[-1]['run'] if ended else 'no end'}; {output}"
            )
        await asyncio.sleep(0.005)


async def ours(root: Path) -> float:
    events: list[dict[str, Any]] = []
    manager = RunManager(root, RlimitLauncher(), lambda r, n: {}, events.append)
    for label, src in (("plain loop", READY), ("ignores INT+TERM", STUBBORN)):
        t0 = time.perf_counter()
        info = await manager.start("bench", src)
        await wait_line(events, info.id, "ready")
        t1 = time.perf_counter()
        await manager.stop(info.id)
        t2 = time.perf_counter()
        print(f"{label:18s} start to first line {1000 * (t1 - t0):6.0f} ms, stop {1000 * (t2 - t1):6.0f} ms")

    info = await manager.start("flood", FLOOD)
    c0, t0 = cpu_s(), time.perf_counter()
    await asyncio.sleep(FLOOD_S)
    c1, t1 = cpu_s(), time.perf_counter()
    ended = await manager.stop(info.id)
    shown = sum(1 for e in events if e.get("run") == info.id and e["type"] == "run_output")
    load = (c1 - c0) / (t1 - t0)
    print(
        f"flood, ours:  service CPU {100 * load:5.1f} %, lines shown {shown}, dropped {ended.dropped_lines}"
    )
    return load


async def peer(root: Path) -> float:
    script = root / "flood.py"
    script.write_text(FLOOD)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-u", str(script), stdout=subprocess.PIPE, start_new_session=True
    )
    assert proc.stdout is not None
    events: list[dict[str, Any]] = []
    forwarded = 0
    c0, t0 = cpu_s(), time.perf_counter()
    deadline = t0 + FLOOD_S
    while time.perf_counter() < deadline:
        line = await proc.stdout.readline()
        events.append({"type": "run_output", "text": line.decode()})
        forwarded += 1
        if len(events) > 1000:
            events.clear()  # a bounded console, as a real peer would keep
    c1, t1 = cpu_s(), time.perf_counter()
    proc.kill()
    await proc.wait()
    load = (c1 - c0) / (t1 - t0)
    print(f"flood, peer:  service CPU {100 * load:5.1f} %, lines forwarded {forwarded}")
    return load


def main() -> None:
    top = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    top.chmod(0o711)
    try:
        mine = asyncio.run(ours(top / "runs"))
        other = asyncio.run(peer(top))
        print(f"flood CPU ratio ours/peer: {mine / other:.2f}")
    finally:
        shutil.rmtree(top)


if __name__ == "__main__":
    main()
