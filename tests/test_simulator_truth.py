"""The simulator keeps its truth: ``azimuth_at(block.time)`` holds after a simulated day.

The clocks are patched, not waited for: the monotonic clock that paces the
buffers jumps half an hour at a time, and the wall clock drifts 10 ms a jump
against it (NTP slewing), as on a device that has been up for a day.
"""

from __future__ import annotations

import numpy as np

from appliance.capture.config import AudioConfig
from appliance.capture.sources.simulator import ROTATION_PERIOD_S, SimulatedArray

RATE, FRAMES = 48000, 4096
STEP_S = 1800.0 + 0.37  # odd, so the source is somewhere else at every step
WALL_DRIFT_S = 0.01
STEPS = 48  # a day
#: The estimator's own error (noise, and the simulator's linear-interpolation
#: delays) is under 2 degrees here; the day's 0.5 s of wall-clock drift, had
#: the stamps followed the wall clock, would be 9 degrees.
TOLERANCE_DEG = 2.5


def srp_azimuth(block: np.ndarray, geometry: np.ndarray, rate: int) -> float:
    """Direction of arrival (degrees, 0.1 degree steps) by steered response power,
    with pairwise cross-correlations read at fractional lags (linear interpolation)."""
    mics = block.astype(np.float64)
    mics -= mics.mean(axis=0)
    n = len(mics)
    spectra = np.fft.rfft(mics, 2 * n, axis=0)
    angles = np.radians(np.arange(0, 360, 0.1))
    units = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    power = np.zeros(len(angles))
    for i in range(geometry.shape[0]):
        for j in range(i + 1, geometry.shape[0]):
            xc = np.fft.irfft(spectra[:, i] * np.conj(spectra[:, j]), 2 * n)
            lags = (geometry[j] - geometry[i]) @ units.T / 343.0 * rate
            whole = np.floor(lags).astype(int)
            frac = lags - whole
            power += xc[whole] * (1 - frac) + xc[whole + 1] * frac
    return float(np.degrees(angles[int(np.argmax(power))]))


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 5_000.0

    def advance(self, seconds: float, drift: float) -> None:
        self.mono += seconds
        self.wall += seconds + drift


def test_the_rendered_direction_is_the_block_times_azimuth_after_a_day() -> None:
    clocks = Clocks()
    sim = SimulatedArray("respeaker-6mic", wall_clock=lambda: clocks.wall, monotonic=lambda: clocks.mono)
    sim.open(AudioConfig(RATE, 6, FRAMES, 80))
    geometry = np.array(sim.info.geometry)
    start_wall, start_mono = clocks.wall, clocks.mono
    errors = []
    try:
        for _ in range(STEPS):
            clocks.advance(STEP_S, WALL_DRIFT_S)
            block = sim.read()
            stamp = sim.capture_time()
            assert stamp is not None
            # The stamp is the sample clock: open time plus the frames since.
            assert abs(stamp - (start_wall + clocks.mono - start_mono)) < 2 * FRAMES / RATE
            truth = SimulatedArray.azimuth_at(stamp)
            estimate = srp_azimuth(np.asarray(block), geometry, RATE)
            errors.append((estimate - truth + 180) % 360 - 180)
    finally:
        sim.close()
    assert clocks.mono - start_mono > 86_400
    assert max(abs(e) for e in errors) < TOLERANCE_DEG, errors
    # The source really moved between steps: the test is not of one direction.
    assert len({round(SimulatedArray.azimuth_at(start_wall + k * STEP_S)) for k in range(STEPS)}) > 40
    assert ROTATION_PERIOD_S < STEP_S
    # Stamped from the wall clock when the read returned, the last block would be this far off:
    assert stamp is not None
    wall_error = (SimulatedArray.azimuth_at(clocks.wall) - SimulatedArray.azimuth_at(stamp) + 180) % 360 - 180
    assert abs(wall_error) > 3 * TOLERANCE_DEG
