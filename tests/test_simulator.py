"""The simulated array: shapes, pacing, true geometry, fault switches."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from appliance.capture.config import STANDARD_RATES, AudioConfig
from appliance.capture.sources import pacing, simulator
from appliance.capture.sources.arrays import DEFAULT_PRESET, PRESETS, get_preset
from appliance.capture.sources.simulator import SPEED_OF_SOUND_M_S, SimulatedArray
from appliance.errors import ConfigError, SourceUnavailable


@pytest.fixture
def sim() -> Iterator[SimulatedArray]:
    source = SimulatedArray("respeaker-6mic")
    yield source
    source.close()


def fix_azimuth(monkeypatch: pytest.MonkeyPatch, degrees: float) -> None:
    """Hold the source still at ``degrees`` (a rotation that takes ages)."""
    monkeypatch.setattr(simulator, "ROTATION_PERIOD_S", 1e18)
    monkeypatch.setattr(simulator, "AZIMUTH_OFFSET_DEG", degrees)


def test_presets_are_consistent() -> None:
    assert DEFAULT_PRESET in PRESETS
    assert PRESETS["pyramic"].channels == 48 and len(PRESETS["pyramic"].geometry) == 48
    assert PRESETS["respeaker-6mic"].mic_channels == (0, 1, 2, 3, 4, 5)
    assert PRESETS["minidsp-uma8"].mic_channels == (1, 2, 3, 4, 5, 6, 7)
    for preset in PRESETS.values():
        assert len(preset.geometry) <= preset.channels
        assert all(0 <= ch < preset.channels for ch in preset.mic_channels)
        assert len(set(preset.mic_channels)) == len(preset.mic_channels)
        spans = [max(abs(c) for c in pos) for pos in preset.geometry]
        assert max(spans) < 0.25  # metres: a board, not a room
    ring = np.array(PRESETS["respeaker-4mic"].geometry)
    assert np.allclose(np.hypot(ring[:, 0], ring[:, 1]), 0.0405)
    with pytest.raises(KeyError, match="'nope' is unknown; presets are respeaker-4mic"):
        get_preset("nope")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_block_shape_and_type_for_every_preset(name: str) -> None:
    source = SimulatedArray(name)
    caps = source.probe()
    assert caps.rates == STANDARD_RATES
    assert caps.channels == tuple(range(1, PRESETS[name].channels + 1))
    assert source.info.geometry == PRESETS[name].geometry
    for channels in (1, max(caps.channels)):
        source.open(AudioConfig(rate=96000, channels=channels, buffer_frames=64))
        block = source.read()
        assert block.shape == (64, channels)
        assert block.dtype == np.int16
        assert block.any()
    source.close()


def test_bad_config_is_refused_with_what_is_allowed(sim: SimulatedArray) -> None:
    with pytest.raises(ConfigError, match="rate 12345 is not supported; the simulator accepts 5512"):
        sim.open(AudioConfig(rate=12345))
    with pytest.raises(ConfigError, match="channels 9 is not supported; respeaker-6mic accepts 1 to 8"):
        sim.open(AudioConfig(channels=9))


def test_blocks_come_no_faster_than_real_time(sim: SimulatedArray) -> None:
    sim.open(AudioConfig(rate=16000, channels=2, buffer_frames=800))  # 50 ms a block
    start = time.monotonic()
    count = 0
    while time.monotonic() - start < 0.4:
        sim.read()
        count += 1
    assert count <= 10  # 8 in 0.4 s of audio, plus the one that ends the window


def test_loopback_channels_are_silent(sim: SimulatedArray) -> None:
    sim.open(AudioConfig(rate=16000, channels=8, buffer_frames=256))
    block = sim.read()
    assert block[:, :6].std(axis=0).min() > 1000
    assert np.abs(block[:, 6:]).max() < 500  # sensor noise only


def lag_of(a: np.ndarray, b: np.ndarray, max_lag: int) -> int:
    """The lag k (|k| <= max_lag) maximising sum a[n] * b[n + k]: b is later by k."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    n = len(a) - 2 * max_lag
    scores = [
        float(np.dot(a[max_lag : max_lag + n], b[max_lag + k : max_lag + k + n]))
        for k in range(-max_lag, max_lag + 1)
    ]
    return int(np.argmax(scores)) - max_lag


@pytest.mark.parametrize("azimuth", [0.0, 90.0, 200.0])
def test_inter_mic_delays_follow_the_geometry(monkeypatch: pytest.MonkeyPatch, azimuth: float) -> None:
    fix_azimuth(monkeypatch, azimuth)
    source = SimulatedArray("respeaker-6mic")
    rate = 48000
    source.open(AudioConfig(rate=rate, channels=6, buffer_frames=4096))
    block = source.read()
    source.close()
    assert SimulatedArray.azimuth_at(time.time()) == pytest.approx(azimuth, abs=1e-3)
    pos = np.array(source.preset.geometry)
    direction = np.array([np.cos(np.radians(azimuth)), np.sin(np.radians(azimuth)), 0.0])
    lead = pos @ direction / SPEED_OF_SOUND_M_S * rate  # samples each mic hears early
    for i, j in [(0, 3), (1, 4), (2, 5), (0, 1)]:
        expected = lead[i] - lead[j]  # mic j hears it `expected` samples after mic i
        got = lag_of(block[:, i], block[:, j], 20)
        assert abs(got - expected) <= 1.0, (i, j, got, expected)
        if abs(expected) > 2:
            assert np.sign(got) == np.sign(expected)


