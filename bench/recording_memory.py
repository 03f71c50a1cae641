"""Recording to disk: 10 minutes of 8 channels at 48 kHz, faster than real time, memory flat?

The real bus, recorder, WAV writer and card (a temporary folder on the data
file system) in one process; a block source plays the capture thread at as
many times real time as the writer keeps up with.  Prints the process's
resident memory at every simulated minute, next to its size before the
recording started (the peer, same process), the file size, and the speed.
Memory is flat when the last minute's figure is the first minute's.

    .venv/bin/python -m bench recording_memory          # 10 minutes
    BENCH_SMOKE=1 .venv/bin/python -m bench recording_memory   # 1 minute
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from appliance.capture.block import Block
from appliance.capture.bus import Bus
from appliance.capture.config import AudioConfig
from appliance.recordings.recorder import Recorder
from appliance.recordings.store import RecordingStore
from appliance.recordings.wavfile import read_info

RATE = 48000
CHANNELS = 8
FRAMES = 1024
MINUTES = 1 if os.environ.get("BENCH_SMOKE") else 10


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def record(folder: Path) -> None:
    bus = Bus()
    store = RecordingStore(folder)
    recorder = Recorder(bus, store, AudioConfig(rate=RATE, channels=CHANNELS, buffer_frames=FRAMES))
    rng = np.random.default_rng(1)
    blocks = [rng.integers(-3000, 3000, (FRAMES, CHANNELS), dtype=np.int16) for _ in range(16)]
    for data in blocks:
        data.flags.writeable = False
    baseline = rss_mib()
    await recorder.start("bench.wav", "wav")
    sub = bus.subscriptions[-1]
    per_minute = RATE * 60 // FRAMES
    t0 = time.monotonic()
    print(f"{'minute':>6} {'RSS MiB':>8} {'vs before':>9} {'file MiB':>9} {'x real time':>11}")
    print(f"{0:>6} {baseline:>8.1f} {0.0:>+9.1f} {0.0:>9.1f} {'':>11}")
    for n in range(per_minute * MINUTES):
        bus.publish(Block(n, time.time(), blocks[n % len(blocks)]))
        # Play the capture thread no faster than the writer drains: the bench
        # measures memory at full speed, not the loss policy of the bus.
        while sub.pending() > 32:
            await asyncio.sleep(0.001)
        if (n + 1) % per_minute == 0:
            minute = (n + 1) // per_minute
            elapsed = time.monotonic() - t0
            size = (folder / "recordings" / "bench.wav").stat().st_size / (1 << 20)
            rss = rss_mib()
            print(
                f"{minute:>6} {rss:>8.1f} {rss - baseline:>+9.1f} {size:>9.1f} {minute * 60 / elapsed:>11.1f}"
            )
    done = await recorder.stop("bench.wav")
    info = read_info(folder / "recordings" / "bench.wav")
    print(
        f"recorded {info.seconds:.0f} s, {done['lost_blocks']} blocks lost, "
        f"{info.data_bytes / (1 << 20):.0f} MiB in {time.monotonic() - t0:.1f} s"
    )


def main() -> None:
    base = os.environ.get("BENCH_DIR") or None
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        asyncio.run(record(Path(tmp)))


if __name__ == "__main__":
    main()
