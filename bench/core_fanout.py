"""Core fan-out: 48 channels x 48 kHz, 256-frame buffers, 4 local scripts receiving every block.

Prints blocks lost, the daemon's CPU (% of one core), capture-to-callback latency
p50/p99 and the daemon's peak resident memory; the peer is the same daemon with
no script attached, measured in the same run, so the ratio is the cost of fan-out.

    .venv/bin/python -m bench core_fanout
    .venv/bin/python -m bench.core_fanout 16 10     (16 scripts, 10 s each)

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

from bench import span
from tests import wsclient
from tests.server import ApplianceProcess

SCRIPTS = 4
SECONDS = span(20.0, smoke=1.0)
PRESET = "pyramic"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

SCRIPT = """
import json, sys, time
import browserinterface

latencies = []
gaps = 0
reported = 0
last = None
start = None

behind = 0

def on_behind(lag_ms, dropped):
    global behind
    behind += dropped

def handle(buffer, info):
    global start, gaps, last, reported
    now = time.time()
    latencies.append(now - info.time)
    reported += info.lost  # what the device told this script it lost
    if last is not None and info.seq > last + 1:
        gaps += info.seq - last - 1
    last = info.seq
    if start is None:
        start = now
    if now - start > {seconds}:
        result = {{"latencies": latencies, "blocks": len(latencies), "lost": gaps, "reported": reported,
                   "behind": behind}}
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


def main() -> None:
    global SCRIPTS, SECONDS
    if len(sys.argv) == 3 and sys.argv[1].isdigit():
        SCRIPTS, SECONDS = int(sys.argv[1]), float(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp:
        server = ApplianceProcess(Path(tmp) / "data", f"sim:{PRESET}").start()
        try:
            token = server.token("bench")
            _configure(server, token)
            time.sleep(2)  # let the reopened capture settle
            idle = _idle_cpu(server, 5)
            env = {**os.environ, "BI_DEVICE": server.device, "BI_TOKEN": token}
            script = Path(tmp) / "receiver.py"
            script.write_text(SCRIPT.format(seconds=SECONDS))
            assert server.proc is not None
            before, t0 = _cpu_seconds(server.proc.pid), time.monotonic()
            procs = [
                subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
                for _ in range(SCRIPTS)
            ]
            results = [
                json.loads(p.communicate(timeout=SECONDS + 60)[0].strip().splitlines()[-1]) for p in procs
            ]
            busy = 100 * (_cpu_seconds(server.proc.pid) - before) / (time.monotonic() - t0)
            peak = _peak_rss_mb(server.proc.pid)
            overruns, device_lost = _device_losses(server)
        finally:
            server.stop()
    lat = sorted(x * 1000 for r in results for x in r["latencies"])
    expected = SECONDS * 48000 / 256
    blocks = [r["blocks"] for r in results]
    lost = sum(r["lost"] for r in results)
    behind = sum(r["behind"] for r in results)
    print(f"scripts: {SCRIPTS}, {PRESET} 48 ch x 48000 Hz, 256-frame buffers, {SECONDS:.0f} s each")
    reported = sum(r["reported"] for r in results)
    print(
        f"blocks received per script: {blocks} (expected about {expected:.0f}); "
        f"lost: {lost} by sequence gaps, {reported} as the device reported to the scripts"
    )
    print(f"      {behind} dropped by the scripts' backlog; the device reports {overruns} overruns")
    print(f"      and {device_lost} blocks lost for its clients")
    ratio = busy / max(idle, 0.1)
    print(f"daemon CPU: {busy:.1f} % of one core with {SCRIPTS} scripts; {idle:.1f} % idle; x{ratio:.2f}")
    p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99)]
    print(f"capture-to-callback latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(f"daemon peak RSS: {peak:.1f} MB")


if __name__ == "__main__":
    main()
