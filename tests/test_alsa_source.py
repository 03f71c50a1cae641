"""The ALSA source through real pyalsaaudio and ALSA's file plugin."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

alsaaudio = pytest.importorskip("alsaaudio")

from appliance.capture.config import AudioConfig  # noqa: E402
from appliance.capture.sources.alsa import AlsaSource, first_capture_device  # noqa: E402
from appliance.capture.sources.base import software_gain  # noqa: E402
from appliance.errors import ConfigError, SourceUnavailable  # noqa: E402
from tests.alsa import AlsaConfig, use_test_config  # noqa: E402

FRAMES = 256
BLOCKS = 6


@pytest.fixture
def alsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AlsaConfig:
    return use_test_config(tmp_path, monkeypatch)


def read_all(source: AlsaSource, config: AudioConfig, blocks: int) -> np.ndarray:
    source.open(config)
    try:
        got = [source.read() for _ in range(blocks)]
    finally:
        source.close()
    for block in got:
        assert block.dtype == np.int16
        assert block.shape == (config.buffer_frames, config.channels)
    return np.concatenate(got)


def test_s16_samples_equal_the_file(alsa: AlsaConfig, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    samples = rng.integers(-32768, 32768, size=(FRAMES * BLOCKS, 4), dtype=np.int16)
    raw = tmp_path / "s16.raw"
    samples.astype("<i2").tofile(raw)
    alsa.add("testcap", raw)
    source = AlsaSource("testcap", formats=("S16_LE",))
    caps = source.probe()
    assert 48000 in caps.rates and 16000 in caps.rates
    assert caps.channels[0] == 1 and 4 in caps.channels
    assert not caps.has_mixer
    got = read_all(source, AudioConfig(48000, 4, FRAMES, 80), BLOCKS)
    assert np.array_equal(got, samples)
    assert source.info.spec == "alsa:testcap"


@pytest.mark.parametrize(
    ("fmt", "shift"),
    [("S32_LE", 16), ("S24_LE", 8)],
)
def test_wide_samples_keep_their_top_16_bits(alsa: AlsaConfig, tmp_path: Path, fmt: str, shift: int) -> None:
    rng = np.random.default_rng(8)
    bits = 32 if fmt == "S32_LE" else 24
    wide = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(FRAMES * BLOCKS, 6))
    raw = tmp_path / "wide.raw"
    wide.astype("<i4").tofile(raw)
    alsa.add("widecap", raw)
    source = AlsaSource("widecap", formats=(fmt,))
    source.probe()
    assert source.sample_format == fmt
    got = read_all(source, AudioConfig(16000, 6, FRAMES, 80), BLOCKS)
    assert np.array_equal(got, (wide >> shift).astype(np.int16))


def test_s24_in_three_bytes(alsa: AlsaConfig, tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    wide = rng.integers(-(2**23), 2**23, size=(FRAMES * 2, 2))
    raw = tmp_path / "s24_3.raw"
    as_bytes = wide.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
    raw.write_bytes(as_bytes.tobytes())
    alsa.add("cap3", raw)
    source = AlsaSource("cap3", formats=("S24_3LE",))
    source.probe()
    got = read_all(source, AudioConfig(44100, 2, FRAMES, 80), 2)
    assert np.array_equal(got, (wide >> 8).astype(np.int16))


def test_buffer_larger_than_a_period_is_assembled(alsa: AlsaConfig, tmp_path: Path) -> None:
    samples = np.arange(4096 * 2 * 2, dtype=np.int32).astype(np.int16).reshape(-1, 2)
    raw = tmp_path / "ramp.raw"
    samples.tofile(raw)
    alsa.add("ramp", raw)
    source = AlsaSource("ramp", formats=("S16_LE",))
    source.probe()
    got = read_all(source, AudioConfig(48000, 2, 4096, 80), 2)
    assert np.array_equal(got, samples)


def test_software_gain_without_a_mixer(alsa: AlsaConfig, tmp_path: Path) -> None:
    samples = np.full((FRAMES * 2, 1), 1000, dtype=np.int16)
    raw = tmp_path / "dc.raw"
    samples.tofile(raw)
    alsa.add("dc", raw)
    source = AlsaSource("dc", formats=("S16_LE",))
    source.probe()
    source.open(AudioConfig(48000, 1, FRAMES, 100))
    try:
        loud = source.read()
        source.set_volume(0)
        silent = source.read()
    finally:
        source.close()
    assert int(loud[0, 0]) == int(1000 * software_gain(100))
    assert software_gain(100) == pytest.approx(10 ** (10 / 20))
    assert not silent.any()


def test_missing_device_is_unavailable(alsa: AlsaConfig) -> None:
    source = AlsaSource("nosuchcap")
    with pytest.raises(SourceUnavailable, match="ALSA device nosuchcap is not available"):
        source.probe()
    with pytest.raises(SourceUnavailable, match="nosuchcap is closed"):
        source.read()


def test_unreadable_format_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\['FLOAT_LE'\] are not readable; use S16_LE"):
        AlsaSource("x", formats=("FLOAT_LE",))


def test_close_from_another_thread_ends_the_source(alsa: AlsaConfig, tmp_path: Path) -> None:
    raw = tmp_path / "z.raw"
    np.zeros((FRAMES * 4, 2), dtype=np.int16).tofile(raw)
    alsa.add("z", raw)
    source = AlsaSource("z", formats=("S16_LE",))
    source.probe()
    source.open(AudioConfig(48000, 2, FRAMES, 80))
    closer = threading.Thread(target=source.close)
    closer.start()
    closer.join()
    with pytest.raises(SourceUnavailable, match="closed"):
        source.read()
    source.close()  # twice is fine


def test_no_hardware_means_no_auto_device(alsa: AlsaConfig, tmp_path: Path) -> None:
    raw = tmp_path / "a.raw"
    np.zeros((16, 1), dtype=np.int16).tofile(raw)
    alsa.add("plugin_only", raw)
    if alsaaudio.cards():
        pytest.skip("this machine has a sound card")
    assert "plugin_only" in alsaaudio.pcms(alsaaudio.PCM_CAPTURE)
    # Only hardware devices count for `auto`; a plugin device is never picked.
    assert first_capture_device() is None
