"""Core fan-out: 48 channels x 48 kHz, 256-frame buffers, 4 local scripts receiving every block.

For each path a script on the device can take its audio by (the shared-memory
ring, and binary frames over the WebSocket, ``BI_RING=0``), in the same run,
each with a daemon of its own: blocks lost, the daemon's CPU (% of one core),
the scripts' CPU per block, capture-to-callback latency p50/p99 (after each
script's first half second, whose catching up is told apart) and the
daemon's peak resident memory; the peer is the same daemon with no script
attached, so the ratio is the cost of fan-out.

    .venv/bin/python -m bench core_fanout
    .venv/bin/python -m bench.core_fanout 16 10     (16 scripts, 10 s each, both paths)
    .venv/bin/python -m bench.core_fanout 16 10 ring

Loss counts every way a block can be lost for a script: sequence gaps it
saw, blocks its own backlog dropped (``register_when_behind``), and the
device's own account (``overruns`` and ``lost_blocks`` of its status, read
over the admin's WebSocket at the end).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import span
from tests import wsclient
from tests.server import ApplianceProcess

SCRIPTS = 4
#: The ways a script on the device can take its audio, measured in this order.
PATHS = ("websocket", "ring")
SECONDS = span(20.0, smoke=1.0)
#: A script's first callbacks catch up on the audio captured since it connected (its start-up,
#: 100-150 ms): latency is counted after this many seconds, and the start-up's reported apart.
WARMUP_S = 0.5
PRESET = "pyramic"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

SCRIPT = """
import json, sys, time
import browserinterface

latencies = []
cpu_first = None
gaps = 0
reported = 0
last = None
start = None
warmup_blocks = 0

behind = 0

def on_behind(lag_ms, dropped):
    global behind
    behind += dropped

def handle(buffer, info):
    global start, gaps, last, reported, cpu_first, warmup_blocks
    now = time.time()
    if cpu_first is None:
        cpu_first = time.process_time()
    latencies.append(now - info.time)
    reported += info.lost  # what the device told this script it lost
    if last is not None and info.seq > last + 1:
        gaps += info.seq - last - 1
    last = info.seq
    if start is None:
        start = now
    if now - start <= {warmup}:
        warmup_blocks = len(latencies)
    if now - start > {seconds}:
        result = {{"latencies": latencies, "warmup_blocks": warmup_blocks, "blocks": len(latencies),
                   "lost": gaps, "reported": reported,
                   "behind": behind,
                   "cpu_per_block": (time.process_time() - cpu_first) / max(1, len(latencies) - 1),
                   "ring": browserinterface._device._dispatcher._ring is not None}}
        print(json.dumps(result), flush=True)
        browserinterface.stop()

browserinterface.register_handle_data(handle, info=True)
browserinterface.register_when_behind(on_behind)
browserinterface.start()
browserinterface.loop_callbacks()
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _configure(server: ApplianceProcess, token: str) -> None:
    code = (
        "import browserinterface as b\nb.start()\n"
        "b.change_config(rate=48000, channels=48, buffer_frames=256)\nb.stop()\n"
    )
    env = {**os.environ, "BI_DEVICE": server.device, "BI_TOKEN": token}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=30)


