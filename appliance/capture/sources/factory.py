"""Turn the ``--source`` text into a capture source.

``auto``          the ALSA hardware capture device when one is plugged in (also
                  later), else the simulator; unplugged, the array is waited for
``auto:sim``      the same, but an unplugged array gives way to the simulator
``alsa:DEVICE``   an ALSA PCM by name (``hw:1,0``, ``hw:CARD=ArrayUAC10,DEV=0``, ``plughw:1``)
``sim``           the simulator with the default array preset
``sim:PRESET``    the simulator with a named preset (see ``appliance.capture.sources.arrays``)
``wav:PATH``      a WAV file, looped and paced in real time
"""

from __future__ import annotations

import logging

from appliance.capture.sources.arrays import DEFAULT_PRESET, PRESETS
from appliance.capture.sources.base import CaptureSource
from appliance.capture.sources.simulator import SimulatedArray
from appliance.capture.sources.wavfile import WavSource
from appliance.errors import ConfigError

log = logging.getLogger(__name__)

USAGE = "auto, auto:sim, alsa:DEVICE, sim, sim:PRESET or wav:PATH"


def make_source(spec: str, preset: str | None = None) -> CaptureSource:
    """The source ``spec`` names; raises ConfigError for a spec it does not understand.

    ``preset`` names the array that is attached: the simulator renders it when
    ``spec`` names none, and an ALSA source reports its geometry to scripts.
    """
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"array preset {preset!r} is unknown; presets are {', '.join(PRESETS)}")
    kind, sep, arg = spec.strip().partition(":")
    if kind == "auto" and (not sep or arg == "sim"):
        return _auto(preset, fallback=bool(sep))
    if kind == "sim":
        name = arg if sep else preset or DEFAULT_PRESET
        if name not in PRESETS:
            raise ConfigError(f"array preset {name!r} is unknown; presets are {', '.join(PRESETS)}")
        return SimulatedArray(name)
    if kind == "alsa" and arg:
        return _alsa(arg, preset)
    if kind == "wav" and arg:
        return WavSource(arg)
    if kind in ("alsa", "wav"):
        raise ConfigError(
            f"source {spec!r} needs a {'device' if kind == 'alsa' else 'path'}: "
            f"use {kind}:{'DEVICE' if kind == 'alsa' else 'PATH'}"
        )
    raise ConfigError(f"source {spec!r} is not understood; use {USAGE} (presets: {', '.join(PRESETS)})")


def _alsa(device: str, preset: str | None) -> CaptureSource:
    # pyalsaaudio is optional (a laptop has no `device` extra): import it late.
    try:
        from appliance.capture.sources.alsa import AlsaSource  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError(f"source alsa:{device} needs pyalsaaudio (the 'device' extra): {exc}") from exc
    return AlsaSource(device, array=PRESETS[preset] if preset else None)


def _auto(preset: str | None, *, fallback: bool) -> CaptureSource:
    """An AutoSource that follows hotplug; the simulator alone without pyalsaaudio."""
    simulated = preset or DEFAULT_PRESET
    try:
        from appliance.capture.sources.auto import AutoSource  # noqa: PLC0415
    except ImportError:
        log.info("source auto: pyalsaaudio is not installed; using the simulator (sim:%s)", simulated)
        return SimulatedArray(simulated)
    source = AutoSource(preset, fallback=fallback)
    if source.find_device() is None:
        log.info("source auto: no ALSA capture device found; using the simulator (sim:%s)", simulated)
    return source
