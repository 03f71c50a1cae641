"""A fresh device opens its source in the source's own shape, and says so to a script.

Real ``appliance serve`` processes and a real ``browserinterface`` script: the
first configuration callback the script gets is the preset's or the file's
own rate and channel count, not a fixed default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from appliance.capture.config import AudioConfig, Capabilities, moved_config_message
from appliance.capture.sources.arrays import PRESETS
from tests.server import REPO, ApplianceProcess

SCRIPT = """
import os
import browserinterface as bi

def first(buffer_frames, rate, channels, volume):
    print("config", rate, channels, flush=True)
    os._exit(0)

bi.register_when_new_config(first)
bi.start()
"""


def first_config(server: ApplianceProcess) -> tuple[int, int]:
    env = {**os.environ, "BI_DEVICE": server.device, "BI_TOKEN": server.token()}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[0] == "config", out.stdout
    return int(words[1]), int(words[2])


def shape_on_a_fresh_device(tmp_path: Path, source: str) -> tuple[tuple[int, int], str]:
    server = ApplianceProcess(tmp_path / "data", source).start()
    try:
        shape = first_config(server)
    finally:
        server.stop()
    log = server.log()
    assert "Traceback" not in log
    return shape, log


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_opens_in_its_own_shape(tmp_path: Path, preset: str) -> None:
    shape, _ = shape_on_a_fresh_device(tmp_path, f"sim:{preset}")
    assert shape == (PRESETS[preset].rate, PRESETS[preset].channels)


def write_wav(path: Path, rate: int, channels: int) -> Path:
    data = np.random.default_rng(channels).integers(-3000, 3000, size=(rate // 2, channels), dtype=np.int16)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(data.astype("<i2").tobytes())
    return path


@pytest.mark.parametrize(("channels", "rate"), [(1, 16000), (8, 44100), (48, 48000)])
def test_a_wav_opens_with_all_its_channels_at_its_rate(tmp_path: Path, channels: int, rate: int) -> None:
    wav = write_wav(tmp_path / "array.wav", rate, channels)
    shape, _ = shape_on_a_fresh_device(tmp_path, f"wav:{wav}")
    assert shape == (rate, channels)


def test_a_saved_config_the_source_cannot_take_moves_to_the_nearest_and_says_so(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "mono.wav", 16000, 1)
    data = tmp_path / "data"
    data.mkdir()
    (data / "audio.json").write_text(
        json.dumps({"rate": 48000, "channels": 6, "buffer_frames": 512, "volume": 80})
    )
    shape, log = shape_on_a_fresh_device(tmp_path, f"wav:{wav}")
    assert shape == (16000, 1)
    assert (
        f"the saved configuration (48000 Hz, 6 channels) does not suit wav:{wav}, which accepts "
        "rates 16000 Hz and 1 channel; capturing 16000 Hz, 1 channel instead"
    ) in log


def test_the_nearest_accepted_values_and_the_native_shape() -> None:
    caps = Capabilities(rates=(16000, 48000), channels=(1, 2, 4, 8), native_rate=16000, native_channels=8)
    assert caps.default_config() == AudioConfig(16000, 8)
    assert caps.default_config(AudioConfig(44100, 3, 512, 70)) == AudioConfig(48000, 4, 512, 70)
    bare = Capabilities(rates=(8000, 44100, 96000), channels=(1, 2))
    assert bare.default_config() == AudioConfig(44100, 2)  # nearest to 48 kHz, every channel
    assert moved_config_message("alsa:hw:1", AudioConfig(48000, 6), AudioConfig(48000, 2), bare) == (
        "the saved configuration (48000 Hz, 6 channels) does not suit alsa:hw:1, which accepts "
        "rates 8000, 44100, 96000 Hz and 1, 2 channels; capturing 48000 Hz, 2 channels instead"
    )
