"""The seam between the capture thread and whatever produces audio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from appliance.capture.config import AudioConfig, Capabilities


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
    mic_channels: tuple[int, ...] = ()
    """The channel index of each ``geometry`` entry; other channels are not raw
    microphones (a processed mix, a playback loopback)."""

    def channel_geometry(self) -> list[list[float] | None] | None:
        """Microphone position per channel (None for a processed or loopback channel), or None."""
        if not self.geometry:
            return None
        channels = self.mic_channels or tuple(range(len(self.geometry)))
        out: list[list[float] | None] = [None] * (max(channels) + 1)
        for channel, position in zip(channels, self.geometry, strict=True):
            out[channel] = list(position)
        return out


class CaptureSource(Protocol):
    """A blocking producer of int16 buffers.

    The capture thread is the only caller.  ``read`` blocks until a whole
    buffer is there (real time for hardware, paced for files and the
    simulator) and raises :class:`appliance.errors.SourceUnavailable` when the
    device went away; the capture thread then closes it and probes again.
    """

    @property
    def info(self) -> SourceInfo: ...

    @property
    def overruns(self) -> int:
        """Buffers lost because the reader fell behind, since the source was made."""
        ...

    @property
    def holds_s(self) -> float:
        """Seconds of audio the open source keeps while it is not read, before it
        overruns (a device's ring buffer); the capture thread's batching stays within half."""
        ...

    def probe(self) -> Capabilities:
        """What the device accepts; raises SourceUnavailable when it is not there."""
        ...

    def open(self, config: AudioConfig) -> None:
        """Start capturing with ``config`` (already validated against ``probe()``)."""
        ...

    def read(self) -> NDArray[np.int16]:
        """The next buffer, shaped ``(config.buffer_frames, config.channels)``."""
        ...

    def capture_time(self) -> float | None:
        """Wall-clock time of the last frame of the buffer ``read`` returned last, from the
        source's own sample clock; None when it has none, and the capture thread stamps the
        block when the read returns."""
        ...

    def set_volume(self, volume: int) -> None:
        """Apply a 0-100 capture volume while open."""
        ...

    def close(self) -> None:
        """Stop capturing; safe to call twice or when never opened.

        May be called from another thread while ``read`` blocks: ``read`` then
        returns promptly by raising SourceUnavailable.
        """
        ...


#: Volume that leaves samples untouched in software gain.
UNITY_VOLUME = 80
#: Software gain step per volume unit, in dB.
GAIN_DB_PER_STEP = 0.5


def software_gain(volume: int) -> float:
    """The linear factor for a 0-100 volume when the device has no capture mixer.

    80 (the default) is unity, each step is 0.5 dB (100 is +10 dB, 1 is
    -39.5 dB) and 0 mutes.
    """
    if volume <= 0:
        return 0.0
    return float(10.0 ** ((volume - UNITY_VOLUME) * GAIN_DB_PER_STEP / 20.0))


def apply_gain(data: NDArray[np.int16], gain: float) -> NDArray[np.int16]:
    """``data`` scaled by ``gain`` and clipped to int16; ``data`` itself when gain is 1."""
    if gain == 1.0:
        return data
    scaled = data.astype(np.float32) * np.float32(gain)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)
