"""How the daemon's cost grows with channels, scripts and RTP listeners, beside ffmpeg's RTP sender.

    .venv/bin/python -m bench scaling

Each row runs the daemon's hot path (``bench/_hotpath.py``: simulator,
hand-off, bus, script sessions over the real WebSocket to real script
processes, RTP streams to real UDP sockets drained by other processes) in a
process of its own for a fixed number of 256-frame blocks at 48 kHz, as fast
as every consumer takes them.  Printed per row:

- CPU: this process's CPU seconds per audio-second, as % of one core (what
  it would use at real time, without the idle loop's wake-ups);
- peak RSS (VmHWM) of the process;
- hand-off to last consumer, p50 / p99: from the block's hand-off by the
  capture side until every subscription (each script's, the RTP sender's)
  has taken it and written it out;
- loss: blocks dropped for any consumer and datagrams the kernel refused.

ffmpeg's RTP sender is measured in the same run on the same audio (a WAV of
the same channel count, ``-re``, 1472-byte datagrams, one stream to a socket
drained by another process, as ours), as whole process CPU per audio-second
(5 s run minus 1 s run, so start-up cancels).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from bench import SMOKE, count, span
from bench._hotpath import FRAMES, RATE, UDP_DRAIN, HotPath, with_hot_path

CHANNELS = (2, 8, 48, 64)
FANOUT = ((0, 1), (1, 1), (4, 4), (16, 16))
# Smoke mode: the smallest and the largest row, briefly (every path, no figures).
ROWS = (
    [(CHANNELS[0], *FANOUT[0]), (CHANNELS[-1], *FANOUT[-1])]
    if SMOKE
    else [(channels, *fanout) for channels in CHANNELS for fanout in FANOUT]
)
BLOCKS = count(600, smoke=20)
WARMUP = count(40, smoke=5)
FFMPEG_SECONDS = (span(5.0, smoke=0.5), span(1.0, smoke=0.2))
BLOCKS_PER_S = RATE / FRAMES


def _row(channels: int, scripts: int, listeners: int) -> dict[str, float]:
    result: dict[str, float] = {}

    async def work(hot: HotPath) -> None:
        await hot.run(WARMUP)
        times = []
        cpu = time.process_time()
        for _ in range(BLOCKS):
            start = time.perf_counter()
            await hot.run(1)
            times.append(time.perf_counter() - start)
        cpu = time.process_time() - cpu
        times.sort()
        streams = hot.service.streams
        result.update(
            cpu_percent=100 * cpu / BLOCKS * BLOCKS_PER_S,
            p50_ms=1000 * times[len(times) // 2],
            p99_ms=1000 * times[int(len(times) * 0.99)],
            lost_blocks=sum(s.dropped for s in hot.service.bus.subscriptions) + hot.handoff.overruns,
            lost_datagrams=streams.send_drops if streams is not None else 0,
        )

    asyncio.run(with_hot_path(work, scripts=scripts, listeners=listeners, channels=channels))
    result["rss_mb"] = _peak_rss_mb()
    return result


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ffmpeg_cpu_per_audio_s(channels: int, tmp: Path) -> float:
    wav = tmp / f"in{channels}.wav"
    data = np.random.default_rng(channels).integers(-8000, 8000, (RATE * 6, channels)).astype("<i2")
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(data.tobytes())
    # A reader on the port, as our streams have: delivering to it is part of the sender's cost.
    drain = subprocess.Popen([sys.executable, "-c", UDP_DRAIN], stdout=subprocess.PIPE)
    assert drain.stdout is not None
    port = int(drain.stdout.readline())

    def cpu(seconds: float) -> float:
        cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-t", str(seconds), "-i", str(wav),
               "-c:a", "pcm_s16be", "-f", "rtp", f"rtp://127.0.0.1:{port}?pkt_size=1472"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
        return float(usage.ru_utime + usage.ru_stime)

    long, short = FFMPEG_SECONDS
    try:
        return 100 * (cpu(long) - cpu(short)) / (long - short)
    finally:
        drain.kill()
        drain.wait()


def main() -> None:
    print(f"256-frame buffers at {RATE} Hz ({BLOCKS} blocks a row); CPU as % of one core at real time")
    print("| channels | scripts | listeners | CPU % | peak RSS MB | to last consumer p50 / p99 ms | loss |")
    print("|---|---|---|---|---|---|---|")
    for channels, scripts, listeners in ROWS:
        out = subprocess.run(
            [sys.executable, "-m", "bench.scaling", "--row", str(channels), str(scripts), str(listeners)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        loss = f"{r['lost_blocks']:.0f} blocks, {r['lost_datagrams']:.0f} datagrams"
        print(
            f"| {channels} | {scripts} | {listeners} | {r['cpu_percent']:.1f} | {r['rss_mb']:.0f} "
            f"| {r['p50_ms']:.2f} / {r['p99_ms']:.2f} | {loss} |",
            flush=True,
        )
    with tempfile.TemporaryDirectory() as tmp:
        for channels in sorted({row[0] for row in ROWS}):
            ffmpeg = _ffmpeg_cpu_per_audio_s(channels, Path(tmp))
            print(
                f"ffmpeg RTP sender, {channels} channels, one stream: {ffmpeg:.1f} % of one core", flush=True
            )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--row":
        print(json.dumps(_row(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
    else:
        main()
