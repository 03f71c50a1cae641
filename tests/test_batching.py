"""Batching capture periods while nobody needs them at once: fewer wake-ups, nothing lost.

The capture thread reads a batch of buffers and then rests; the hand-off wakes
the loop once per batch.  A consumer that attaches ends a rest at once and
gets every period as it is captured.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from appliance.capture.block import Block
from appliance.capture.config import AudioConfig, Capabilities, save_config
from appliance.capture.handoff import Handoff, batch_for
from appliance.capture.sources.base import SourceInfo
from appliance.capture.sources.simulator import SimulatedArray
from appliance.errors import SourceUnavailable
from appliance.service import Service
from appliance.sessions.streaming import StreamManager
from browserinterface.ringfetch import fetch_ring
from tests.capture_support import Recorder, running

RATE, FRAMES, CHANNELS = 48000, 256, 2
PERIOD_S = FRAMES / RATE


class RingDevice:
    """Behaves like a sound card: audio accumulates in a ring at ``RATE`` on the
    monotonic clock, ``read`` takes a buffer at once when one is there and waits
    (counted) when none is, and the ring overruns when the reader is later than
    ``holds_s``."""

    def __init__(self, holds_s: float) -> None:
        self._holds_s = holds_s
        self._cond = threading.Condition()
        self._start = 0.0
        self._read = 0
        self._closed = True
        self.waits = 0
        """Reads that found no whole buffer and had to wait: the thread's wake-ups."""
        self.reads = 0
        self._overruns = 0

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(spec="ring", kind="sim", model="ring device")

    @property
    def overruns(self) -> int:
        return self._overruns

    @property
    def holds_s(self) -> float:
        return self._holds_s

    def probe(self) -> Capabilities:
        return Capabilities((RATE,), (CHANNELS,))

    def open(self, config: AudioConfig) -> None:
        with self._cond:
            self._start, self._read, self._closed = time.monotonic(), 0, False

    def read(self) -> np.ndarray:
        with self._cond:
            captured = (time.monotonic() - self._start) * RATE
            if captured - self._read > self._holds_s * RATE:
                self._overruns += 1
                self._read = int(captured) - FRAMES
            if captured < self._read + FRAMES:
                self.waits += 1
            while not self._closed:
                remaining = (self._read + FRAMES) / RATE - (time.monotonic() - self._start)
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._closed:
                raise SourceUnavailable("closed")
            self._read += FRAMES
            self.reads += 1
        return np.zeros((FRAMES, CHANNELS), np.int16)

    def capture_time(self) -> float | None:
        return None

    def set_volume(self, volume: int) -> None:
        pass

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def test_a_batching_capture_thread_wakes_once_a_batch_and_loses_nothing() -> None:
    device = RingDevice(holds_s=10.0)
    recorder = Recorder(keep=100_000)
    with running(device, recorder, AudioConfig(RATE, CHANNELS, FRAMES, 80)) as capture:
        capture.set_batch(8)
        recorder.wait_blocks(8 * 12)
    seqs = [b.seq for b in recorder.blocks]
    assert seqs == list(range(len(seqs))), "a block was lost or reordered"
    assert device.overruns == 0 and recorder.lost == 0
    # Read one at a time, nearly every read would wait for its buffer; in
    # batches of 8, one read in 8 does (a loaded machine only makes it fewer).
    assert device.waits <= device.reads / 4, (device.waits, device.reads)


def test_a_rest_never_outlasts_half_of_what_the_device_holds() -> None:
    # Unbounded, a batch of 1000 buffers would rest 5.3 s against a ring of 1 s.
    device = RingDevice(holds_s=1.0)
    recorder = Recorder(keep=100_000)
    with running(device, recorder, AudioConfig(RATE, CHANNELS, FRAMES, 80)) as capture:
        capture.set_batch(1000)
        recorder.wait_blocks(1200)
    assert device.overruns == 0, "the thread rested past the device's ring"


def block(seq: int) -> Block:
    return Block.frozen(seq, float(seq), np.zeros((FRAMES, CHANNELS), np.int16))


