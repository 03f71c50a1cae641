"""Drift compensation between two sound clocks, on a simulated timeline.

The sender's clock runs a few hundred ppm off the local card's; blocks come
in at the sender's pace and the card takes frames at its own.  Without the
compensator the queue would grow or drain without bound; with it, the queue
stays near its target and the ratio settles at the clocks' true ratio.
"""

from __future__ import annotations

import numpy as np
import pytest

from rtai.drift import DriftCompensator

RATE = 48000
BLOCK = 480


@pytest.mark.parametrize("ppm", [-300.0, 0.0, 150.0, 500.0])
def test_queue_stays_at_target_and_ratio_matches_the_clocks(ppm: float) -> None:
    target = 2400
    comp = DriftCompensator(target)
    queued = target
    card_rate = RATE * (1 - ppm * 1e-6)  # the card is slower when the sender is fast
    played = 0.0
    block = np.tile(np.arange(BLOCK, dtype=np.int16)[:, None], (1, 2))
    fills, ratios = [], []
    for i in range(120 * RATE // BLOCK):  # two simulated minutes of 10 ms blocks
        ratios.append(comp.update(queued, BLOCK))
        queued += comp.process(block).shape[0]
        should_have_played = (i + 1) * BLOCK / RATE * card_rate
        take = int(should_have_played - played)
        played += take
        queued -= take
        fills.append(queued)
    half = len(fills) // 2
    assert max(abs(f - target) for f in fills[half:]) < 200
    assert float(np.mean(ratios[half:])) == pytest.approx(1 + ppm * 1e-6, abs=20e-6)


def test_no_drift_passes_samples_through_unchanged() -> None:
    comp = DriftCompensator(1000)
    data = np.random.default_rng(2).integers(-30000, 30000, (4800, 3)).astype(np.int16)
    out = np.concatenate([comp.process(data[i : i + 480]) for i in range(0, 4800, 480)])
    assert np.array_equal(out, data[: out.shape[0]])
    assert out.shape[0] == 4799  # one frame held back for interpolation
