"""The bus: a consumer that never reads cannot delay another; its losses are counted."""

from __future__ import annotations

import asyncio

import numpy as np

from appliance.capture.block import Block
from appliance.capture.bus import Bus


def _block(seq: int) -> Block:
    return Block.frozen(seq, float(seq), np.full((4, 2), seq, dtype=np.int16))


async def test_stuck_consumer_does_not_delay_another() -> None:
    bus = Bus()
    stuck = bus.subscribe("stuck", maxlen=8)
    reader = bus.subscribe("reader", maxlen=8)
    got: list[int] = []

    async def read() -> None:
        while len(got) < 100:
            got.append((await reader.get()).seq)

    task = asyncio.create_task(read())
    for seq in range(100):
        bus.publish(_block(seq))
        await asyncio.sleep(0)  # one loop turn per block, as capture delivers them
    await asyncio.wait_for(task, 5)
    assert got == list(range(100))
    assert reader.dropped == 0
    assert stuck.dropped == 92
    assert stuck.take_new_losses() == 92
    assert stuck.take_new_losses() == 0
    # the stuck one keeps the newest blocks, not the oldest
    assert [stuck.get_nowait().seq for _ in range(8)] == list(range(92, 100))  # type: ignore[union-attr]


async def test_blocks_are_read_only() -> None:
    block = _block(1)
    try:
        block.data[0, 0] = 5
    except ValueError as exc:
        assert "read-only" in str(exc)
    else:
        raise AssertionError("a consumer could change a shared block")


async def test_closed_subscription_ends_waiters_and_leaves_the_bus() -> None:
    bus = Bus()
    sub = bus.subscribe("x")
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    sub.close()
    try:
        await asyncio.wait_for(waiter, 1)
    except EOFError:
        pass
    else:
        raise AssertionError("get() returned after close")
    assert bus.subscriptions == ()
    bus.publish(_block(1))
    assert sub.pending() == 0
