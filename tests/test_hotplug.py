"""A real ALSA device that appears and disappears while the service runs.

The device is ALSA's `file` plugin defined in a test asoundrc; rewriting that
file makes it appear or vanish for alsa-lib, as plugging a USB array in does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("alsaaudio")

from appliance.capture.config import AudioConfig
from appliance.capture.sources.alsa import AlsaSource
from tests.alsa import AlsaConfig, use_test_config
from tests.capture_support import Recorder, running

CONFIG = AudioConfig(rate=48000, channels=2, buffer_frames=256, volume=80)


@pytest.fixture
def alsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AlsaConfig:
    return use_test_config(tmp_path, monkeypatch)


@pytest.fixture
def samples(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(11)
    data = rng.integers(-32768, 32768, size=(256 * 8, 2), dtype=np.int16)
    raw = tmp_path / "hotplug.raw"
    data.tofile(raw)
    return raw, data


def test_device_missing_at_start_is_opened_when_it_appears(
    alsa: AlsaConfig, samples: tuple[Path, np.ndarray]
) -> None:
    raw, data = samples
    rec = Recorder(keep=8)
    with running(AlsaSource("hotcap", formats=("S16_LE",)), rec, CONFIG):
        waiting = rec.wait_state("waiting")
        assert waiting.message.startswith(
            "waiting for the capture device: ALSA device hotcap is not available"
        )
        assert not rec.blocks
        alsa.add("hotcap", raw)  # plugged in
        running_status = rec.wait_state("running")
        rec.wait_blocks(8)
    assert running_status.config == CONFIG
    assert running_status.capabilities is not None
    assert 48000 in running_status.capabilities.rates
    got = np.concatenate([b.data for b in rec.blocks])
    assert np.array_equal(got, data)  # bit for bit, through the capture thread
    assert [b.seq for b in rec.blocks] == list(range(8))


def test_device_that_vanishes_is_waited_for_and_reopened(
    alsa: AlsaConfig, samples: tuple[Path, np.ndarray]
) -> None:
    raw, data = samples
    alsa.add("hotcap", raw)
    rec = Recorder(keep=8)
    with running(AlsaSource("hotcap", formats=("S16_LE",)), rec, CONFIG) as capture:
        rec.wait_state("running")
        alsa.remove("hotcap")  # unplugged: the next open fails
        capture.reconfigure(CONFIG)
        waiting = rec.wait_state("waiting")
        assert "ALSA device hotcap is not available" in waiting.message
        rec.clear_blocks()
        alsa.add("hotcap", raw)
        rec.wait_state("running", after=rec.statuses.index(waiting))
        rec.wait_blocks(8)
        assert np.array_equal(np.concatenate([b.data for b in rec.blocks]), data)
