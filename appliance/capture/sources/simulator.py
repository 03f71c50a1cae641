"""A virtual microphone array: a sound source circling a real array geometry.

The simulator renders one broadband source (band-limited noise, 200 Hz to
4 kHz) as a far-field plane wave arriving from an azimuth that turns
counter-clockwise once every :data:`ROTATION_PERIOD_S`, plus independent
sensor noise on every channel.  Each microphone hears the source earlier or
later by ``(position . direction) / speed of sound``, with fractional delays
by linear interpolation, so direction-of-arrival code sees true geometry.

The azimuth is a function of the **sample time**: the wall-clock time at
open (``time.time()``) plus the frames rendered since, divided by the rate.
The same sample time stamps each block (:meth:`SimulatedArray.capture_time`,
which the capture thread puts in :attr:`appliance.capture.block.Block.time`),
so ``azimuth_at(block.time)`` is the direction the block was rendered from
however long the simulator runs: a wall clock slewed by NTP, a late read or
a skipped stretch after a stall change nothing.  The direction is constant
within one rendered chunk (:data:`RENDER_FRAMES`, or one buffer when buffers
are longer) and is that of the chunk's last frame, so it is exact for
buffers of RENDER_FRAMES or more, and within 360 degrees x chunk length /
:data:`ROTATION_PERIOD_S` for smaller ones (0.8 degrees at 48 kHz).

Cost: the source signal is rendered once per ``open`` as one periodic
buffer, at :data:`FRACTIONS` fractional delays (linear interpolation between
samples); a chunk is one gather per microphone from that bank plus a slice
of a precomputed noise table, with no per-block FFT and no arithmetic on the
source per block.

Fault switches, for tests of the capture thread without hardware (like a
virtual printer with fault injection): :meth:`stall` makes ``read`` block
until :meth:`release`; :meth:`disappear` makes ``read``, ``open`` and
``probe`` raise SourceUnavailable until :meth:`reappear`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from appliance.capture.config import STANDARD_RATES, AudioConfig, Capabilities
from appliance.capture.sources.arrays import DEFAULT_PRESET, PROCESSED, ArrayPreset, get_preset
from appliance.capture.sources.base import SourceInfo, apply_gain, software_gain
from appliance.capture.sources.pacing import MAX_LAG_S, Pacer
from appliance.errors import ConfigError, SourceUnavailable

#: Seconds for the source to go once around the array.
ROTATION_PERIOD_S = 20.0
#: Azimuth (degrees, counter-clockwise from +x) at wall-clock time 0.
AZIMUTH_OFFSET_DEG = 0.0
SPEED_OF_SOUND_M_S = 343.0
#: Length of the periodic source signal and of the noise table, in seconds.
#: (The source is kept at FRACTIONS sub-sample shifts, 1.9 MB at 48 kHz: short, and
#: not a multiple of the noise table, so the two never repeat together.)
SIGNAL_S = 1.25
NOISE_S = 1.0
#: Source level and sensor noise level, RMS in int16 units.
SOURCE_RMS = 3000.0
NOISE_RMS = 60.0
#: Highest absolute value of the source signal, in int16 units.
PEAK = 24000.0
BAND_HZ = (200.0, 4000.0)
#: Frames rendered in one go; small buffers are served as slices of it, which
#: costs far less than rendering each one (the source moves < 1 degree in it).
RENDER_FRAMES = 2048
#: Fractional delays are rendered to 1/FRACTIONS of a sample (at most 1/16 of a
#: sample off: 1.3 µs at 48 kHz, under half a millimetre of path).
FRACTIONS = 8


class SimulatedArray:
    """A :class:`~appliance.capture.sources.base.CaptureSource` that needs no hardware."""

    def __init__(
        self,
        preset: ArrayPreset | str = DEFAULT_PRESET,
        *,
        seed: int = 1,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        self._seed = seed
        self._wall_clock = wall_clock
        """Anchors the sample time at open (tests pass a clock to simulate long spans)."""
        self._monotonic = monotonic
        """Paces the buffers."""
        self._served_time: float | None = None
        self._cond = threading.Condition()
        self._closed = True
        self._stalled = False
        self._missing = False
        self._render: _Renderer | None = None
        self._pacer: Pacer | None = None
        self._gain = 1.0
        self._lost = 0

    # -- CaptureSource ---------------------------------------------------------
    @property
    def info(self) -> SourceInfo:
        p = self.preset
        return SourceInfo(
            spec=f"sim:{p.name}",
            kind="sim",
            model=f"{p.model} (simulated)",
            geometry=p.geometry,
            mic_channels=p.mic_channels,
        )

    @property
    def overruns(self) -> int:
        with self._cond:
            return self._lost + (self._pacer.overruns if self._pacer else 0)

    @property
    def holds_s(self) -> float:
        """What the pacer lets the reader fall behind before it counts an overrun."""
        return MAX_LAG_S

    def probe(self) -> Capabilities:
        """Every standard rate and 1 to the preset's channel count; native: the preset's own."""
        with self._cond:
            self._check_present()
        p = self.preset
        return Capabilities(
            STANDARD_RATES, tuple(range(1, p.channels + 1)), native_rate=p.rate, native_channels=p.channels
        )

    def open(self, config: AudioConfig) -> None:
        """Render the source signal for ``config`` and start the clock."""
        if config.rate not in STANDARD_RATES:
            raise ConfigError(
                f"rate {config.rate} is not supported; the simulator accepts "
                f"{', '.join(map(str, STANDARD_RATES))}"
            )
        if not 1 <= config.channels <= self.preset.channels:
            raise ConfigError(
                f"channels {config.channels} is not supported; {self.preset.name} "
                f"accepts 1 to {self.preset.channels}"
            )
        render = _Renderer(self.preset, config, self._seed, 0.0)
        with self._cond:
            self._check_present()
            if self._pacer is not None:
                self._lost += self._pacer.overruns
            self._render = render
            self._served_time = None
            # Sample 0 is now on both clocks: read before the renderer was built (tens of
            # ms), the wall clock put every block's time that much before its deadline.
            render.start_time = self._wall_clock()
            self._pacer = Pacer(config.rate, config.buffer_frames, self._monotonic)
            self._gain = software_gain(config.volume)
            self._closed = False

    def read(self) -> NDArray[np.int16]:
        """The next buffer, at its real-time deadline."""
        with self._cond:
            if self._closed or self._render is None or self._pacer is None:
                raise SourceUnavailable("the simulator is closed")
            pacer, render = self._pacer, self._render
            while True:
                while self._stalled and not self._closed and not self._missing:
                    self._cond.wait()
                self._check_present()
                if self._closed:
                    raise SourceUnavailable("the simulator was closed while reading")
                skipped = pacer.wait(self._cond, self._interrupted)
                if skipped is not None:
                    break
            gain = self._gain
        render.skip(skipped)
        block = render.next_block()
        self._served_time = render.served_time
        return apply_gain(block, gain)

    def capture_time(self) -> float | None:
        """The sample time of the last frame of the buffer read last (see the module's docstring)."""
        return self._served_time

    def set_volume(self, volume: int) -> None:
        """Software gain: 80 is unity, 0.5 dB a step (see ``software_gain``)."""
        with self._cond:
            self._gain = software_gain(volume)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- the scene ---------------------------------------------------------------
    @staticmethod
    def azimuth_at(t: float) -> float:
        """The source's azimuth in degrees [0, 360) at wall-clock time ``t``
        (``time.time()``, as in ``Block.time``), counter-clockwise from +x."""
        return (AZIMUTH_OFFSET_DEG + 360.0 * t / ROTATION_PERIOD_S) % 360.0

    # -- fault switches ----------------------------------------------------------
    def stall(self) -> None:
        """Make ``read`` block (as a wedged driver does) until :meth:`release`."""
        with self._cond:
            self._stalled = True

    def release(self) -> None:
        """End a :meth:`stall`; the time lost shows as an overrun."""
        with self._cond:
            self._stalled = False
            self._cond.notify_all()

    def disappear(self) -> None:
        """Unplug: ``read`` raises SourceUnavailable, ``probe`` and ``open`` too."""
        with self._cond:
            self._missing = True
            self._cond.notify_all()

    def reappear(self) -> None:
        """Plug back in: ``probe`` and ``open`` work again."""
        with self._cond:
            self._missing = False

    def _interrupted(self) -> bool:
        return self._closed or self._missing or self._stalled

    def _check_present(self) -> None:
        if self._missing:
            raise SourceUnavailable(f"simulated {self.preset.name} is unplugged (fault switch)")


class _Renderer:
    """Per-open state: the periodic source signal, noise table and stream position.

    Work is channel-major: a block is gathered as (channels, frames) rows of
    contiguous samples, which keeps each block to a few small copies.  The
    sensor noise of every channel comes from one table read at offsets far
    apart (more than any inter-mic delay), so channels are uncorrelated where
    direction-of-arrival code looks.
    """

    def __init__(self, preset: ArrayPreset, config: AudioConfig, seed: int, start_time: float) -> None:
        self.start_time = start_time
        """Wall-clock time of sample 0."""
        self.rate = config.rate
        self.block_frames = config.buffer_frames
        self.per_chunk = max(1, RENDER_FRAMES // config.buffer_frames)
        self.frames = self.per_chunk * config.buffer_frames
        self.channels = config.channels
        self.ready: list[NDArray[np.int16]] = []
        rng = np.random.default_rng(seed)
        self.signal = _band_noise(rng, int(SIGNAL_S * self.rate), self.rate)
        # Pad so every gather of one block stays inside the array: the delay
        # offset is at most the array's span in samples plus one.
        span = max((math.dist(p, (0.0, 0.0, 0.0)) for p in preset.geometry), default=0.0)
        self.offset = math.ceil(span * self.rate / SPEED_OF_SOUND_M_S) + 1
        pad = self.frames + 2 * self.offset + 3
        padded = np.tile(self.signal, pad // len(self.signal) + 2)[: len(self.signal) + pad]
        # bank[k][j]: the signal k/FRACTIONS of a sample after sample j.
        step = np.diff(padded)
        bank = np.stack([padded[:-1] + np.float32(k / FRACTIONS) * step for k in range(FRACTIONS)])
        self.windows = sliding_window_view(bank, self.frames, axis=1)
        self.mic_rows = [ch for ch in preset.mic_channels if ch < self.channels]
        # Every channel a microphone, in order (the Pyramic): a plain add, not a
        # gather and scatter through an index list (a fifth of a chunk's cost).
        self.mic_rows_all = self.mic_rows == list(range(self.channels))
        self.mic_pos = np.array(
            [pos for ch, pos in preset.mics if ch < self.channels], dtype=np.float64
        ).reshape(-1, 3)
        self.processed = [ch for ch, role in preset.roles if role == PROCESSED and ch < self.channels]
        self.noise_len = max(int(NOISE_S * self.rate), self.frames)
        noise = rng.standard_normal(self.noise_len + self.frames) * NOISE_RMS
        self.noise_windows = sliding_window_view(noise.astype(np.float32), self.frames)
        self.noise_offsets = np.arange(self.channels) * (self.noise_len // self.channels)
        self.position = 0
        """Frames rendered (or skipped) so far."""
        self.served = 0
        """Frames up to the end of the last buffer handed out."""
        self.noise_at = 0

    @property
    def served_time(self) -> float:
        """Sample time of the last frame handed out."""
        return self.start_time + self.served / self.rate

    def skip(self, frames: int) -> None:
        if frames:
            # Buffers rendered but not handed out are lost with the skipped time.
            self.ready.clear()
            self.position += frames
            self.served = self.position

    def next_block(self) -> NDArray[np.int16]:
        """The next buffer; read-only slices of one rendered chunk share nothing else."""
        if not self.ready:
            chunk = self._render()
            b = self.block_frames
            self.ready = [chunk[k * b : (k + 1) * b] for k in range(self.per_chunk - 1, -1, -1)]
        self.served += self.block_frames
        return self.ready.pop()

    def _render(self) -> NDArray[np.int16]:
        out = self.noise_windows[(self.noise_offsets + self.noise_at) % self.noise_len]
        self.noise_at = (self.noise_at + self.frames * 7 + 1) % self.noise_len
        if self.mic_rows:
            end = self.start_time + (self.position + self.frames) / self.rate
            mics = self._mics(math.radians(SimulatedArray.azimuth_at(end)))
            if self.mic_rows_all:
                out += mics
            else:
                out[self.mic_rows] += mics
            for ch in self.processed:
                out[ch] += mics.mean(axis=0)
        self.position += self.frames
        # No clip: the source peaks below PEAK and the noise is small.
        return out.T.astype(np.int16, order="C")

    def _mics(self, azimuth: float) -> NDArray[np.float32]:
        """(mics, frames): the source as each microphone hears it."""
        direction = np.array([math.cos(azimuth), math.sin(azimuth), 0.0])
        # A mic nearer the source hears it earlier: it reads the signal ahead.
        # Not a matrix product: that would go through BLAS for 3 numbers.
        lead = (self.mic_pos * direction).sum(axis=1) * (self.rate / SPEED_OF_SOUND_M_S)
        lead += self.offset
        whole, fraction = np.divmod(np.rint(lead * FRACTIONS).astype(np.int64), FRACTIONS)
        starts = self.position % len(self.signal) + whole
        mics: NDArray[np.float32] = self.windows[fraction, starts]
        return mics


def _band_noise(rng: np.random.Generator, n: int, rate: int) -> NDArray[np.float32]:
    """Periodic noise of ``n`` samples limited to BAND_HZ, scaled to SOURCE_RMS."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    low, high = BAND_HZ[0], min(BAND_HZ[1], 0.45 * rate)
    spectrum[(freqs < low) | (freqs > high)] = 0.0
    signal = np.fft.irfft(spectrum, n)
    signal *= SOURCE_RMS / float(np.sqrt(np.mean(signal**2)))
    # Keep headroom for the processed channel and sensor noise, so blocks
    # never need clipping.
    signal *= min(1.0, PEAK / float(np.max(np.abs(signal))))
    return signal.astype(np.float32)
