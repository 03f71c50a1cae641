"""Capture from an ALSA device through pyalsaaudio.

The device is read in its native sample format (S16_LE, or S32_LE / S24_LE /
S24_3LE as many I2S boards deliver) and every sample becomes int16 by keeping
its top 16 bits.  The PCM is opened non-blocking and waited on with ``poll``
and a short timeout, so ``close`` from another thread ends a read promptly
and never frees the handle under a running ``snd_pcm_readi``.

Probing: formats and rates come from the device's hardware parameters
(``getformats``, ``getrates``); channel counts are found by opening the
device with each count up to :data:`MAX_PROBE_CHANNELS`, because ALSA plugins
advertise unbounded channel ranges that cannot be enumerated.

Volume drives every capture-volume control of the card when it has one;
otherwise it is the documented software gain of
:func:`appliance.capture.sources.base.software_gain` (80 is unity).

Block times (:meth:`AlsaSource.capture_time`) come from the frame count,
disciplined by :class:`appliance.capture.sampleclock.SampleClock` against
the device's status timestamp (``htimestamp``: when the hardware pointer last
moved, with the frames waiting then) less the frames still unread; a device
whose ring is always full (a plugin with no clock, such as ``file`` over
``null``) gives no such time and the read's return is used instead.

Overruns (the reader fell behind and ALSA dropped audio) are counted and
capture goes on; the block after one is re-anchored.  An unplugged device, or one that delivers nothing for
:data:`STALL_TIMEOUT_S` beyond a buffer's duration, raises SourceUnavailable.
"""

from __future__ import annotations

import logging
import math
import select
import threading
import time
from typing import Any

import alsaaudio
import numpy as np
from numpy.typing import NDArray

from appliance.capture.config import AudioConfig, Capabilities
from appliance.capture.sampleclock import SampleClock
from appliance.capture.sources.alsapcm import (
    FORMATS,
    alsa_format,
    card_model,
    enable_timestamps,
    observed_time,
    rates_within,
    to_int16,
)
from appliance.capture.sources.arrays import ArrayPreset
from appliance.capture.sources.base import SourceInfo, apply_gain, software_gain
from appliance.errors import ConfigError, SourceUnavailable

log = logging.getLogger(__name__)

#: Highest channel count tried when probing.
MAX_PROBE_CHANNELS = 64
#: Longest period asked of the device, in frames; larger buffers take several periods.
MAX_PERIOD_FRAMES = 1024
#: Fewest periods in the device's ring buffer.
PERIODS = 4
#: Ring buffer asked for, in seconds: room for the capture thread to read several
#: buffers per wake-up when nobody needs them at once (a device may give less).
RING_S = 0.25
#: Longest single wait in ``poll`` (seconds): bounds how late ``close`` is noticed.
POLL_TIMEOUT_S = 0.1
#: Silence beyond a buffer's duration after which the device counts as gone (seconds).
STALL_TIMEOUT_S = 2.0


def first_capture_device(prefix: str = "hw:") -> str | None:
    """The first capture device whose name starts with ``prefix`` (hardware:
    ``hw:CARD=...,DEV=...``), or None."""
    try:
        names = alsaaudio.pcms(alsaaudio.PCM_CAPTURE)
    except alsaaudio.ALSAAudioError as exc:
        log.debug("listing ALSA capture devices failed: %s", exc)
        return None
    return next((str(n) for n in names if str(n).startswith(prefix)), None)


