"""Waking the ring's readers: one futex wake for all, against one eventfd write per reader.

The device wakes every script that reads the shared-memory ring after each
block (``browserinterface.ring``).  This measures what that costs the
device's thread per block (its own CPU time around the wake-up, in µs),
with 4 and 16 real reader processes asleep waiting, 187.5 wake-ups a second
(48 kHz, 256-frame buffers), and how many wake-ups the readers saw.

    .venv/bin/python -m bench ring_wake
"""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import count
from browserinterface import ring as R

BLOCKS = count(1000, smoke=20)
PERIOD_S = 256 / 48000
READERS = (4, 16)

FUTEX_READER = """
import mmap, os, struct, sys
from browserinterface import ring as R
import numpy as np
fd = int(sys.argv[1])
m = mmap.mmap(fd, 64, mmap.MAP_SHARED, mmap.PROT_READ)
address = np.frombuffer(m, dtype=np.uint8).ctypes.data
seen = 0
word = struct.unpack_from("<I", m, 0)[0]
print("ready", flush=True)
while True:
    R.futex_wait(address, word, 1.0)
    now = struct.unpack_from("<I", m, 0)[0]
    if now != word:
        seen += 1
        word = now
    if struct.unpack_from("<I", m, 4)[0]:
        break
print(seen)
"""

EVENTFD_READER = """
import os, sys
from browserinterface import ring as R  # the same start-up as the futex reader
fd = int(sys.argv[1])
seen = 0
print("ready", flush=True)
while os.eventfd_read(fd) < 2**40:
    seen += 1
print(seen)
"""


def _ready(procs: list[subprocess.Popen[bytes]]) -> None:
    """Wait until every reader is asleep (or about to be) on its wake-up."""
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
    time.sleep(0.5)


def _futex(readers: int) -> tuple[float, list[int]]:
    fd = os.memfd_create("bench-wake")
    os.ftruncate(fd, 64)
    shared = mmap.mmap(fd, 64)
    address = np.frombuffer(shared, dtype=np.uint8).ctypes.data
    words = np.frombuffer(shared, dtype=np.uint32, count=2)
    procs = [
        subprocess.Popen([sys.executable, "-c", FUTEX_READER, str(fd)], pass_fds=[fd], stdout=subprocess.PIPE)
        for _ in range(readers)
    ]
    _ready(procs)
    spent = 0.0
    for _ in range(BLOCKS):
        t0 = time.thread_time()
        words[0] += 1
        R.futex_wake(address)
        spent += time.thread_time() - t0
        time.sleep(PERIOD_S)
    words[1] = 1
    R.futex_wake(address)
    seen = [int(p.communicate(timeout=30)[0].split()[-1]) for p in procs]
    os.close(fd)
    return 1e6 * spent / BLOCKS, seen


def _eventfd(readers: int) -> tuple[float, list[int]]:
    fds = [os.eventfd(0) for _ in range(readers)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", EVENTFD_READER, str(fd)], pass_fds=[fd], stdout=subprocess.PIPE
        )
        for fd in fds
    ]
    _ready(procs)
    spent = 0.0
    for _ in range(BLOCKS):
        t0 = time.thread_time()
        for fd in fds:
            os.eventfd_write(fd, 1)
        spent += time.thread_time() - t0
        time.sleep(PERIOD_S)
    for fd in fds:
        os.eventfd_write(fd, 2**41)
    seen = [int(p.communicate(timeout=30)[0].split()[-1]) for p in procs]
    for fd in fds:
        os.close(fd)
    return 1e6 * spent / BLOCKS, seen


def main() -> None:
    if not R.available():
        print("the ring is not available on this machine")
        return
    print(f"{BLOCKS} wake-ups every {PERIOD_S * 1000:.2f} ms; the device's CPU per block for the wake-up")
    print("load average before:", Path("/proc/loadavg").read_text().strip())
    for readers in READERS:
        futex_us, futex_seen = _futex(readers)
        event_us, event_seen = _eventfd(readers)
        print(
            f"{readers:2d} readers: one futex wake {futex_us:.1f} µs (readers woke {min(futex_seen)}-"
            f"{max(futex_seen)} times); an eventfd each {event_us:.1f} µs ({min(event_seen)}-"
            f"{max(event_seen)}); eventfd / futex x{event_us / max(futex_us, 1e-3):.2f}"
        )


if __name__ == "__main__":
    main()
