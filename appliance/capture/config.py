"""The audio configuration, its validation against a device, and its storage."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError
from appliance.storage import atomic_write_text

log = logging.getLogger(__name__)

#: Rates probed against the hardware, as the original board did.
STANDARD_RATES: tuple[int, ...] = (
    5512, 8000, 11025, 16000, 22050, 32000, 44100, 48000,
    64000, 88200, 96000, 176400, 192000,
)  # fmt: skip
MIN_BUFFER_FRAMES = 16
MAX_BUFFER_FRAMES = 16384
CONFIG_FILE = "audio.json"


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """What the whole device captures; one value shared by every client."""

    rate: int = 48000
    """Sample rate in Hz."""
    channels: int = 6
    """Number of interleaved channels in each buffer."""
    buffer_frames: int = 4096
    """Frames in each buffer handed to consumers."""
    volume: int = 80
    """Capture gain, 0-100 (mixer when the card has one, software gain otherwise)."""

    def to_json(self) -> dict[str, int]:
        return asdict(self)


#: The rate a device is opened at when it names none of its own.
PREFERRED_RATE = 48000


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a capture device accepts, as probed from it."""

    rates: tuple[int, ...]
    """Sample rates in Hz, ascending."""
    channels: tuple[int, ...]
    """Channel counts, ascending."""
    has_mixer: bool = False
    """True when volume drives a hardware capture mixer."""
    native_rate: int | None = None
    """The source's own rate (a preset's, a WAV file's), or None when it names none."""
    native_channels: int | None = None
    """The source's own channel count, or None for "as many as it accepts"."""

    def native_config(self) -> AudioConfig:
        """The source's own shape: all its channels at its own rate (else 48 kHz, else the nearest)."""
        rate = self.native_rate if self.native_rate in self.rates else None
        if rate is None:
            rate = PREFERRED_RATE if PREFERRED_RATE in self.rates else _nearest(self.rates, PREFERRED_RATE)
        channels = self.native_channels if self.native_channels in self.channels else max(self.channels)
        return AudioConfig(rate=rate, channels=channels)

    def default_config(self, preferred: AudioConfig | None = None) -> AudioConfig:
        """``preferred`` moved to the nearest accepted values; the native shape without one."""
        if preferred is None:
            return self.native_config()
        rate = preferred.rate if preferred.rate in self.rates else _nearest(self.rates, preferred.rate)
        channels = (
            preferred.channels
            if preferred.channels in self.channels
            else _nearest(self.channels, preferred.channels)
        )
        return replace(preferred, rate=rate, channels=channels)

    def describe(self) -> str:
        """What the device accepts, in words, for log lines."""
        unit = "channel" if self.channels == (1,) else "channels"
        return f"rates {_listing(self.rates)} Hz and {_span(self.channels)} {unit}"


def moved_config_message(source: str, wanted: AudioConfig, got: AudioConfig, caps: Capabilities) -> str:
    """The log line for a saved configuration that the source cannot take."""
    return (
        f"the saved configuration ({wanted.rate} Hz, {_channels(wanted.channels)}) does not suit {source}, "
        f"which accepts {caps.describe()}; capturing {got.rate} Hz, {_channels(got.channels)} instead"
    )


def _channels(count: int) -> str:
    return f"{count} channel" if count == 1 else f"{count} channels"


def _nearest(values: tuple[int, ...], target: int) -> int:
    return min(values, key=lambda v: (abs(v - target), -v))


def _span(values: tuple[int, ...]) -> str:
    if len(values) > 2 and values == tuple(range(values[0], values[-1] + 1)):
        return f"{values[0]} to {values[-1]}"
    return _listing(values)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def _listing(values: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in values)


def apply_change(
    current: AudioConfig,
    caps: Capabilities,
    *,
    rate: Any = None,
    channels: Any = None,
    buffer_frames: Any = None,
    volume: Any = None,
) -> AudioConfig:
    """Return ``current`` with the given fields changed, or raise ConfigError.

    ``None`` keeps a field.  Messages name the bad value and what is allowed.
    """
    new = current
    if rate is not None:
        r = _as_int("rate", rate)
        if r not in caps.rates:
            raise ConfigError(f"rate {r} is not supported; this device accepts {_listing(caps.rates)}")
        new = replace(new, rate=r)
    if channels is not None:
        c = _as_int("channels", channels)
        if c not in caps.channels:
            raise ConfigError(f"channels {c} is not supported; this device accepts {_listing(caps.channels)}")
        new = replace(new, channels=c)
    if buffer_frames is not None:
        b = _as_int("buffer_frames", buffer_frames)
        if not MIN_BUFFER_FRAMES <= b <= MAX_BUFFER_FRAMES:
            raise ConfigError(
                f"buffer_frames {b} is out of range; use {MIN_BUFFER_FRAMES} to {MAX_BUFFER_FRAMES}"
            )
        new = replace(new, buffer_frames=b)
    if volume is not None:
        v = _as_int("volume", volume)
        if not 0 <= v <= 100:
            raise ConfigError(f"volume {v} is out of range; use 0 to 100")
        new = replace(new, volume=v)
    return new


def load_config(data_dir: Path) -> AudioConfig | None:
    """The configuration saved in ``data_dir``, or None when there is none usable."""
    path = data_dir / CONFIG_FILE
    try:
        raw = json.loads(path.read_text())
        return AudioConfig(
            rate=_as_int("rate", raw["rate"]),
            channels=_as_int("channels", raw["channels"]),
            buffer_frames=_as_int("buffer_frames", raw["buffer_frames"]),
            volume=_as_int("volume", raw["volume"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None


def save_config(data_dir: Path, config: AudioConfig) -> None:
    """Write the configuration so that a power cut leaves the old or the new file."""
    atomic_write_text(data_dir / CONFIG_FILE, json.dumps(config.to_json(), indent=2) + "\n")
