"""The idle daemon's CPU at 48 channels x 48 kHz, 256-frame buffers: no client at all.

    .venv/bin/python -m bench idle_daemon [SECONDS]

Two real ``appliance serve`` processes, one after the other, each with the
configuration saved beforehand so nothing reconfigures while it is measured:

- ``sim:pyramic``: the simulator renders the 48-channel Pyramic;
- ``alsa:idle48``: a real ALSA device, the ``file`` plugin over ``null``
  reading a raw file of 48 channels (it has no clock, so the daemon paces it
  to real time, as a real card's clock would), read by pyalsaaudio.

CPU is the process's user + system time over the window (from
``/proc/PID/stat``), as a % of one core.  Beside them, in the same run, a
floor: a Python thread waking every 256 frames and doing nothing else.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from appliance.capture.config import AudioConfig, save_config
from bench import span
from bench._alsa import file_device
from bench._proc import cpu_seconds
from tests.server import ApplianceProcess

RATE, CHANNELS, FRAMES = 48000, 48, 256
SECONDS = span(10.0, 1.0)
SETTLE_S = span(2.0, 0.5)


def _idle_percent(data_dir: Path, source: str) -> float:
    data_dir.mkdir(parents=True)
    save_config(data_dir, AudioConfig(RATE, CHANNELS, FRAMES, 80))
    server = ApplianceProcess(data_dir, source).start()
    try:
        assert server.proc is not None
        time.sleep(SETTLE_S)  # start-up is not idle
        before, t0 = cpu_seconds(server.proc.pid), time.monotonic()
        time.sleep(SECONDS)  # the measurement window itself
        return 100 * (cpu_seconds(server.proc.pid) - before) / (time.monotonic() - t0)
    finally:
        server.stop()


def _floor_percent() -> float:
    """A thread that wakes every buffer period and does nothing: the least any capture costs."""
    period = FRAMES / RATE
    stop = threading.Event()

    def tick() -> None:
        k, start = 0, time.monotonic()
        while not stop.is_set():
            k += 1
            time.sleep(max(0.0, start + k * period - time.monotonic()))

    thread = threading.Thread(target=tick)
    start_cpu, start = time.process_time(), time.monotonic()
    thread.start()
    time.sleep(SECONDS)
    stop.set()
    thread.join()
    return 100 * (time.process_time() - start_cpu) / (time.monotonic() - start)


def main() -> None:
    global SECONDS
    # `python -m bench idle_daemon 20` and `python -m bench.idle_daemon 20` both end with the span.
    if len(sys.argv) >= 2 and sys.argv[-1].replace(".", "", 1).isdigit():
        SECONDS = float(sys.argv[-1])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        file_device(root, "idle48", CHANNELS, RATE, 2.0)
        sim = _idle_percent(root / "sim", "sim:pyramic")
        dev = _idle_percent(root / "alsa", "alsa:idle48")
    floor = _floor_percent()
    load = os.getloadavg()
    print(f"idle daemon, {CHANNELS} ch x {RATE} Hz, {FRAMES}-frame buffers, no client, {SECONDS:.0f} s each")
    print(f"  sim:pyramic:                      {sim:5.1f} % of one core")
    print(f"  alsa (file plugin, 48 ch, paced): {dev:5.1f} % of one core")
    print(f"  floor, a thread waking every buffer: {floor:5.1f} %")
    print(f"  load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
