"""One captured buffer, as it travels from the capture thread to consumers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Block:
    """A buffer of int16 audio shaped ``(frames, channels)``.

    ``seq`` counts blocks since the capture was (re)opened and never repeats
    within one configuration; ``time`` is the wall-clock time (``time.time()``)
    at which the last frame of the buffer was captured.  The array is made
    read-only so consumers can share it without copying and none can change
    what another one sees.
    """

    seq: int
    time: float
    data: NDArray[np.int16]

    @classmethod
    def frozen(cls, seq: int, time: float, data: NDArray[np.int16]) -> Block:
        """Wrap ``data`` after making it read-only."""
        data.flags.writeable = False
        return cls(seq, time, data)

    @property
    def frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def channels(self) -> int:
        return int(self.data.shape[1])