def test_the_source_moves_around() -> None:
    t = 1_000_000.0
    a = SimulatedArray.azimuth_at(t)
    b = SimulatedArray.azimuth_at(t + simulator.ROTATION_PERIOD_S / 4)
    assert (b - a) % 360 == pytest.approx(90.0)
    assert SimulatedArray.azimuth_at(t + simulator.ROTATION_PERIOD_S) == pytest.approx(a)


def test_volume_is_a_software_gain(sim: SimulatedArray) -> None:
    sim.open(AudioConfig(rate=16000, channels=2, buffer_frames=256, volume=80))
    normal = sim.read()
    sim.set_volume(0)
    assert not sim.read().any()
    sim.set_volume(60)  # -10 dB
    quiet = sim.read()
    ratio = quiet.astype(float).std() / normal.astype(float).std()
    assert ratio == pytest.approx(10 ** (-10 / 20), rel=0.2)


def read_in_thread(source: SimulatedArray) -> tuple[threading.Thread, dict[str, object]]:
    result: dict[str, object] = {}
    done = threading.Event()

    def run() -> None:
        try:
            result["block"] = source.read()
        except SourceUnavailable as exc:
            result["error"] = exc
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    result["done"] = done
    return thread, result


def test_stall_blocks_until_released_and_counts_an_overrun(
    sim: SimulatedArray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacing, "MAX_LAG_S", 0.05)
    sim.open(AudioConfig(rate=16000, channels=2, buffer_frames=160))
    sim.read()
    sim.stall()
    thread, result = read_in_thread(sim)
    done = result["done"]
    assert isinstance(done, threading.Event)
    assert not done.wait(0.3)  # still stuck, as a wedged driver would be
    sim.release()
    assert done.wait(5)
    thread.join()
    assert "block" in result
    sim.read()
    assert sim.overruns >= 1


def test_close_ends_a_stalled_read(sim: SimulatedArray) -> None:
    sim.open(AudioConfig(rate=16000, channels=2, buffer_frames=160))
    sim.stall()
    thread, result = read_in_thread(sim)
    sim.close()
    thread.join(5)
    assert not thread.is_alive()
    assert "closed" in str(result["error"])


def test_disappear_and_reappear(sim: SimulatedArray) -> None:
    sim.open(AudioConfig(rate=16000, channels=2, buffer_frames=1600))
    thread, result = read_in_thread(sim)
    sim.disappear()
    thread.join(5)
    assert str(result["error"]) == "simulated respeaker-6mic is unplugged (fault switch)"
    with pytest.raises(SourceUnavailable, match="unplugged"):
        sim.probe()
    with pytest.raises(SourceUnavailable, match="unplugged"):
        sim.open(AudioConfig(rate=16000, channels=2, buffer_frames=160))
    sim.reappear()
    sim.probe()
    sim.open(AudioConfig(rate=16000, channels=2, buffer_frames=160))
    assert sim.read().shape == (160, 2)


def test_small_buffers_are_one_continuous_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    fix_azimuth(monkeypatch, 30.0)
    big, small = SimulatedArray("respeaker-4mic"), SimulatedArray("respeaker-4mic")
    big.open(AudioConfig(rate=48000, channels=4, buffer_frames=simulator.RENDER_FRAMES))
    small.open(AudioConfig(rate=48000, channels=4, buffer_frames=256))
    whole = big.read()
    pieces = np.concatenate([small.read() for _ in range(simulator.RENDER_FRAMES // 256)])
    big.close()
    small.close()
    assert np.array_equal(pieces, whole)


def test_a_block_is_stamped_with_its_own_deadline_however_long_the_open_took(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Block times and real-time pacing start at the same instant, after the renderer is built.

    Both clocks here run from one counter, so a read returns exactly as late on
    the wall clock as on the pacer's; the renderer's build (tens of ms on a
    48-channel array) is made to take half a second of that time.
    """
    base = time.monotonic()
    slow = [0.0]

    def mono() -> float:
        return time.monotonic() - base + slow[0]

    def wall() -> float:
        return 1_000_000.0 + mono()

    build = simulator._Renderer.__init__

    def slow_build(self: object, *args: object) -> None:
        build(self, *args)  # type: ignore[arg-type]
        slow[0] += 0.5

    monkeypatch.setattr(simulator._Renderer, "__init__", slow_build)
    sim = SimulatedArray("pyramic", wall_clock=wall, monotonic=mono)
    sim.open(AudioConfig(rate=48000, channels=48, buffer_frames=256))
    try:
        for n in range(1, 6):
            sim.read()
            wall_late = wall() - (sim.capture_time() or 0.0)
            mono_late = mono() - (sim._pacer.next_deadline() - 256 / 48000)  # type: ignore[union-attr]
            # Both clocks say the same: the block's time is its deadline, not half a second before it.
            assert abs(wall_late - mono_late) < 0.001, (n, wall_late, mono_late)
    finally:
        sim.close()
