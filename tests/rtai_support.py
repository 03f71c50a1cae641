"""Shared pieces of the RTP tests: distinctive audio, a paced device, a receiving thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from appliance.block import Block
from appliance.bus import Bus
from appliance.config import AudioConfig
from appliance.streaming import StreamManager
from rtai.jitterbuffer import ReceivedBlock
from rtai.receiver import Receiver


def distinct_audio(frames: int, channels: int, seed: int = 1) -> NDArray[np.int16]:
    """Audio in which every sample differs from its neighbours in time and channel."""
    rng = np.random.default_rng(seed)
    return rng.integers(-32768, 32768, size=(frames, channels), dtype=np.int16)


def split_blocks(audio: NDArray[np.int16], block_frames: int) -> list[NDArray[np.int16]]:
    return [audio[i : i + block_frames] for i in range(0, audio.shape[0], block_frames)]


@asynccontextmanager
async def device(config: AudioConfig, **kwargs: Any) -> Any:
    """A real bus and a started StreamManager, closed afterwards."""
    bus = Bus()
    manager = StreamManager(bus, lambda: config, **kwargs)
    await manager.start()
    try:
        yield bus, manager
    finally:
        await manager.close()


async def publish_paced(bus: Bus, blocks: list[NDArray[np.int16]], rate: int, speed: float = 1.0) -> None:
    """Publish blocks at the pace a sound card would deliver them (``speed`` x real time)."""
    start = time.monotonic()
    done = 0
    for seq, data in enumerate(blocks):
        done += data.shape[0]
        due = start + done / rate / speed
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        bus.publish(Block.frozen(seq, time.time(), data.copy()))


class Collector:
    """Runs ``rx.read`` in a thread until ``frames`` frames came or ``stop()``."""

    def __init__(self, rx: Receiver, frames: int, on_block: Callable[[], None] | None = None):
        self.rx = rx
        self.frames = frames
        self.blocks: list[ReceivedBlock] = []
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector")
        self._thread.start()

    def _run(self) -> None:
        got = 0
        try:
            while got < self.frames and not self._stop.is_set():
                for block in self.rx.read(0.05):
                    self.blocks.append(block)
                    got += block.frames
        finally:
            self.done.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def audio(self) -> NDArray[np.int16]:
        return np.concatenate([b.data for b in self.blocks])[: self.frames]


@contextmanager
def collecting(rx: Receiver, frames: int) -> Iterator[Collector]:
    collector = Collector(rx, frames)
    try:
        yield collector
    finally:
        collector.stop()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` on the loop until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread running (import this into a test module)."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, f"threads left running: {[t.name for t in left]}"
