"""``auto`` follows hotplug with a real ALSA device (the `file` plugin) appearing and going.

The device list is the real one alsa-lib reads (``alsaaudio.pcms``); only the
name prefix that counts as an array is the test device's own.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("alsaaudio")

from appliance.capture.block import Block
from appliance.capture.config import AudioConfig
from appliance.capture.sources import auto
from appliance.capture.sources.alsa import first_capture_device
from appliance.capture.sources.auto import AutoSource
from tests.alsa import AlsaConfig, use_test_config
from tests.capture_support import Recorder, running

CONFIG = AudioConfig(rate=48000, channels=2, buffer_frames=256, volume=80)
NAME = "autocap"


@pytest.fixture
def alsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AlsaConfig:
    monkeypatch.setattr(auto, "HOTPLUG_CHECK_S", 0.05)
    return use_test_config(tmp_path, monkeypatch)


@pytest.fixture
def raw(tmp_path: Path) -> tuple[Path, np.ndarray]:
    # 10 s of audio: the array must not reach its end (and give way again) before the
    # test has looked at its first blocks, however loaded the machine.
    data = np.random.default_rng(3).integers(-32768, 32768, size=(256 * 1875, 2), dtype=np.int16)
    path = tmp_path / "array.raw"
    data.tofile(path)
    return path, data


def source(fallback: bool) -> AutoSource:
    return AutoSource("usb-stereo", fallback=fallback, find_device=lambda: first_capture_device(NAME))


def plug_in_after_start(alsa: AlsaConfig, raw: tuple[Path, np.ndarray], rec: Recorder) -> None:
    path, data = raw
    first = rec.wait_state("running")
    assert first.source.kind == "sim"
    alsa.add(NAME, path)  # plugged in after the service started
    gave_way = rec.wait_state("waiting")
    assert gave_way.message.endswith(f"ALSA capture device {NAME} appeared; the simulator gives way")
    on_array = rec.wait_state("running", rec.statuses.index(gave_way))
    assert on_array.source.kind == "alsa" and on_array.source.spec == f"alsa:{NAME}"

    begins = rec.blocks_before[rec.statuses.index(on_array)]

    def array_blocks() -> list[Block]:
        # Every block after the array's "running" is the array's (the simulator's came before).
        return rec.blocks[begins:]

    rec.wait_for(lambda: len(array_blocks()) >= 8)
    got = np.concatenate([b.data for b in array_blocks()[:8]])
    assert np.array_equal(got, data[: 8 * 256]), "the array's samples, bit for bit"


def test_an_array_plugged_in_later_replaces_the_simulator_and_is_waited_for_when_unplugged(
    alsa: AlsaConfig, raw: tuple[Path, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(keep=20000)
    with caplog.at_level(logging.INFO), running(source(fallback=False), rec, CONFIG) as capture:
        plug_in_after_start(alsa, raw, rec)
        after = len(rec.statuses)
        alsa.remove(NAME)  # unplugged: the next open fails
        capture.reconfigure(CONFIG)
        waiting = rec.wait_state("waiting", after)
        assert f"ALSA device {NAME} is not available" in waiting.message
        assert waiting.message.endswith(
            "waiting for it (with --source auto:sim the simulator would take over)"
        )
        assert all(s.source.kind == "alsa" for s in rec.statuses[after:])
    assert f"source auto: ALSA capture device {NAME} appeared; the simulator gives way" in caplog.messages


def test_with_auto_sim_an_unplugged_array_gives_way_to_the_simulator(
    alsa: AlsaConfig, raw: tuple[Path, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(keep=20000)
    with caplog.at_level(logging.INFO), running(source(fallback=True), rec, CONFIG) as capture:
        plug_in_after_start(alsa, raw, rec)
        after = len(rec.statuses)
        alsa.remove(NAME)
        capture.reconfigure(CONFIG)
        rec.wait_for(
            lambda: any(s.state == "running" and s.source.kind == "sim" for s in rec.statuses[after:])
        )
    assert (
        f"source auto: {NAME} is gone; the simulator (sim:usb-stereo) takes over until an array is plugged in"
        in caplog.messages
    )
