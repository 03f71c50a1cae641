"""Instructions per block on the daemon's hot path, counted by callgrind: a figure above the noise.

    .venv/bin/python -m bench callgrind_hotpath      (needs valgrind: apt-get install valgrind)

48 channels x 48 kHz, 256-frame buffers (187.5 blocks per audio-second), two
rows (``bench/_hotpath.py``): *idle*, the simulator rendering each block, the
capture hand-off and the bus with no consumer (the hand-off batching as the
service does then); and *4 scripts + 1 listener*, the same plus four script
sessions over the real Tornado WebSocket to four real script processes and
one RTP listener.  Callgrind counts user-space instructions only: the
kernel's share of a wake-up (futex, epoll, the self-pipe), which batching
saves, is not in it; ``bench/idle_daemon.py`` measures that.  Only the daemon's process runs under
``valgrind --tool=callgrind``; instrumentation is switched on after start-up
and the counters are dumped around two runs of different length, so
start-up, connection set-up and the dump requests themselves cancel out:
instructions per block = (I(long) - I(short)) / (long - short).

Beside it, counted the same way in the same process: a pure-Python loop
(1000 additions) and a numpy loop (the mean square of each channel of one
256 x 48 block), so a change of the hot path shows as a ratio that does not
depend on this machine's load.  The same hot path is also timed natively
(CPU seconds of this process), for a % of one core at real time.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._hotpath import CHANNELS, FRAMES, RATE, HotPath, with_hot_path

SHORT, LONG = 40, 160
WARMUP = 40
REF_SHORT, REF_LONG = 200, 800
NATIVE_BLOCKS = 1500
BLOCKS_PER_S = RATE / FRAMES


def _control(*args: str) -> None:
    # Valgrind reads the request only while this process runs code, not while
    # it waits in a system call: spin (a few thousand instructions a turn,
    # the same in every segment) until the request is answered.
    proc = subprocess.Popen(
        ["callgrind_control", *args, str(os.getpid())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while proc.poll() is None:
        pass


def python_reference() -> int:
    acc = 0
    for x in range(1000):
        acc += x
    return acc


_BLOCK = np.random.default_rng(1).integers(-3000, 3000, size=(FRAMES, CHANNELS), dtype=np.int16)


def numpy_reference() -> float:
    return float(np.square(_BLOCK.astype(np.float32)).mean(axis=0).sum())


ROWS = ((0, 0), (4, 1))
"""(scripts, RTP listeners) of each row."""


async def _measured(hot: HotPath) -> None:
    await hot.run(WARMUP)
    _control("-i", "on")
    _control("-d")  # zero: what came before is start-up
    await hot.run(SHORT)
    _control("-d")
    await hot.run(LONG)
    _control("-d")
    for ref in (python_reference, numpy_reference):
        for count in (REF_SHORT, REF_LONG):
            for _ in range(count):
                ref()
            _control("-d")
    _control("-i", "off")


async def _native(hot: HotPath) -> None:
    await hot.run(WARMUP)
    start = time.process_time()
    await hot.run(NATIVE_BLOCKS)
    per_block = (time.process_time() - start) / NATIVE_BLOCKS
    print(f"NATIVE {per_block}", flush=True)


def _child(mode: str, scripts: int, listeners: int) -> None:
    work = _measured if mode == "callgrind" else _native
    asyncio.run(with_hot_path(work, scripts=scripts, listeners=listeners))


def _totals(out: Path) -> list[int]:
    """Ir of each dump, in order (the file written at exit is the last and is dropped)."""
    counts = []
    for part in sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.suffix[1:])):
        match = re.search(r"^(?:summary|totals): (\d+)", part.read_text(errors="replace"), re.M)
        counts.append(int(match.group(1)) if match else 0)
    return counts


def _row(scripts: int, listeners: int) -> tuple[float, float, float, float, float]:
    """(instructions per block, pure-Python ref, numpy ref, native s per block, s under valgrind)."""
    args = ["-m", "bench.callgrind_hotpath", "--child"]
    rest = [str(scripts), str(listeners)]
    native = subprocess.run(
        [sys.executable, *args, "native", *rest], check=True, capture_output=True, text=True
    )
    per_block_s = float(
        next(line for line in native.stdout.splitlines() if line.startswith("NATIVE")).split()[1]
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        started = time.monotonic()
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
             sys.executable, *args, "callgrind", *rest],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.monotonic() - started
        counts = _totals(out)
    # dumps: zero, short, long, py short, py long, np short, np long
    _, short, long_, py_s, py_l, np_s, np_l = counts[:7]
    per_block = (long_ - short) / (LONG - SHORT)
    py = (py_l - py_s) / (REF_LONG - REF_SHORT)
    npy = (np_l - np_s) / (REF_LONG - REF_SHORT)
    return per_block, py, npy, per_block_s, wall


def main() -> None:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind); skipped")
        return
    print(
        f"hot path: {CHANNELS} ch x {RATE} Hz, {FRAMES}-frame buffers; callgrind counts {LONG - SHORT} blocks"
    )
    for scripts, listeners in ROWS:
        per_block, py, npy, per_block_s, wall = _row(scripts, listeners)
        name = (
            "idle (no consumer)" if scripts == listeners == 0 else f"{scripts} scripts + {listeners} listener"
        )
        print(f"{name} ({wall:.0f} s under valgrind):")
        print(f"  instructions per block:        {per_block / 1e6:10.3f} M")
        print(f"  instructions per audio-second: {per_block * BLOCKS_PER_S / 1e6:10.1f} M")
        print(f"  pure-Python (1000 additions): {py / 1e3:8.1f} k; a block is {per_block / py:.2f} of them")
        print(
            f"  numpy (mean square of 256x48): {npy / 1e3:8.1f} k; a block is {per_block / npy:.2f} of them"
        )
        core = 100 * per_block_s * BLOCKS_PER_S
        print(f"  native: {per_block_s * 1e3:.3f} ms CPU per block = {core:.1f} % of one core")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
