"""The attached array's preset: what the simulator renders, and the geometry an ALSA source reports."""

from __future__ import annotations

import pytest

from appliance.capture.sources.alsa import AlsaSource
from appliance.capture.sources.arrays import PRESETS
from appliance.capture.sources.factory import make_source
from appliance.errors import ConfigError


def test_the_simulator_renders_the_preset_unless_the_spec_names_one() -> None:
    assert make_source("sim", "pyramic").info.spec == "sim:pyramic"
    assert make_source("sim:usb-stereo", "pyramic").info.spec == "sim:usb-stereo"


def test_an_alsa_source_reports_the_preset_geometry_per_channel() -> None:
    usb = PRESETS["respeaker-usb"]  # ch0 processed, ch1-4 raw microphones, ch5 playback
    info = AlsaSource("hw:9", array=usb).info
    assert info.model.startswith(usb.model)
    per_channel = info.channel_geometry()
    assert per_channel is not None
    assert per_channel[0] is None and per_channel[1] is not None
    assert [c for c, p in enumerate(per_channel) if p is not None] == list(usb.mic_channels)
    assert AlsaSource("hw:9").info.channel_geometry() is None


def test_an_unknown_preset_is_refused_with_the_list() -> None:
    with pytest.raises(ConfigError, match="array preset 'nope' is unknown; presets are respeaker-4mic"):
        make_source("auto", "nope")
