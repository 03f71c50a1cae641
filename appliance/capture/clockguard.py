"""Notice a source that delivers audio faster than real time, and pace it.

Hardware delivers a buffer when it has been captured, so over any span it
hands over at most that span's frames plus what its ring buffer held.  A
device with no clock of its own (ALSA's ``file`` plugin over ``null``, a
misconfigured loopback) returns every read at once: unpaced, it floods
everything downstream.  The guard counts the frames read against the
monotonic clock and says how long to wait so that the source runs at its
nominal rate.

Slack: a burst of :data:`BURST_S` (a device's ring buffer, a catch-up after
the reader stalled) is always allowed, and a clock up to :data:`DRIFT` fast
against the system's (crystals are good to ~100 ppm) is never held back.
A source that fell behind (a stall, an overrun) may not make up for more
than :data:`MAX_BEHIND_S` at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

BURST_S = 0.25
DRIFT = 0.001
MAX_BEHIND_S = 1.0


class ClockGuard:
    """Frames read so far against the monotonic clock, for one open of a source."""

    def __init__(self, rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._start: float | None = None
        self._frames = 0
        self.paced = False
        """True once the source was found ahead of real time and made to wait."""

    def wait_after(self, frames: int) -> float:
        """Seconds to wait before the next read, now that ``frames`` more were read."""
        now = self._clock()
        if self._start is None:
            # The first buffer was captured just now: it ends at ``now``.
            self._start = now - frames / self.rate
        self._frames += frames
        ahead = self._start + self._frames / self.rate - now
        if ahead < -MAX_BEHIND_S:
            self._start -= ahead + MAX_BEHIND_S
            return 0.0
        allowed = BURST_S + DRIFT * (now - self._start)
        if ahead <= allowed:
            return 0.0
        self.paced = True
        return ahead - allowed
