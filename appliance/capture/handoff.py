"""The bounded hand-off of blocks from the capture thread to the event loop.

``loop.call_soon_threadsafe`` per block has no bound: a source that delivers
faster than real time, or a loop that stalls, queues callbacks (and the
blocks they hold) without limit, and a flooded loop answers neither HTTP nor
SIGTERM.  Here the capture thread appends to a deque of at most
``capacity`` blocks and schedules **one** drain while any are waiting; when
the deque is full the oldest block is dropped and counted as an overrun, as
a hardware buffer would.  The loop drains every waiting block in one
callback, so its own queue holds at most one of ours.

Batching: while no consumer needs each period as soon as it is captured (no
client is attached), the drain is scheduled only once ``batch`` blocks are
waiting, so the loop wakes once per batch instead of once per period (at
256-frame buffers and 48 kHz, 187 wake-ups a second become about 10).
``set_batch(1)`` hands over every block at once again and drains what waits.
A batch is held on top of ``capacity``: the loop may still stall for
``capacity`` blocks after it was woken before any block is dropped.

A ``direct`` consumer (the shared-memory ring of scripts on the device) is
called on the capture thread with every block before it is queued, so its
readers get each period at once while the loop sleeps through a batch: the
loop's wake-up per period was most of what serving ring readers cost.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable

from appliance.capture.block import Block

log = logging.getLogger(__name__)

#: Fewest blocks in flight between the threads.
MIN_BLOCKS = 4
#: Audio in flight between the threads, in seconds: small buffers get more
#: blocks, so a loop that is busy for a few ms (a chart, a login) loses none.
SECONDS = 0.2
MAX_BLOCKS = 64
#: Audio gathered before the loop is woken while nobody needs low latency, in seconds.
BATCH_SECONDS = 0.1


def capacity_for(rate: int, buffer_frames: int) -> int:
    """Blocks in flight for a configuration: about :data:`SECONDS` of audio, at least a few."""
    return max(MIN_BLOCKS, min(MAX_BLOCKS, round(SECONDS * rate / buffer_frames)))


def batch_for(rate: int, buffer_frames: int) -> int:
    """Blocks handed over per wake-up when no consumer needs low latency: about
    :data:`BATCH_SECONDS` of audio, and at most half of what :func:`capacity_for` holds
    (the hand-off holds a batch on top of its capacity)."""
    wanted = round(BATCH_SECONDS * rate / buffer_frames)
    return max(1, min(wanted, capacity_for(rate, buffer_frames) // 2))


class Handoff:
    """Blocks in flight from one producer thread to the loop, dropped oldest first.

    ``consume(blocks, lost)`` runs on the loop with every block that waited,
    oldest first, and the count of blocks lost before them (dropped here or
    reported lost by the source through ``put``).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        consume: Callable[[list[Block], int], None],
        capacity: int = MIN_BLOCKS,
    ) -> None:
        self._loop = loop
        self._consume = consume
        self._lock = threading.Lock()
        self._blocks: deque[Block] = deque()
        self._capacity = capacity
        self._lost = 0
        self._scheduled = False
        self._batch = 1
        self.direct: Callable[[Block, int], None] | None = None
        """Called on the producer's thread with each block and the blocks the source lost before it."""
        self.overruns = 0
        """Blocks dropped here because the loop did not take them in time."""

    def resize(self, capacity: int) -> None:
        """Hold up to ``capacity`` blocks from now on; any thread."""
        with self._lock:
            self._capacity = max(1, capacity)
            self._batch = min(self._batch, self._capacity)

    @property
    def batch(self) -> int:
        """Blocks that wait before the loop is woken (1: every block at once)."""
        return self._batch

    def set_batch(self, blocks: int) -> None:
        """Wake the loop once ``blocks`` blocks wait (1: at every block); any thread.

        Going down to fewer blocks than are waiting hands them over at once.
        """
        with self._lock:
            self._batch = max(1, min(blocks, self._capacity))
            if self._scheduled or len(self._blocks) < self._batch:
                return
            self._scheduled = True
        self._schedule()

    def put(self, block: Block, lost: int = 0) -> None:
        """Hand ``block`` over (capture thread); ``lost`` blocks were lost just before it."""
        direct = self.direct
        if direct is not None:
            try:
                direct(block, lost)
            except Exception:  # the ring's trouble must not end capture for everyone else
                log.exception("the direct consumer of blocks failed")
        with self._lock:
            self._lost += lost
            # The batch waits on top of the capacity, so batching never shortens
            # the stall the loop may have once it is woken.
            while len(self._blocks) >= self._capacity + self._batch - 1:
                self._blocks.popleft()
                self.overruns += 1
                self._lost += 1
            self._blocks.append(block)
            if self._scheduled or len(self._blocks) < self._batch:
                return
            self._scheduled = True
        self._schedule()

    def _schedule(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: the service is ending
            log.debug("a block arrived after the event loop closed")

    def _drain(self) -> None:
        with self._lock:
            blocks = list(self._blocks)
            self._blocks.clear()
            lost, self._lost = self._lost, 0
            self._scheduled = False
        self._consume(blocks, lost)
