"""A capture device with no clock (ALSA's ``file`` plugin over ``null``) in a real service.

The device returns every read at once.  The service must pace it to real
time, stay responsive and small, hand a script the file's samples bit for bit,
and end within 2 s of SIGTERM.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("alsaaudio")

from appliance.capture.config import AudioConfig, save_config
from browserinterface import protocol as P
from tests import wsclient
from tests.alsa import use_test_config
from tests.server import ApplianceProcess

RATE = 48000
CHANNELS = 2
FRAMES = 1024
SECONDS = 20
BLOCKS = 40
HTTP_ANSWER_S = 1.0
RSS_LIMIT_BYTES = 150 << 20
STOP_WITHIN_S = 2.0


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def http_answer_seconds(port: int) -> float:
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/login")
        conn.getresponse().read()
    finally:
        conn.close()
    return time.monotonic() - start


async def receive_blocks(server: ApplianceProcess, token: str, count: int) -> list[P.AudioFrame]:
    ws = await wsclient.connect(server, token)
    await wsclient.hello(ws)
    await ws.write_message('{"type":"audio","on":true,"id":1}')
    frames: list[P.AudioFrame] = []
    while len(frames) < count:
        msg = await asyncio.wait_for(ws.read_message(), 10)
        assert msg is not None, "connection closed"
        if isinstance(msg, bytes):
            frames.append(P.decode_audio(msg))
    await wsclient.shut(ws)
    return frames


def test_a_device_without_a_clock_is_paced_and_the_service_stays_well(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alsa = use_test_config(tmp_path, monkeypatch)
    rng = np.random.default_rng(7)
    samples = rng.integers(-32768, 32767, size=(RATE * SECONDS, CHANNELS), dtype=np.int16)
    raw = tmp_path / "flood.raw"
    samples.astype("<i2").tofile(raw)
    alsa.add("flood", raw)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    save_config(data_dir, AudioConfig(RATE, CHANNELS, FRAMES, 80))
    server = ApplianceProcess(data_dir, "alsa:flood").start()
    try:
        token = server.token()
        frames = asyncio.run(receive_blocks(server, token, BLOCKS))
        answer = http_answer_seconds(server.port)
        assert server.proc is not None
        rss = rss_bytes(server.proc.pid)
        stop_started = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(timeout=10)
        stopped_in = time.monotonic() - stop_started
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log
    assert "faster than real time" in log
    seqs = [f.seq for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + BLOCKS)), "blocks were lost or reordered"
    # Paced to real time: the script joined about a second in, not a flood's worth later.
    assert (seqs[-1] + 1) * FRAMES < len(samples)
    for frame in frames:
        want = samples[frame.seq * FRAMES : (frame.seq + 1) * FRAMES]
        assert np.array_equal(frame.data, want), f"block {frame.seq} differs from the file"
    assert answer < HTTP_ANSWER_S, f"GET /login took {answer:.2f} s"
    assert rss < RSS_LIMIT_BYTES, f"the service holds {rss >> 20} MB"
    assert stopped_in < STOP_WITHIN_S, f"SIGTERM took {stopped_in:.2f} s"
