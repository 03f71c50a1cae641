"""Taking blocks from the shared-memory ring in the callbacks' own thread.

Over the WebSocket, blocks cross from the connection thread to the callback
thread through a queue (half the script's cost at 48 channels x 256
frames).  From the ring the thread that runs the callbacks reads the next
block itself: the ring is the queue.  Backlog and loss keep their meaning:
blocks older than the backlog allows are skipped (dropped, as a slow script's
are), blocks the device overwrote before they were read, or lost before the
ring (capture overruns), are told as loss.
"""

from __future__ import annotations

from dataclasses import dataclass

from browserinterface.ring import RingBlock, RingReader


@dataclass(slots=True)
class Take:
    """What one look at the ring found."""

    block: RingBlock | None = None
    dropped: int = 0
    """Skipped because they were older than the backlog allows."""
    lost: int = 0
    """Overwritten before they were read, or lost before the ring."""
    newest: float = 0.0
    oldest: float | None = None
    """Time of the oldest block that was waiting, before any was dropped (the lag to tell)."""


class RingFeed:
    """One ring reader and where this script is in it."""

    def __init__(self, reader: RingReader) -> None:
        self.reader = reader

    def take(self, max_backlog_s: float, max_waiting: int) -> Take:
        """The next block to hand to the callbacks (``block`` None: nothing new)."""
        reader = self.reader
        written = reader.written()
        found = Take(newest=reader.newest_time())
        lost_before = reader.lost_before()
        found.lost, reader.lost_seen = max(0, lost_before - reader.lost_seen), lost_before
        index = reader.next
        if index >= written:
            return found
        # The slot the writer fills next is the oldest one: leave it, it may be half written.
        oldest_safe = written - reader.shape.slots + 1
        if index < oldest_safe:
            found.lost += oldest_safe - index
            index = oldest_safe
        while index < written - 1:
            when = reader.slot_time(index)
            if when is None:
                found.lost += 1
            else:
                found.oldest = when if found.oldest is None else found.oldest
                if found.newest - when <= max_backlog_s and written - index <= max_waiting:
                    break
                found.dropped += 1
            index += 1
        found.block = reader.read(index)
        if found.block is None:
            found.lost += 1
        elif found.oldest is None:
            found.oldest = found.block.time
        reader.next = index + 1
        return found

    def lag_s(self, handling: float | None) -> float:
        """How far behind the newest block the one handled (or the next one waiting) is."""
        reader = self.reader
        newest = reader.newest_time()
        if handling is not None:
            return max(0.0, newest - handling)
        if reader.next >= reader.written():
            return 0.0
        when = reader.slot_time(reader.next)
        return 0.0 if when is None else max(0.0, newest - when)

    @property
    def closed(self) -> bool:
        return self.reader.closed

    def wait(self, timeout_s: float) -> None:
        self.reader.wait(timeout_s)

    def kick(self) -> None:
        self.reader.kick()
