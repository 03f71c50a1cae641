"""pyalsaaudio's PCM in the terms the ALSA source needs: formats, rates, card names, timestamps."""

from __future__ import annotations

import logging
import time
from typing import Any

import alsaaudio
import numpy as np
from numpy.typing import NDArray

from appliance.capture.config import STANDARD_RATES

log = logging.getLogger(__name__)

#: Native formats we read, by preference: name -> (bytes a sample, offset of the top 16 bits).
FORMATS: dict[str, tuple[int, int]] = {
    "S16_LE": (2, 0),
    "S32_LE": (4, 2),
    "S24_LE": (4, 1),  # 24 bits in the low three bytes of four
    "S24_3LE": (3, 1),
}


def observed_time(pcm: Any, ring_frames: int, rate: int, unread: int) -> float:
    """When the last frame just read was captured, by the device's status timestamp
    (``htimestamp``: when the hardware pointer last moved, and the frames waiting
    then), or the time now when the device gives none; ``unread`` frames were read
    past that frame and are kept for the next buffer."""
    now = time.time()
    try:
        sec, nsec, avail = pcm.htimestamp()
    except alsaaudio.ALSAAudioError:
        return now
    tstamp = sec + nsec * 1e-9
    # A full ring is an overrun or a device with no clock (its ring is always
    # full); a timestamp far from now is not of the wall clock: neither tells.
    if avail >= ring_frames or abs(tstamp - now) > 1.0:
        return now
    return float(tstamp - (avail + unread) / rate)


def enable_timestamps(pcm: Any) -> None:
    """Ask for status timestamps of the wall clock, as block times are; without them
    (an older alsa-lib) the read's return time is used."""
    try:
        pcm.set_tstamp_mode(alsaaudio.PCM_TSTAMP_ENABLE)
        pcm.set_tstamp_type(alsaaudio.PCM_TSTAMP_TYPE_GETTIMEOFDAY)
    except (alsaaudio.ALSAAudioError, AttributeError) as exc:
        log.debug("no status timestamps: %s", exc)


def alsa_format(name: str) -> int:
    """pyalsaaudio's constant for the sample format ``name``."""
    return int(getattr(alsaaudio, f"PCM_FORMAT_{name}"))


def rates_within(reported: Any) -> tuple[int, ...]:
    """Standard rates within what ``PCM.getrates()`` reported (a rate, a range or a list)."""
    if isinstance(reported, int):
        return (reported,)
    if isinstance(reported, tuple):
        low, high = reported
        return tuple(r for r in STANDARD_RATES if low <= r <= high)
    listed = sorted(int(r) for r in reported)
    standard = tuple(r for r in listed if r in STANDARD_RATES)
    return standard or tuple(listed)


def card_model(pcm: Any) -> str | None:
    """The name of the card behind ``pcm``, or None for a plugin."""
    card = int(pcm.info()["card_no"])
    if card < 0:
        return None
    try:
        return str(alsaaudio.card_name(card)[1])
    except alsaaudio.ALSAAudioError:
        return None


def to_int16(raw: bytes | bytearray, width: int, offset: int) -> NDArray[np.int16]:
    """The top 16 bits of each little-endian sample of ``width`` bytes (S16: a view of ``raw``)."""
    if width == 2:
        return np.frombuffer(raw, dtype="<i2")
    if width == 4 and offset == 2:
        return (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    as_bytes = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width)
    return as_bytes[:, offset : offset + 2].copy().view("<i2").reshape(-1)
