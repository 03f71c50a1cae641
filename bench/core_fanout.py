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
    .venv/bin/python -m bench.core_fanout 16 10 ring --listeners 16   (and 16 RTP listeners)
    .venv/bin/python -m bench.core_fanout 4 10 --alsa   (a real ALSA device, not the simulator)

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

from appliance.runs.launchbase import RunLimits
from bench import span
from bench._alsa import file_device
from bench._proc import cpu_seconds, peak_rss_mb, reset_peak_rss
from tests import wsclient
from tests.browser_login import login
from tests.server import ApplianceProcess

SCRIPTS = 4
#: RTP listeners besides the scripts (``--listeners N``).
LISTENERS = 0
NICE = ("nice", "-n", str(RunLimits().nice))
#: The ways a script on the device can take its audio, measured in this order.
PATHS = ("websocket", "ring")
SECONDS = span(20.0, smoke=1.0)
#: A script's first callbacks catch up on the audio captured since it connected (its start-up,
#: 100-150 ms): latency is counted after this many seconds, and the start-up's reported apart.
WARMUP_S = 0.5
PRESET = "pyramic"
#: The capture source: the simulator's Pyramic, or (``--alsa``) a real ALSA device, the
#: ``file`` plugin over ``null`` reading 48 channels (paced to real time by the daemon, as
#: a card's clock would), which is what the device reads from an array, without the
#: simulator's rendering.
SOURCE = f"sim:{PRESET}"
ALSA_NAME = "fanout48"

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

# One RTP listener: a UDP socket with a large buffer, subscribed through rtai's client; it counts
# datagrams and RTP sequence gaps for {seconds} s after its first datagram and its warm-up.
LISTENER = """
import json, socket, sys, time
from browserinterface.device import DeviceAddress
from rtai.client import DeviceStream

host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 23)
sock.bind(("127.0.0.1", 0))
sock.settimeout(5)
received = gaps = early_gaps = 0
last = None
with DeviceStream(DeviceAddress(host, port), token, sock.getsockname()[1], name=sys.argv[4]):
    first = None
    while True:
        data = sock.recv(65536)
        now = time.monotonic()
        if first is None:
            first = now
        if now - first > {warmup} + {seconds}:
            break
        seq = int.from_bytes(data[2:4], "big")
        gap = 0 if last is None else (seq - last - 1) % 65536
        last = seq
        if now - first < {warmup}:
            early_gaps += gap
            continue
        gaps += gap
        received += 1
print(json.dumps({{"received": received, "gaps": gaps, "early_gaps": early_gaps}}), flush=True)
"""


def _configure(server: ApplianceProcess, token: str) -> None:
    code = (
        "import browserinterface as b\nb.start()\n"
        "b.change_config(rate=48000, channels=48, buffer_frames=256)\nb.stop()\n"
    )
    env = {**os.environ, "BI_DEVICE": server.device, "BI_TOKEN": token}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=30)


def _idle_cpu(server: ApplianceProcess, seconds: float) -> float:
    assert server.proc is not None
    before, t0 = cpu_seconds(server.proc.pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(server.proc.pid) - before) / (time.monotonic() - t0)


def _device_losses(server: ApplianceProcess, cookie: str) -> tuple[int, int]:
    """(overruns, lost_blocks) as the device reports them in its status, read as the signed-in admin."""

    async def read() -> tuple[int, int]:
        ws, _ = await wsclient.browser(server, cookie)
        stats = await wsclient.receive(ws, "stats")
        await wsclient.shut(ws)
        return int(stats["overruns"]), int(stats["lost_blocks"])

    return asyncio.run(read())


