"""``--source auto``: the array when one is plugged in, the simulator otherwise.

The choice is not made once at start.  While the simulator runs, the ALSA
device list is looked at every :data:`HOTPLUG_CHECK_S`; when a hardware
capture device appears, the simulator gives way (one log line and the
capture status say so) and the device is opened, in its own shape unless
the admin saved another configuration.

When the array goes away, what happens is the admin's choice:

``auto``      wait for the array (status ``waiting``, with the reason), as a
              device that has one array attached should;
``auto:sim``  fall back to the simulator until an array is plugged in again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from appliance.capture.config import AudioConfig, Capabilities
from appliance.capture.sources.alsa import AlsaSource, first_capture_device
from appliance.capture.sources.arrays import DEFAULT_PRESET, PRESETS
from appliance.capture.sources.base import CaptureSource, SourceInfo
from appliance.capture.sources.simulator import SimulatedArray
from appliance.errors import SourceUnavailable

log = logging.getLogger(__name__)

#: Seconds between two looks at the ALSA device list while the simulator runs.
HOTPLUG_CHECK_S = 1.0


class AutoSource:
    """A :class:`~appliance.capture.sources.base.CaptureSource` that follows hotplug."""

    def __init__(
        self,
        preset: str | None = None,
        *,
        fallback: bool = False,
        find_device: Callable[[], str | None] = first_capture_device,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._preset = preset
        self._fallback = fallback
        self._find = find_device
        self._clock = clock
        self._sim = SimulatedArray(preset or DEFAULT_PRESET)
        self._alsa: AlsaSource | None = None
        self._current: CaptureSource = self._sim
        self._checked = clock()
        self._lost = 0

    @property
    def info(self) -> SourceInfo:
        return self._current.info

    def find_device(self) -> str | None:
        """The ALSA capture device ``auto`` would use now, or None."""
        return self._find()

    @property
    def overruns(self) -> int:
        alsa = self._alsa.overruns if self._alsa is not None else 0
        return self._lost + self._sim.overruns + alsa

    @property
    def holds_s(self) -> float:
        return self._current.holds_s

    def probe(self) -> Capabilities:
        """The array's capabilities when one is there, else the simulator's (see the module)."""
        if self._alsa is not None:
            try:
                caps = self._alsa.probe()
            except SourceUnavailable as exc:
                if not self._fallback:
                    raise self._gone(exc) from exc
                log.warning(
                    "source auto: %s is gone; the simulator (sim:%s) takes over until an array is plugged in",
                    self._alsa.device,
                    self._sim.preset.name,
                )
                self._drop_alsa()
            else:
                self._current = self._alsa
                return caps
        device = self._find()
        if device is not None:
            alsa = AlsaSource(device, array=PRESETS[self._preset] if self._preset else None)
            try:
                caps = alsa.probe()
            except SourceUnavailable as exc:
                log.info("source auto: ALSA capture device %s is listed but cannot be used: %s", device, exc)
            else:
                self._alsa, self._current = alsa, alsa
                log.info("source auto: using ALSA capture device %s", device)
                return caps
        self._current = self._sim
        self._checked = self._clock()
        return self._sim.probe()

    def open(self, config: AudioConfig) -> None:
        try:
            self._current.open(config)
        except SourceUnavailable as exc:
            if self._current is self._alsa:
                raise self._gone(exc) from exc
            raise

    def _gone(self, exc: SourceUnavailable) -> SourceUnavailable:
        if self._fallback:
            return SourceUnavailable(f"{exc}; the simulator takes over")
        return SourceUnavailable(
            f"{exc}; waiting for it (with --source auto:sim the simulator would take over)"
        )

    def read(self) -> NDArray[np.int16]:
        """The current source's next buffer; while simulating, ends when an array appears."""
        data = self._current.read()
        if self._current is self._sim and self._clock() - self._checked >= HOTPLUG_CHECK_S:
            self._checked = self._clock()
            device = self._find()
            if device is not None:
                log.info("source auto: ALSA capture device %s appeared; the simulator gives way", device)
                raise SourceUnavailable(f"ALSA capture device {device} appeared; the simulator gives way")
        return data

    def capture_time(self) -> float | None:
        return self._current.capture_time()

    def set_volume(self, volume: int) -> None:
        self._current.set_volume(volume)

    def close(self) -> None:
        # Both: close may come from another thread while the current one changes.
        self._sim.close()
        if self._alsa is not None:
            self._alsa.close()

    def _drop_alsa(self) -> None:
        if self._alsa is not None:
            self._lost += self._alsa.overruns
            self._alsa.close()
        self._alsa = None
