"""Audio configuration: validation messages, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.capture.config import AudioConfig, Capabilities, apply_change, load_config, save_config
from appliance.errors import ConfigError

CAPS = Capabilities(rates=(16000, 48000), channels=(1, 2, 4))


def test_change_keeps_unnamed_fields() -> None:
    new = apply_change(AudioConfig(48000, 4, 1024, 80), CAPS, rate=16000)
    assert new == AudioConfig(16000, 4, 1024, 80)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate": 12345}, "rate 12345 is not supported; this device accepts 16000, 48000"),
        ({"channels": 3}, "channels 3 is not supported; this device accepts 1, 2, 4"),
        ({"buffer_frames": 8}, "buffer_frames 8 is out of range; use 16 to 16384"),
        ({"volume": 101}, "volume 101 is out of range; use 0 to 100"),
        ({"rate": "fast"}, "rate must be a whole number, not 'fast'"),
        ({"channels": True}, "channels must be a whole number, not True"),
        ({"rate": 16000.5}, "rate must be a whole number, not 16000.5"),
    ],
)
def test_bad_values_are_refused_with_what_is_allowed(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_change(AudioConfig(48000, 4, 1024, 80), CAPS, **fields)
    assert str(info.value) == message


def test_saved_config_survives_and_bad_file_is_ignored(tmp_path: Path) -> None:
    assert load_config(tmp_path) is None
    save_config(tmp_path, AudioConfig(16000, 2, 512, 30))
    assert load_config(tmp_path) == AudioConfig(16000, 2, 512, 30)
    (tmp_path / "audio.json").write_text("{not json")
    assert load_config(tmp_path) is None
    assert not list(tmp_path.glob(".audio.json.*")), "no temporary file may be left behind"


def test_default_config_moves_to_what_the_device_accepts() -> None:
    assert CAPS.default_config(AudioConfig(44100, 6, 4096, 80)) == AudioConfig(48000, 4, 4096, 80)