class AlsaSource:
    """A :class:`~appliance.capture.sources.base.CaptureSource` on an ALSA PCM device."""

    def __init__(
        self, device: str, *, formats: tuple[str, ...] = tuple(FORMATS), array: ArrayPreset | None = None
    ) -> None:
        bad = [f for f in formats if f not in FORMATS]
        if bad or not formats:
            raise ConfigError(f"sample formats {bad} are not readable; use {', '.join(FORMATS)}")
        self.device = device
        self.formats = formats
        self.array = array
        """The array the user says is attached (the image's ARRAY_PRESET): its geometry for scripts."""
        self._lock = threading.Lock()
        self._pcm: Any = None
        self._mixers: list[Any] = []
        self._model = device
        self._format = formats[0]
        self._config: AudioConfig | None = None
        self._pending = bytearray()
        self._poll: select.poll | None = None
        self._gain = 1.0
        self._reading = False
        self._closing = False
        self._overruns = 0
        self._ring_frames = 0
        self._clock: SampleClock | None = None
        self._stamp: float | None = None
        self._stamped_overruns = 0

    @property
    def info(self) -> SourceInfo:
        if self.array is None:
            return SourceInfo(spec=f"alsa:{self.device}", kind="alsa", model=self._model)
        return SourceInfo(
            spec=f"alsa:{self.device}",
            kind="alsa",
            model=f"{self.array.model} ({self._model})",
            geometry=self.array.geometry,
            mic_channels=self.array.mic_channels,
        )

    @property
    def overruns(self) -> int:
        return self._overruns

    @property
    def holds_s(self) -> float:
        """The open device's ring buffer, in seconds (0 while closed)."""
        config = self._config
        return self._ring_frames / config.rate if config is not None else 0.0

    @property
    def sample_format(self) -> str:
        """The native format used (or to be used) for capture."""
        return self._format

    # -- probing ----------------------------------------------------------------
    def probe(self) -> Capabilities:
        """Formats, rates and channel counts the device accepts."""
        pcm = self._open_pcm(48000, 2, self.formats[0], 256)
        try:
            offered = dict(pcm.getformats())
            rates = rates_within(pcm.getrates())
            self._model = card_model(pcm) or self.device
        except alsaaudio.ALSAAudioError as exc:
            raise SourceUnavailable(f"ALSA device {self.device} cannot be probed: {exc}") from exc
        finally:
            pcm.close()
        usable = [f for f in self.formats if f in offered]
        if not usable:
            raise SourceUnavailable(
                f"ALSA device {self.device} offers formats {', '.join(offered)}; "
                f"this device reads {', '.join(self.formats)}"
            )
        self._format = usable[0]
        channels = self._probe_channels(rates)
        if not channels:
            raise SourceUnavailable(f"ALSA device {self.device} accepts no channel count")
        # The array the admin named has a shape of its own; a bare card is
        # opened with all its channels (Capabilities.native_config).
        native = self.array
        return Capabilities(
            rates,
            channels,
            has_mixer=bool(self._find_mixers()),
            native_rate=native.rate if native else None,
            native_channels=native.channels if native else None,
        )

    def _probe_channels(self, rates: tuple[int, ...]) -> tuple[int, ...]:
        rate = 48000 if 48000 in rates else rates[-1]
        found = []
        for count in range(1, MAX_PROBE_CHANNELS + 1):
            try:
                pcm = alsaaudio.PCM(
                    alsaaudio.PCM_CAPTURE,
                    alsaaudio.PCM_NONBLOCK,
                    device=self.device,
                    rate=rate,
                    channels=count,
                    format=alsa_format(self._format),
                    periodsize=256,
                )
            except alsaaudio.ALSAAudioError:
                continue
            if pcm.info()["channels"] == count:
                found.append(count)
            pcm.close()
        return tuple(found)

    def _find_mixers(self) -> list[Any]:
        """The card's capture-volume controls; empty for plugins and cards without one."""
        card = self._card_index()
        if card < 0:
            return []
        mixers: list[Any] = []
        try:
            for name in alsaaudio.mixers(cardindex=card):
                mixer = alsaaudio.Mixer(name, cardindex=card)
                caps = mixer.volumecap()
                if "Capture Volume" in caps or "Joined Capture Volume" in caps:
                    mixers.append(mixer)
                else:
                    mixer.close()
        except alsaaudio.ALSAAudioError as exc:
            log.debug("no capture mixer on card %d: %s", card, exc)
        return mixers

    def _card_index(self) -> int:
        try:
            pcm = self._open_pcm(48000, 2, self._format, 256)
        except SourceUnavailable:
            return -1
        try:
            return int(pcm.info()["card_no"])
        finally:
            pcm.close()

    # -- capture ------------------------------------------------------------------
    def open(self, config: AudioConfig) -> None:
        """Open the device with ``config`` in the native format; volume through the mixer."""
        mixers = self._find_mixers()
        period = min(config.buffer_frames, MAX_PERIOD_FRAMES)
        pcm = self._open_ring(config.rate, config.channels, period)
        got = pcm.info()
        wanted = (config.rate, config.channels, self._format)
        actual = (got["rate"], got["channels"], got["format_name"])
        if actual != wanted:
            pcm.close()
            for m in mixers:
                m.close()
            raise ConfigError(
                f"ALSA device {self.device} opened with rate {actual[0]}, {actual[1]} channels, "
                f"{actual[2]} instead of {wanted[0]}, {wanted[1]}, {wanted[2]}"
            )
        poll = select.poll()
        for fd, mask in pcm.polldescriptors():
            poll.register(fd, mask)
        with self._lock:
            self._release()
            self._pcm, self._mixers, self._poll, self._config = pcm, mixers, poll, config
            self._pending = bytearray()
            self._closing = False
            self._ring_frames = int(got["buffer_size"])
            self._clock = SampleClock(config.rate)
            self._stamp = None
            self._stamped_overruns = self._overruns
        enable_timestamps(pcm)
        self.set_volume(config.volume)
        log.debug("opened %s: %s, period %d frames", self.device, config, got["period_size"])

    def read(self) -> NDArray[np.int16]:
        """One buffer of ``config.buffer_frames`` frames as int16."""
        with self._lock:
            pcm, config = self._pcm, self._config
            if pcm is None or config is None or self._closing:
                raise SourceUnavailable(f"ALSA device {self.device} is closed")
            self._reading = True
        try:
            width, offset = FORMATS[self._format]
            need = config.buffer_frames * config.channels * width
            self._fill(pcm, need, config)
            raw = self._pending[:need]  # a copy of its own: the samples are a view of it
            del self._pending[:need]
            unread = len(self._pending) // (config.channels * width)
            observed = observed_time(pcm, self._ring_frames, config.rate, unread)
        finally:
            with self._lock:
                self._reading = False
                if self._closing:
                    self._release()
        clock = self._clock
        if clock is not None:
            lost = self._overruns != self._stamped_overruns
            self._stamped_overruns = self._overruns
            self._stamp = clock.stamp(config.buffer_frames, observed, lost)
        samples = to_int16(raw, width, offset).reshape(config.buffer_frames, config.channels)
        return apply_gain(samples, self._gain)

    def _fill(self, pcm: Any, need: int, config: AudioConfig) -> None:
        limit = config.buffer_frames / config.rate + STALL_TIMEOUT_S
        last_data = time.monotonic()
        while len(self._pending) < need:
            if self._closing:
                raise SourceUnavailable(f"ALSA device {self.device} was closed while reading")
            try:
                count, data = pcm.read()
            except alsaaudio.ALSAAudioError as exc:
                raise SourceUnavailable(f"ALSA device {self.device} stopped: {exc}") from exc
            if count < 0:
                self._overruns += 1
                log.debug("overrun on %s (%d so far)", self.device, self._overruns)
            elif count > 0:
                self._pending += data
                last_data = time.monotonic()
            else:
                if time.monotonic() - last_data > limit:
                    raise SourceUnavailable(f"ALSA device {self.device} delivered no audio for {limit:.1f} s")
                assert self._poll is not None
                self._poll.poll(POLL_TIMEOUT_S * 1000)

    def capture_time(self) -> float | None:
        """The capture time of the last frame of the buffer read last, from the frame count
        (see the module's docstring)."""
        return self._stamp

    @property
    def clock_steps(self) -> int:
        """Times this open's block times were re-anchored (overruns, clock steps)."""
        return self._clock.steps if self._clock is not None else 0

    def set_volume(self, volume: int) -> None:
        """Set every capture-volume control to ``volume`` percent, or the software gain."""
        with self._lock:
            mixers = list(self._mixers)
        for mixer in mixers:
            try:
                mixer.setvolume(volume, pcmtype=alsaaudio.PCM_CAPTURE)
            except alsaaudio.ALSAAudioError as exc:
                log.warning("setting capture volume on %s failed: %s", self.device, exc)
        self._gain = 1.0 if mixers else software_gain(volume)

    def close(self) -> None:
        """Close now, or as soon as a read in another thread notices."""
        with self._lock:
            self._closing = True
            if not self._reading:
                self._release()

    def _release(self) -> None:
        if self._pcm is not None:
            self._pcm.close()
            self._pcm = None
        for mixer in self._mixers:
            mixer.close()
        self._mixers = []
        self._poll = None

    def _open_ring(self, rate: int, channels: int, period: int) -> Any:
        """The PCM for capture, with a ring of about RING_S; of PERIODS periods if the device refuses it."""
        periods = max(PERIODS, math.ceil(RING_S * rate / period))
        try:
            return self._open_pcm(rate, channels, self._format, period, periods)
        except SourceUnavailable:
            if periods == PERIODS:
                raise
            return self._open_pcm(rate, channels, self._format, period)

    def _open_pcm(self, rate: int, channels: int, fmt: str, period: int, periods: int = PERIODS) -> Any:
        try:
            return alsaaudio.PCM(
                alsaaudio.PCM_CAPTURE,
                alsaaudio.PCM_NONBLOCK,
                device=self.device,
                rate=rate,
                channels=channels,
                format=alsa_format(fmt),
                periodsize=period,
                periods=periods,
            )
        except alsaaudio.ALSAAudioError as exc:
            raise SourceUnavailable(f"ALSA device {self.device} is not available: {exc}") from exc
