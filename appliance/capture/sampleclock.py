"""Block times from the frame count, disciplined against the read clock.

A block stamped when its read returns carries the reader's delay (a wake-up
late by a loaded machine, a batch read at once): tens of ms that wander, no
base for latency figures or for aligning devices.  The frames themselves are
the better clock: a device delivers exactly ``rate`` frames a second, so the
last frame of block *k* was captured at ``anchor + frames_k / rate``.  Only
the anchor, and the device crystal's drift against the system clock (up to
~100 ppm), come from outside.

Each read gives an *observation* of its block's capture time: the device's
status timestamp less the frames still waiting in its ring (ALSA), else the
wall-clock time the read returned.  An observation is never early, only late
by however long the read took to be served, so the earliest observations are
the truth:

- stamps advance by exactly ``frames / rate``;
- over each :data:`WINDOW_S` of audio the smallest offset between observation
  and frame count is found; when it is more than :data:`BOUND_S` from the
  offset in use, the stamps are *slewed* toward it, by at most
  :data:`MAX_SLEW` of the audio's duration (a block's step then differs from
  ``frames / rate`` by at most that fraction, 5 µs for 5 ms blocks);
- the stamps are *re-anchored* (set to the observation at once, counted in
  :attr:`SampleClock.steps`) when the source reports lost frames (an
  overrun), when a stamp would lie more than :data:`AHEAD_S` after its
  observation (audio cannot be read before it is captured: a device with no
  clock of its own delivering a burst), and when an observation is more than
  :data:`STEP_S` after its stamp (the wall clock was stepped, the device
  stalled without saying so).
"""

from __future__ import annotations

#: Deviation of the stamps from the earliest reads tolerated before slewing (seconds).
BOUND_S = 0.002
#: Fastest slew, as a fraction of the audio's duration (1000 ppm; crystals are good to ~100 ppm).
MAX_SLEW = 0.001
#: Audio over which the earliest observation is looked for (seconds).
WINDOW_S = 1.0
#: A stamp later than its observation by more than this re-anchors (seconds).
AHEAD_S = 0.02
#: An observation later than its stamp by more than this re-anchors (seconds).
STEP_S = 0.5


class SampleClock:
    """Wall-clock time of the last frame of each block of one open of a source."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._anchor: float | None = None
        """Wall-clock time of frame 0 by the frame count, before the slewed offset."""
        self._frames = 0
        self._offset = 0.0
        self._target = 0.0
        self._window_frames = 0
        self._window_best = float("inf")
        self.steps = 0
        """Times the stamps were re-anchored after the first (losses, bursts, clock steps)."""

    @property
    def slewing(self) -> bool:
        """True while the stamps are being moved toward the read clock."""
        return self._offset != self._target

    def stamp(self, frames: int, observed: float, lost: bool = False) -> float:
        """The capture time of the last frame of a block of ``frames`` frames just read.

        ``observed`` is the read clock's (never early) estimate of the same
        time; ``lost`` says the source lost audio just before this block.
        """
        self._frames += frames
        if self._anchor is None or lost:
            return self._reanchor(observed, first=self._anchor is None)
        counted = self._anchor + self._frames / self.rate
        late = observed - (counted + self._offset)
        if late < -AHEAD_S or late > STEP_S:
            return self._reanchor(observed)
        self._watch(observed - counted, frames)
        step = MAX_SLEW * frames / self.rate
        self._offset += max(-step, min(step, self._target - self._offset))
        return counted + self._offset

    def _watch(self, offset: float, frames: int) -> None:
        """Track the window's earliest read; at its end, aim the offset at it if it is far."""
        self._window_best = min(self._window_best, offset)
        self._window_frames += frames
        if self._window_frames < WINDOW_S * self.rate:
            return
        if abs(self._window_best - self._offset) > BOUND_S:
            self._target = self._window_best
        self._window_frames = 0
        self._window_best = float("inf")

    def _reanchor(self, observed: float, first: bool = False) -> float:
        if not first:
            self.steps += 1
        self._anchor = observed - self._frames / self.rate
        self._offset = self._target = 0.0
        self._window_frames = 0
        self._window_best = float("inf")
        return observed
