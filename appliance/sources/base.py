"""The seam between the capture thread and whatever produces audio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from appliance.config import AudioConfig, Capabilities


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """How a source describes itself to users and to discovery."""

    spec: str
    """The ``--source`` text that selects it, e.g. ``alsa:hw:1`` or ``sim:respeaker-4mic``."""
    kind: str
    """``alsa``, ``sim`` or ``wav``."""
    model: str
    """A human name of the array or card."""
    geometry: tuple[tuple[float, float, float], ...] = ()
    """Microphone positions in metres, when known (simulator presets, known arrays)."""


class CaptureSource(Protocol):
    """A blocking producer of int16 buffers.

    The capture thread is the only caller.  ``read`` blocks until a whole
    buffer is there (real time for hardware, paced for files and the
    simulator) and raises :class:`appliance.errors.SourceUnavailable` when the
    device went away; the capture thread then closes it and probes again.
    """

    @property
    def info(self) -> SourceInfo: ...

    def probe(self) -> Capabilities:
        """What the device accepts; raises SourceUnavailable when it is not there."""
        ...

    def open(self, config: AudioConfig) -> None:
        """Start capturing with ``config`` (already validated against ``probe()``)."""
        ...

    def read(self) -> NDArray[np.int16]:
        """The next buffer, shaped ``(config.buffer_frames, config.channels)``."""
        ...

    def set_volume(self, volume: int) -> None:
        """Apply a 0-100 capture volume while open."""
        ...

    def close(self) -> None:
        """Stop capturing; safe to call twice or when never opened."""
        ...