def _run(path: str, env: dict[str, str], tmp: Path) -> dict[str, Any]:
    """One daemon, SCRIPTS scripts on one path, SECONDS long: the figures of that path."""
    server = ApplianceProcess(tmp / f"data-{path}", SOURCE).start()
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
        listener = tmp / "listener.py"
        listener.write_text(LISTENER.format(seconds=SECONDS, warmup=WARMUP_S))
        # A token each: the device gives every owner a share of its streams.
        listen_args = [
            ["127.0.0.1", str(server.port), server.token(f"listener-{i}"), f"l{i}"] for i in range(LISTENERS)
        ]
        assert server.proc is not None
        # Signed in once, before the peak is counted: a sign-in's scrypt takes 16 MiB for a moment
        # by design (docs/security.md), which is not the cost of serving audio.
        cookie = login(server.port, server.data_dir)
        at_start = _device_losses(server, cookie)
        setup_peak = peak_rss_mb(server.proc.pid)
        reset_peak_rss(server.proc.pid)
        before, t0 = cpu_seconds(server.proc.pid), time.monotonic()
        # At the niceness the device gives its runs (RunLimits.nice), as a script started on the
        # device would be; the listeners stand for other machines, so they yield to the device too.
        listening = [
            subprocess.Popen(
                [*NICE, sys.executable, str(listener), *a], stdout=subprocess.PIPE, text=True, env=env
            )
            for a in listen_args
        ]
        procs = [
            subprocess.Popen([*NICE, sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
            for _ in range(SCRIPTS)
        ]
        results = [json.loads(p.communicate(timeout=SECONDS + 60)[0].strip().splitlines()[-1]) for p in procs]
        heard = [
            json.loads(p.communicate(timeout=SECONDS + 60)[0].strip().splitlines()[-1]) for p in listening
        ]
        busy = 100 * (cpu_seconds(server.proc.pid) - before) / (time.monotonic() - t0)
        peak = peak_rss_mb(server.proc.pid)
        overruns, device_lost = _device_losses(server, cookie)
    finally:
        server.stop()
    on_ring = sum(r["ring"] for r in results)
    lat = sorted(x * 1000 for r in results for x in r["latencies"][r["warmup_blocks"] :])
    startup = max(x * 1000 for r in results for x in r["latencies"][: r["warmup_blocks"]] or [0.0])
    return {
        "path": path, "on_ring": on_ring, "results": results, "busy": busy, "idle": idle, "peak": peak,
        "setup_peak": setup_peak,
        "overruns": overruns, "device_lost": device_lost, "lat": lat, "startup": startup, "heard": heard,
        "at_start": at_start,
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
    print(
        f"      {run['overruns']} overruns and {run['device_lost']} blocks lost for its clients "
        f"(before any consumer started: {run['at_start'][0]} and {run['at_start'][1]}; the counts "
        "cover the consumers' start and end too, outside their windows)"
    )
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
    print(
        f"daemon peak RSS while serving: {run['peak']:.1f} MB (before, through its start, the change "
        f"to 48 x 256 and one sign-in: {run['setup_peak']:.1f} MB)"
    )
    if run["heard"]:
        got = [h["received"] for h in run["heard"]]
        print(
            f"RTP listeners: {len(got)}, datagrams each in {SECONDS:.0f} s: {min(got)}-{max(got)}; "
            f"lost by sequence gaps: {sum(h['gaps'] for h in run['heard'])} "
            f"(in their first {WARMUP_S} s: {sum(h['early_gaps'] for h in run['heard'])})"
        )


def main() -> None:
    global SCRIPTS, SECONDS, LISTENERS, SOURCE
    paths: tuple[str, ...] = PATHS
    alsa = "--alsa" in sys.argv
    if alsa:
        sys.argv.remove("--alsa")
        SOURCE = f"alsa:{ALSA_NAME}"
    if "--listeners" in sys.argv:
        at = sys.argv.index("--listeners")
        LISTENERS = int(sys.argv[at + 1])
        del sys.argv[at : at + 2]
    if len(sys.argv) >= 3 and sys.argv[1].isdigit():
        SCRIPTS, SECONDS = int(sys.argv[1]), float(sys.argv[2])
        paths = tuple(sys.argv[3:]) or PATHS
    print(
        f"scripts: {SCRIPTS}, RTP listeners: {LISTENERS}, {SOURCE} 48 ch x 48000 Hz, 256-frame buffers, "
        f"{SECONDS:.0f} s each"
    )
    print("load average before:", Path("/proc/loadavg").read_text().strip())
    with tempfile.TemporaryDirectory() as tmp:
        if alsa:
            file_device(Path(tmp), ALSA_NAME, 48, 48000, SECONDS + 20)
        for path in paths:
            _report(_run(path, dict(os.environ), Path(tmp)))
    print("load average after:", Path("/proc/loadavg").read_text().strip())


if __name__ == "__main__":
    main()
