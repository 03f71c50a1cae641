"""Clock drift compensation between the sender's sound clock and the local sound card.

Two crystals never agree exactly: a device 50 ppm fast sends 2.4 frames a
second more than a laptop's card plays, and over an hour the queue between
them would grow by 8640 frames (180 ms).  The compensator watches how full
the playback queue is and resamples by a tiny ratio to keep it at its target.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

MAX_CORRECTION = 0.002
"""Largest resampling correction (2000 ppm): inaudible, far above real crystal drift."""
GAIN_P = 2e-7
"""Proportional gain: correction per frame of queue error."""
GAIN_I = 2e-10
"""Integral gain: correction per frame of queue error per frame played."""


class DriftCompensator:
    """Resamples blocks so that the playback queue stays near ``target_frames``."""

    def __init__(self, target_frames: int) -> None:
        self.target = target_frames
        self.ratio = 1.0
        """Input frames consumed per output frame (above 1: the sender runs fast)."""
        self._integral = 0.0
        self._pos = 0.0
        self._last: NDArray[np.float64] | None = None

    def update(self, queued_frames: int, frames: int) -> float:
        """Adjust the ratio for the current queue fill; ``frames`` just arrived."""
        error = queued_frames - self.target
        self._integral += error * frames
        correction = GAIN_P * error + GAIN_I * self._integral
        limit = MAX_CORRECTION
        if abs(correction) > limit:
            # Anti-windup: do not keep integrating while saturated.
            self._integral -= error * frames
            correction = max(-limit, min(limit, correction))
        self.ratio = 1.0 + correction
        return self.ratio

    def process(self, block: NDArray[np.int16]) -> NDArray[np.int16]:
        """``block`` resampled by the current ratio, continuous with the previous block."""
        data = block.astype(np.float64)
        if self._last is not None:
            data = np.concatenate([self._last, data])
            start = self._pos
        else:
            start = 0.0
        positions = np.arange(start, data.shape[0] - 1, self.ratio)
        if positions.size == 0:
            self._last = data[-1:]
            self._pos = start - (data.shape[0] - 1)
            return np.zeros((0, block.shape[1]), dtype=np.int16)
        base = positions.astype(np.intp)
        frac = (positions - base)[:, None]
        out = data[base] * (1.0 - frac) + data[base + 1] * frac
        self._pos = positions[-1] + self.ratio - (data.shape[0] - 1)
        self._last = data[-1:]
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)
