"""A source that ends or is cut short in place, a loop that stalls: bounded, reported, recovered."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from appliance.capture.block import Block
from appliance.capture.clockguard import BURST_S, DRIFT, ClockGuard
from appliance.capture.config import AudioConfig, Capabilities
from appliance.capture.handoff import Handoff
from appliance.capture.sources.wavfile import WavSource
from appliance.errors import SourceUnavailable
from tests.capture_support import Recorder, running

RATE = 16000
FRAMES = 256
CONFIG = AudioConfig(RATE, 2, FRAMES, 80)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(samples.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def samples(frames: int) -> np.ndarray:
    return np.random.default_rng(5).integers(-32768, 32767, size=(frames, 2), dtype=np.int16)


def poll_until(what: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class CountingWav(WavSource):
    """A real WAV source that counts how often it is probed."""

    probes = 0

    def probe(self) -> Capabilities:
        self.probes += 1
        return super().probe()


def test_a_wav_cut_short_while_open_is_reported_not_spun_on(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", samples(FRAMES * 64))
    source = WavSource(path)
    source.open(CONFIG)
    reads = 0
    try:
        source.read()
        os.truncate(path, 44 + FRAMES * 4 * 32 + 3)  # 32 buffers and part of a frame left
        with pytest.raises(SourceUnavailable) as info:
            for reads in range(2, 40):  # noqa: B007 - the count is asserted
                source.read()
    finally:
        source.close()
    assert reads == 33, "every whole buffer left is read, and no more"
    assert str(info.value) == (
        f"WAV file {path} was cut short while open: it ends at frame 8192 of the 16384 its header names"
    )
    with pytest.raises(SourceUnavailable) as probed:
        source.probe()
    assert "holds 8192 of the 16384 frames its header names: it was cut short" in str(probed.value)


def test_capture_waits_on_a_cut_wav_and_recovers_when_it_is_whole(tmp_path: Path) -> None:
    whole = samples(FRAMES * 8)
    path = write_wav(tmp_path / "a.wav", whole)
    source = CountingWav(path)
    rec = Recorder()
    retry = 0.05
    with running(source, rec, CONFIG, retry_interval=retry):
        rec.wait_state("running")
        rec.wait_blocks(1)
        os.truncate(path, 44)  # only the header is left
        waiting = rec.wait_state("waiting")
        assert f"WAV file {path}" in waiting.message
        probes_at_wait = source.probes
        # A spinning thread would probe thousands of times while these few
        # retries pass; waiting for them is the window.
        poll_until(lambda: source.probes >= probes_at_wait + 3)
        assert source.probes <= probes_at_wait + 4
        write_wav(path, whole)
        after = len(rec.statuses)
        rec.wait_state("running", after)
        rec.clear_blocks()
        rec.wait_blocks(2)
    assert all(b.data.shape == (FRAMES, 2) for b in rec.blocks)


def test_the_handoff_holds_a_few_blocks_when_the_loop_stalls() -> None:
    loop = asyncio.new_event_loop()
    got: list[tuple[list[int], int]] = []
    done = threading.Event()

    def consume(blocks: list[Block], lost: int) -> None:
        got.append(([b.seq for b in blocks], lost))
        done.set()

    handoff = Handoff(loop, consume, capacity=4)
    data = np.zeros((FRAMES, 2), dtype=np.int16)
    # The loop is not running: a stalled loop.  100 blocks arrive meanwhile.

    def produce() -> None:
        for i in range(100):
            handoff.put(Block.frozen(i, 0.0, data.copy()), 1 if i == 50 else 0)

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join()
    assert len(loop._ready) == 1, "one drain is scheduled, however many blocks arrived"  # type: ignore[attr-defined]
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.close()
    assert done.is_set()
    assert got == [([96, 97, 98, 99], 97)]  # 96 dropped here, 1 lost by the source
    assert handoff.overruns == 96


def test_the_clock_guard_paces_only_a_source_ahead_of_real_time() -> None:
    now = [100.0]
    guard = ClockGuard(RATE, clock=lambda: now[0])
    block = FRAMES / RATE
    # A real device: one buffer per buffer duration, never held back.
    for _ in range(1000):
        now[0] += block
        assert guard.wait_after(FRAMES) == 0.0
    assert not guard.paced
    # No clock: buffers at once.  After the burst allowance, each must wait.
    waits = [guard.wait_after(FRAMES) for _ in range(100)]
    assert guard.paced
    allowed = int(BURST_S / block) + 2
    assert all(w == 0.0 for w in waits[: allowed - 2])
    assert waits[-1] == pytest.approx(100 * block - BURST_S - DRIFT * 1000 * block)