def _idle_cpu(server: ApplianceProcess, seconds: float) -> float:
    assert server.proc is not None
    before, t0 = _cpu_seconds(server.proc.pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (_cpu_seconds(server.proc.pid) - before) / (time.monotonic() - t0)


def _device_losses(server: ApplianceProcess) -> tuple[int, int]:
    """(overruns, lost_blocks) as the device reports them in its status."""

    async def read() -> tuple[int, int]:
        ws, _ = await wsclient.browser(server)
        stats = await wsclient.receive(ws, "stats")
        await wsclient.shut(ws)
        return int(stats["overruns"]), int(stats["lost_blocks"])

    return asyncio.run(read())


def _run(path: str, env: dict[str, str], tmp: Path) -> dict[str, Any]:
    """One daemon, SCRIPTS scripts on one path, SECONDS long: the figures of that path."""
    server = ApplianceProcess(tmp / f"data-{path}", f"sim:{PRESET}").start()
    try:
        token = server.token("bench")
        _configure(server, token)
        time.sleep(2)  # let the reopened capture settle
        idle = _idle_cpu(server, span(3.0, smoke=0.5))
        env = {
            **env,
            "BI_DEVICE": server.device,
            "BI_TOKEN": token,
            "BI_RING": "1" if path == "ring" else "0",
        }
        script = tmp / "receiver.py"
        script.write_text(SCRIPT.format(seconds=SECONDS, warmup=WARMUP_S))
        assert server.proc is not None
        before, t0 = _cpu_seconds(server.proc.pid), time.monotonic()
        procs = [
            subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
            for _ in range(SCRIPTS)
        ]
        results = [json.loads(p.communicate(timeout=SECONDS + 60)[0].strip().splitlines()[-1]) for p in procs]
        busy = 100 * (_cpu_seconds(server.proc.pid) - before) / (time.monotonic() - t0)
        peak = _peak_rss_mb(server.proc.pid)
        overruns, device_lost = _device_losses(server)
    finally:
        server.stop()
    on_ring = sum(r["ring"] for r in results)
    lat = sorted(x * 1000 for r in results for x in r["latencies"][r["warmup_blocks"] :])
    startup = max(x * 1000 for r in results for x in r["latencies"][: r["warmup_blocks"]] or [0.0])
    return {
        "path": path, "on_ring": on_ring, "results": results, "busy": busy, "idle": idle, "peak": peak,
        "overruns": overruns, "device_lost": device_lost, "lat": lat, "startup": startup,
    }  # fmt: skip


def _report(run: dict[str, Any]) -> None:
    results, lat = run["results"], run["lat"]
    expected = SECONDS * 48000 / 256
    blocks = [r["blocks"] for r in results]
    print(f"-- path: {run['path']} ({run['on_ring']} of {SCRIPTS} scripts read the ring)")
    print(
        f"blocks received per script: {min(blocks)}-{max(blocks)} (expected about {expected:.0f}); "
        f"lost: {sum(r['lost'] for r in results)} by sequence gaps, "
        f"{sum(r['reported'] for r in results)} as the scripts were told"
    )
    print(f"      {sum(r['behind'] for r in results)} dropped by the scripts' backlog; the device reports")
    print(f"      {run['overruns']} overruns and {run['device_lost']} blocks lost for its clients")
    ratio = run["busy"] / max(run["idle"], 0.1)
    print(
        f"daemon CPU: {run['busy']:.1f} % of one core with {SCRIPTS} scripts; {run['idle']:.1f} % idle; "
        f"x{ratio:.2f}"
    )
    cpu = sorted(1000 * r["cpu_per_block"] for r in results)
    print(f"script CPU per block: median {cpu[len(cpu) // 2]:.3f} ms (min {cpu[0]:.3f}, max {cpu[-1]:.3f})")
    p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
    print(
        f"capture-to-callback latency after each script's first {WARMUP_S} s: "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms; in that first {WARMUP_S} s at most "
        f"{run['startup']:.1f} ms (the audio since it connected, caught up)"
    )
    print(f"daemon peak RSS: {run['peak']:.1f} MB")


def main() -> None:
    global SCRIPTS, SECONDS
    paths: tuple[str, ...] = PATHS
    if len(sys.argv) >= 3 and sys.argv[1].isdigit():
        SCRIPTS, SECONDS = int(sys.argv[1]), float(sys.argv[2])
        paths = tuple(sys.argv[3:]) or PATHS
    print(f"scripts: {SCRIPTS}, {PRESET} 48 ch x 48000 Hz, 256-frame buffers, {SECONDS:.0f} s each")
    print("load average before:", Path("/proc/loadavg").read_text().strip())
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            _report(_run(path, dict(os.environ), Path(tmp)))
    print("load average after:", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
