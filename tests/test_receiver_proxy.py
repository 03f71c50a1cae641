"""The whole path through a seeded lossy proxy: device -> proxy -> receiver."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import numpy as np
import pytest

from appliance.capture.config import AudioConfig
from rtai.receiver import Receiver
from rtai.rtp import frames_per_packet, packet_bounds
from rtai.seqnum import Unwrapper
from tests.rtai_support import (
    collecting,
    device,
    distinct_audio,
    no_leaked_threads,  # noqa: F401  (autouse)
    publish_paced,
    split_blocks,
    wait_for,
)
from tests.udp_proxy import Faults, UdpProxy

RATE, CHANNELS, BLOCK = 48000, 8, 480


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(rate=RATE, channels=CHANNELS, latency_ms=500) as rx:
        yield rx


@pytest.mark.parametrize("seed", [1, 7])
def test_lossy_network_is_concealed_and_counted(receiver: Receiver, seed: int) -> None:
    audio = distinct_audio(RATE * 3 // 2, CHANNELS, seed=seed)
    audio[audio == 0] = 1  # zeros in the output can only be concealment
    faults = Faults(drop=0.03, duplicate=0.03, reorder=0.03, delay=0.03)
    proxy = UdpProxy(receiver.port, faults, seed=seed)
    try:
        received = _run(receiver, proxy, audio)
    finally:
        proxy.close()
    log = proxy.log
    unwrap = Unwrapper(16)
    first = log.seen[0]
    order = [unwrap.extend(s) - first for s in log.forwarded]
    unique, out_of_order, highest = set(), 0, -1
    for s in order:
        if s not in unique and s < highest:
            out_of_order += 1
        unique.add(s)
        highest = max(highest, s)
    dropped = {(s - first) % 65536 for s in log.dropped}
    stats = receiver.stats
    assert stats.duplicates == len(order) - len(unique) == len(log.duplicated)
    assert stats.received + stats.late == len(unique)
    assert stats.lost == len([d for d in dropped if d < highest])
    # A packet late in order (this machine stalled) is late without being out of order.
    assert stats.reordered <= out_of_order <= stats.reordered + stats.late
    if stats.late == 0:
        assert stats.reordered == out_of_order
    assert stats.malformed == stats.foreign == 0
    assert len(log.dropped) > 5 and out_of_order > 5  # the proxy did its job

    # The timeline: every packet's span is its own audio or, when lost, silence.
    assert received.shape == audio.shape
    bounds = _packet_spans()
    for k, (a, b) in enumerate(bounds):
        chunk, original = received[a:b], audio[a:b]
        if k in dropped:
            assert not chunk.any(), f"lost packet {k} was filled with audio"
        elif stats.late == 0:
            assert np.array_equal(chunk, original), f"packet {k} differs"
        else:
            assert np.array_equal(chunk, original) or not chunk.any()
    concealed = sum(b - a for k, (a, b) in enumerate(bounds) if k in dropped)
    if stats.late == 0:
        assert stats.concealed_frames >= concealed
        assert int(np.all(received == 0, axis=1).sum()) == concealed


def _packet_spans() -> list[tuple[int, int]]:
    per = frames_per_packet(CHANNELS)
    spans = []
    for block in range(RATE * 3 // 2 // BLOCK):
        edges = packet_bounds(BLOCK, per)
        spans += [(block * BLOCK + a, block * BLOCK + b) for a, b in itertools.pairwise(edges)]
    return spans


def _run(rx: Receiver, proxy: UdpProxy, audio: np.ndarray) -> np.ndarray:
    config = AudioConfig(rate=RATE, channels=CHANNELS, buffer_frames=BLOCK)

    async def main() -> np.ndarray:
        async with device(config) as (bus, manager):
            manager.subscribe("t", "127.0.0.1", proxy.port)
            with collecting(rx, audio.shape[0]) as got:
                await publish_paced(bus, split_blocks(audio, BLOCK), RATE)
                await wait_for(got.done.is_set)
            await wait_for(proxy.idle)
            rx.read(0.05)  # take in whatever the proxy released last
            return got.audio()

    return asyncio.run(main())
