"""Lag told at once: a slow script hears within 1 s that it fell behind, and how far.

A real ``appliance serve`` and a real script whose handler is slower than the
audio.  The script keeps its own account of how far behind it is (from the
count of buffers it handled and its own clock), so the test does not trust
the very measurement it checks.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.capture.block import Block
from appliance.capture.bus import Bus
from appliance.capture.config import AudioConfig, save_config
from tests import wsclient
from tests.server import REPO, ApplianceProcess

RATE, FRAMES = 48000, 1024
BLOCK_S = FRAMES / RATE
BACKLOG_MS = 500.0
TOLD_WITHIN_S = 1.0
HANDLER_S = 2.5 * BLOCK_S

SCRIPT = f"""
import time
import browserinterface as bi

bi.inform_browser = True
handled = 0
first = None
crossed = None

def slow(buffer):
    global handled, first, crossed
    now = time.monotonic()
    if first is None:
        first = now
        print("first", now, flush=True)
    behind = (now - first) - handled * {BLOCK_S}
    if crossed is None and behind * 1000 > {BACKLOG_MS}:
        crossed = now
        print("crossed", now, handled, flush=True)
    handled += 1
    time.sleep({HANDLER_S})

def behind(lag_ms, dropped):
    print("behind", time.monotonic(), lag_ms, dropped, handled, flush=True)

bi.register_handle_data(slow)
bi.register_when_behind(behind)
bi.start()
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApplianceProcess]:
    data = tmp_path / "data"
    data.mkdir()
    save_config(data, AudioConfig(RATE, 2, FRAMES, 80))
    srv = ApplianceProcess(data, "sim:usb-stereo").start()
    try:
        yield srv
    finally:
        srv.stop()
        assert "Traceback" not in srv.log()


class Script:
    """The slow script in a subprocess, its stdout and stderr lines stamped as they arrive."""

    def __init__(self, server: ApplianceProcess) -> None:
        env = {**os.environ, "BI_DEVICE": server.device, "BI_TOKEN": server.token(), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, False), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, True), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object, is_err: bool) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._cond:
                if is_err:
                    self.err.append((time.monotonic(), line.rstrip()))
                else:
                    self.out.append(line.rstrip())
                self._cond.notify_all()

    def wait_line(self, prefix: str, timeout: float = 20.0) -> list[str]:
        with self._cond:
            found: list[str] = []

            def seen() -> bool:
                found[:] = [line for line in self.out if line.startswith(prefix)]
                return bool(found)

            assert self._cond.wait_for(seen, timeout), (
                f"no {prefix!r} line; stdout {self.out}, stderr {self.err}"
            )
            return found[0].split()[1:]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def test_a_slow_script_is_told_within_a_second_how_far_behind_it_is(server: ApplianceProcess) -> None:
    script = Script(server)
    try:
        crossed, handled_then = (float(w) for w in script.wait_line("crossed")[:2])
        behind_at, lag_ms, dropped, handled_told = (float(w) for w in script.wait_line("behind")[:4])
        page_lag = asyncio.run(lag_on_the_page(server))
    finally:
        script.stop()
    print(f"told {behind_at - crossed:.3f} s after falling behind, lag {lag_ms} ms, page {page_lag} ms")
    # Counted in the handler's own work, not the wall clock (a loaded machine stalls
    # both sides): the buffers it handled between falling behind and being told, each
    # HANDLER_S of sleep, come to less than a second.
    told_after_s = (handled_told - handled_then) * HANDLER_S
    assert told_after_s < TOLD_WITHIN_S, f"told after {handled_then} -> {handled_told} buffers handled"
    assert lag_ms >= BACKLOG_MS and dropped >= 1
    warnings = [line for _, line in script.err if "ms behind live audio" in line]
    assert warnings, script.err
    assert "blocks were dropped (it keeps at most 500 ms waiting" in warnings[0]
    assert page_lag >= BACKLOG_MS * 0.8


async def lag_on_the_page(server: ApplianceProcess) -> float:
    """The lag a browser is shown for the script's run, once it is behind."""
    ws, _ = await wsclient.browser(server)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        stats = await wsclient.receive(ws, "stats")
        lags = list(stats["run_lag_ms"].values())
        if lags and max(lags) >= BACKLOG_MS * 0.8:
            await wsclient.shut(ws)
            return float(max(lags))
    raise AssertionError(f"the page was never shown the lag: {json.dumps(stats)}")


async def _take_two(bus: Bus) -> tuple[float, float]:
    sub = bus.subscribe("slow", maxlen=8)
    data = np.zeros((FRAMES, 1), dtype=np.int16)
    for seq in range(4):
        bus.publish(Block.frozen(seq, 100.0 + seq * BLOCK_S, data.copy()))
    await sub.get()
    first = sub.lag_s
    for _ in range(3):
        await sub.get()
    return first, sub.lag_s


def test_every_block_taken_tells_the_consumer_its_lag() -> None:
    first, last = asyncio.run(_take_two(Bus()))
    assert first == pytest.approx(3 * BLOCK_S)
    assert last == 0.0
