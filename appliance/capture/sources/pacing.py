"""Real-time pacing for sources that are not hardware (simulator, WAV files).

A hardware device delivers a buffer when it has been captured; a file or a
simulator must wait for the same moment.  The pacer keeps an absolute
monotonic deadline for each buffer (start + n * duration), so waiting never
drifts, and it waits on a condition so a fault switch or ``close`` from
another thread ends the wait at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: How far behind the deadline a source may fall before it skips ahead and
#: counts an overrun, like a hardware buffer that overflowed (seconds).
MAX_LAG_S = 0.5


class Pacer:
    """Deadlines for consecutive buffers of ``frames`` frames at ``rate`` Hz."""

    def __init__(self, rate: int, frames: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.frames = frames
        self._clock = clock
        self._start = clock()
        self._count = 0
        self.overruns = 0
        """Times the reader fell more than MAX_LAG_S behind and the pacer skipped ahead."""

    def next_deadline(self) -> float:
        """The monotonic time at which the next buffer is complete."""
        return self._start + (self._count + 1) * self.frames / self.rate

    def wait(self, cond: threading.Condition, interrupted: Callable[[], bool]) -> int | None:
        """Wait for the next deadline; returns the frames skipped (0 unless an
        overrun), or None when ``interrupted()`` became true first.

        ``cond`` must be held by the caller; ``interrupted`` is checked each
        time the condition wakes.
        """
        deadline = self.next_deadline()
        while not interrupted():
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            cond.wait(remaining)
        else:
            return None
        self._count += 1
        lag = self._clock() - deadline
        if lag <= MAX_LAG_S:
            return 0
        skipped = int(lag * self.rate) // self.frames
        self._count += skipped
        self.overruns += 1
        return skipped * self.frames
