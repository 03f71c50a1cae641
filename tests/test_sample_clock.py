"""Block times from the frame count: exact steps, bounded against the read clock, re-anchored on loss.

The read clock is simulated here (patched, not waited for): a device whose
crystal runs fast or slow against the system, reads served late by a loaded
machine, an overrun, a stepped wall clock, a clockless burst.  The real
sources are tested through ALSA's file plugin and a WAV file in
tests/test_capture_timestamps.py.
"""

from __future__ import annotations

import numpy as np

from appliance.capture.sampleclock import AHEAD_S, BOUND_S, MAX_SLEW, SampleClock

RATE, FRAMES = 48000, 256
PERIOD = FRAMES / RATE
T0 = 1_800_000_000.0
EXACT = 1e-6  # float resolution of a wall-clock time near 1.8e9 s


def late_reads(n: int, seed: int = 1) -> np.ndarray:
    """How late each read returns: mostly a few ms, one in ten within 0.2 ms, some 40 ms."""
    rng = np.random.default_rng(seed)
    late = rng.exponential(0.004, n)
    prompt = rng.random(n) < 0.1
    late[prompt] = rng.uniform(0, 0.0002, int(prompt.sum()))
    late[rng.random(n) < 0.02] += 0.04
    return late


def run(blocks: int, ppm: float = 0.0, seed: int = 1) -> tuple[np.ndarray, np.ndarray, SampleClock]:
    """Stamps and true capture times for a device ``ppm`` fast against the system clock."""
    clock = SampleClock(RATE)
    truth = T0 + np.arange(1, blocks + 1) * PERIOD / (1 + ppm * 1e-6)
    observed = truth + late_reads(blocks, seed)
    stamps = np.array([clock.stamp(FRAMES, float(t)) for t in observed])
    return stamps, truth, clock


def test_stamps_advance_by_exactly_a_buffer_and_find_the_earliest_read() -> None:
    stamps, truth, clock = run(20_000)  # 107 s
    steps = np.diff(stamps)
    assert np.all(np.abs(steps - PERIOD) <= PERIOD * MAX_SLEW + EXACT)
    # Once settled (the first read anchors, late by its own delay), the stamps
    # are within the bound of the truth although reads are 4 ms late on average.
    settled = slice(len(stamps) // 2, None)
    assert np.max(np.abs(stamps[settled] - truth[settled])) <= BOUND_S
    assert clock.steps == 0
    assert not clock.slewing
    # Not slewing: exactly a buffer a block.
    assert np.all(np.abs(steps[-1000:] - PERIOD) <= EXACT)


def test_a_crystal_100_ppm_off_is_followed_within_the_bound() -> None:
    for ppm in (100.0, -100.0):
        stamps, truth, clock = run(60_000, ppm=ppm, seed=2)  # 5 minutes
        settled = slice(len(stamps) // 4, None)
        assert np.max(np.abs(stamps[settled] - truth[settled])) <= BOUND_S + 0.001, ppm
        assert np.all(np.abs(np.diff(stamps) - PERIOD) <= PERIOD * MAX_SLEW + EXACT)
        assert clock.steps == 0


def test_an_overrun_re_anchors_at_once() -> None:
    clock = SampleClock(RATE)
    t = T0
    for _ in range(500):
        t += PERIOD
        clock.stamp(FRAMES, t)
    t += 0.3 + PERIOD  # 0.3 s of audio lost in the device
    assert clock.stamp(FRAMES, t, lost=True) == t
    assert clock.steps == 1
    assert abs(clock.stamp(FRAMES, t + PERIOD + 0.003) - (t + PERIOD)) <= EXACT


def test_a_stepped_wall_clock_re_anchors() -> None:
    clock = SampleClock(RATE)
    t = T0
    for _ in range(100):
        t += PERIOD
        clock.stamp(FRAMES, t)
    t += PERIOD + 2.0  # NTP stepped the clock 2 s forward
    assert clock.stamp(FRAMES, t) == t
    assert clock.steps == 1


def test_a_stamp_never_lies_after_its_read_by_more_than_the_bound() -> None:
    # A device with no clock hands over 0.25 s at once, then keeps pace.
    clock = SampleClock(RATE)
    read_at = [T0 + 0.00001 * k for k in range(47)] + [T0 + 0.25 + PERIOD * k for k in range(1, 500)]
    stamps = [clock.stamp(FRAMES, t) for t in read_at]
    assert all(s <= t + AHEAD_S for s, t in zip(stamps, read_at, strict=True))
    assert clock.steps >= 1
    tail = np.diff(stamps[100:])
    assert np.all(np.abs(tail - PERIOD) <= PERIOD * MAX_SLEW + EXACT)