def test_the_handoff_wakes_the_loop_once_a_batch_and_at_once_when_told() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        got: list[tuple[list[int], int]] = []
        handoff = Handoff(loop, lambda blocks, lost: got.append(([b.seq for b in blocks], lost)), 32)

        async def turns() -> None:  # let the loop run whatever was scheduled
            for _ in range(5):
                await asyncio.sleep(0)

        handoff.set_batch(5)
        for k in range(4):
            handoff.put(block(k), 1 if k == 2 else 0)
        await turns()
        assert got == [], "the loop was woken before a batch was there"
        handoff.put(block(4))
        await turns()
        assert got == [([0, 1, 2, 3, 4], 1)]
        handoff.put(block(5))
        handoff.put(block(6))
        await turns()
        assert len(got) == 1
        handoff.set_batch(1)  # a consumer came: what waits is handed over now
        await turns()
        assert got[1:] == [([5, 6], 0)]
        handoff.put(block(7))
        await turns()
        assert got[2:] == [([7], 0)]

    asyncio.run(run())


def test_the_service_batches_only_while_no_client_is_attached(tmp_path: Path) -> None:
    async def run() -> None:
        config = AudioConfig(48000, 48, 256, 80)
        save_config(tmp_path, config)
        service = Service(SimulatedArray("pyramic"), tmp_path, http_port=0)
        await service.start()
        try:
            assert await service.wait_capturing(10)
            assert service.capture is not None
            idle = batch_for(48000, 256)
            assert idle > 1
            assert (service.capture.batch, service.handoff_batch) == (idle, idle)
            sub = service.bus.subscribe("a script")
            assert (service.capture.batch, service.handoff_batch) == (1, 1)
            first = await asyncio.wait_for(sub.get(), 10)
            second = await asyncio.wait_for(sub.get(), 10)
            assert second.seq == first.seq + 1
            sub.close()
            assert (service.capture.batch, service.handoff_batch) == (idle, idle)
            # The RTP sender stays on the bus once started, but needs latency only
            # while a stream is open.
            streams = StreamManager(service.bus, lambda: service.config, renew_timeout_s=60)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
                rx.bind(("127.0.0.1", 0))
                desc = streams.subscribe("me", "127.0.0.1", rx.getsockname()[1])
                assert (service.capture.batch, service.handoff_batch) == (1, 1)
                streams.cancel("me", desc["id"])
                assert (service.capture.batch, service.handoff_batch) == (idle, idle)
            await streams.close()
        finally:
            await service.stop()

    asyncio.run(run())


def test_a_batch_waits_on_top_of_the_capacity() -> None:
    """Batching must not shorten the stall the loop may have once woken."""

    async def run() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        handoff = Handoff(loop, lambda blocks, lost: None, 4)
        handoff.set_batch(3)
        for k in range(6):  # the loop does not run meanwhile: it stalls
            handoff.put(block(k))
        held = handoff.overruns
        handoff.put(block(6))
        return held, handoff.overruns

    held, after = asyncio.run(run())
    assert (held, after) == (0, 1)


def ring_steps(reader: Any, count: int) -> list[int]:
    """How many blocks the ring gained each time it changed, ``count`` times (polled every ms)."""
    steps: list[int] = []
    last = reader.written()
    while len(steps) < count:
        time.sleep(0.001)
        now = reader.written()
        if now != last:
            steps.append(now - last)
            last = now
    return steps


def test_a_script_reading_the_ring_gets_every_period_at_once(tmp_path: Path) -> None:
    """A ring reader is not on the bus, but it needs each block as soon as it is captured.

    Capture then takes every period at once and writes it into the ring on its own
    thread, while the loop, which nobody else needs, still takes the periods in batches.
    """

    async def run() -> None:
        save_config(tmp_path, AudioConfig(48000, 48, 256, 80))
        service = Service(SimulatedArray("pyramic"), tmp_path, http_port=0)
        await service.ring.listen(tmp_path / "ring.sock")
        await service.start()
        try:
            assert await service.wait_capturing(10)
            assert service.capture is not None
            idle = batch_for(48000, 256)
            assert (service.capture.batch, service.handoff_batch) == (idle, idle)
            offer = service.ring.offer("script-1")
            assert offer is not None
            # The script's own fetch over the real socket, from a thread of its own as in a script.
            reader = await asyncio.to_thread(asyncio.run, fetch_ring(offer))
            assert reader.written() >= 0
            assert (service.capture.batch, service.handoff_batch) == (1, idle)
            steps = await asyncio.to_thread(ring_steps, reader, 60)
            # One block a step, not a batch's worth at a time (a late poll may see two or more).
            assert statistics.median(steps) == 1, steps
            service.ring.forget("script-1")
            assert (service.capture.batch, service.handoff_batch) == (idle, idle)
        finally:
            await service.stop()
            await service.ring.close()

    asyncio.run(run())
