"""Fan-out of captured blocks to every consumer, never blocking capture.

The bus lives on the event loop.  Each consumer has its own bounded queue:
when a consumer falls behind, its oldest blocks are dropped and counted for
that consumer alone, so capture and the other consumers go on untouched.
Every block a consumer takes tells it its lag: how far that block is behind
the newest one published (``Subscription.lag_s``), so it knows within one
buffer that it fell behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from appliance.capture.block import Block

log = logging.getLogger(__name__)

#: Blocks a consumer may fall behind before it loses the oldest ones.
DEFAULT_QUEUE_BLOCKS = 64
#: How much audio a consumer may fall behind, in seconds, when sized by time.
QUEUE_SECONDS = 0.5
#: Fewest blocks a time-sized queue holds, so long buffers still ride out a hiccup.
MIN_QUEUE_BLOCKS = 4
MAX_QUEUE_BLOCKS = 4096


def blocks_for(seconds: float, rate: int, buffer_frames: int) -> int:
    """Queue length holding ``seconds`` of audio (at least a few blocks)."""
    return max(MIN_QUEUE_BLOCKS, min(MAX_QUEUE_BLOCKS, round(seconds * rate / buffer_frames)))


class Subscription:
    """One consumer's view of the bus: a bounded queue and its loss count."""

    def __init__(self, bus: Bus, name: str, maxlen: int) -> None:
        self.name = name
        self._bus = bus
        self._queue: deque[Block] = deque(maxlen=maxlen)
        self._waiter: asyncio.Future[None] | None = None
        self.dropped = 0
        """Blocks lost since the subscription started."""
        self._reported = 0
        self.closed = False
        self.lag_s = 0.0
        """How far the block taken last was behind the newest one published, in seconds."""
        self.idle = False
        """True while the consumer takes blocks but needs none of them at once (an RTP
        sender with no stream open): the service may batch capture periods then."""

    def set_idle(self, idle: bool) -> None:
        """Say whether this consumer needs each block as soon as it is captured (False) or not."""
        if idle != self.idle:
            self.idle = idle
            self._bus._changed()

    def _put(self, block: Block) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(block)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take_new_losses(self) -> int:
        """Blocks lost since the last call, so the consumer can be told."""
        new = self.dropped - self._reported
        self._reported = self.dropped
        return new

    def get_nowait(self) -> Block | None:
        """The oldest queued block, or None when the queue is empty."""
        return self._took(self._queue.popleft()) if self._queue else None

    def _took(self, block: Block) -> Block:
        self.lag_s = max(0.0, self._bus.newest_time - block.time)
        return block

    def resize(self, maxlen: int) -> None:
        """Hold up to ``maxlen`` blocks from now on (the newest are kept)."""
        if maxlen != self._queue.maxlen:
            self._queue = deque(self._queue, maxlen=maxlen)

    def pending(self) -> int:
        return len(self._queue)

    async def get(self) -> Block:
        """Wait for the next block; raises EOFError once the subscription is closed."""
        while not self._queue:
            if self.closed:
                raise EOFError(self.name)
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._took(self._queue.popleft())

    def close(self) -> None:
        """Leave the bus and wake a waiting ``get``."""
        if self.closed:
            return
        self.closed = True
        self._bus._remove(self)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Bus:
    """Hands every published block to every subscription; loop thread only."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._listeners: list[Callable[[Block], None]] = []
        self.published = 0
        self.newest_time = 0.0
        """``time`` of the newest block published."""
        self.lost = 0
        """Blocks lost before the bus (source and hand-off overruns), told to every consumer."""
        self.on_change: Callable[[], None] | None = None
        """Called after a consumer subscribed, left or changed ``idle`` (the service batches
        capture while no consumer needs latency)."""

    def subscribe(self, name: str, maxlen: int = DEFAULT_QUEUE_BLOCKS) -> Subscription:
        """A new consumer queue that receives every block published from now on."""
        sub = Subscription(self, name, maxlen)
        self._subs.append(sub)
        self._changed()
        return sub

    def add_listener(self, fn: Callable[[Block], None]) -> None:
        """Call ``fn(block)`` synchronously on publish; for cheap in-loop work only
        (level meters, the watchdog), never for I/O."""
        self._listeners.append(fn)

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    @property
    def needs_latency(self) -> bool:
        """True while some consumer needs each block as soon as it is captured."""
        return any(not sub.idle for sub in self._subs)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subs)

    def lose(self, count: int) -> None:
        """``count`` blocks were lost before the bus: each consumer counts them as its own loss."""
        self.lost += count
        for sub in self._subs:
            sub.dropped += count

    def publish(self, block: Block) -> None:
        """Queue ``block`` for every consumer; never waits."""
        self.published += 1
        self.newest_time = block.time
        for sub in self._subs:
            sub._put(block)
        for fn in self._listeners:
            fn(block)
