"""Block times from the source's frame count, through real sources: ALSA's file plugin and a WAV file.

A block's time is the capture time of its last frame: consecutive blocks are
exactly ``frames / rate`` apart (within the clock's slew), re-anchored only
when the source says so, never later than the read that returned the block
by more than AHEAD_S, and never earlier by more than STEP_S.  The file
plugin over ``null`` has no clock: the capture thread paces it, and its
first quarter second arrives at once (re-anchored, as a burst must be).
"""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("alsaaudio")

from appliance.capture.block import Block
from appliance.capture.config import AudioConfig
from appliance.capture.sampleclock import AHEAD_S, MAX_SLEW, STEP_S
from appliance.capture.sources.alsa import AlsaSource
from appliance.capture.sources.wavfile import WavSource
from tests.alsa import AlsaConfig, use_test_config
from tests.capture_support import Recorder, running

RATE, CHANNELS, FRAMES = 48000, 2, 256
PERIOD = FRAMES / RATE
BLOCKS = 400
EXACT = 1e-6
#: Time from the stamp being made (in the read) to the recorder seeing the block.
DELIVERY_SLACK_S = 0.05


class ArrivalRecorder(Recorder):
    """Notes the wall-clock time each block reached the consumer."""

    def __init__(self) -> None:
        super().__init__(keep=100_000)
        self.arrivals: list[float] = []

    def deliver(self, block: Block, lost: int = 0) -> None:
        self.arrivals.append(time.time())
        super().deliver(block, lost)


def check_stamps(recorder: ArrivalRecorder, steps: int) -> None:
    times = np.array([b.time for b in recorder.blocks[:BLOCKS]])
    arrivals = np.array(recorder.arrivals[:BLOCKS])
    advance = np.diff(times)
    off = np.abs(advance - PERIOD) > PERIOD * MAX_SLEW + EXACT
    # Every step is one buffer, except where the clock says it re-anchored.
    assert int(off.sum()) <= steps, (int(off.sum()), steps, advance[off][:10])
    assert np.all(times <= arrivals + AHEAD_S)
    assert np.all(arrivals - times <= STEP_S + DELIVERY_SLACK_S)


def test_alsa_blocks_are_timed_by_their_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alsa: AlsaConfig = use_test_config(tmp_path, monkeypatch)
    raw = tmp_path / "ts.raw"
    np.zeros((RATE * 10, CHANNELS), "<i2").tofile(raw)
    alsa.add("ts", raw)
    source = AlsaSource("ts")
    recorder = ArrivalRecorder()
    with running(source, recorder, AudioConfig(RATE, CHANNELS, FRAMES, 80)):
        recorder.wait_blocks(BLOCKS)
        steps = source.clock_steps
    check_stamps(recorder, steps)
    # The burst of a device with no clock re-anchors; after it, none.
    assert steps <= 0.3 / AHEAD_S


def test_wav_blocks_are_timed_by_their_frames(tmp_path: Path) -> None:
    path = tmp_path / "ts.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(CHANNELS)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(np.zeros((RATE, CHANNELS), "<i2").tobytes())
    source = WavSource(path)
    recorder = ArrivalRecorder()
    with running(source, recorder, AudioConfig(RATE, CHANNELS, FRAMES, 80)):
        recorder.wait_blocks(BLOCKS)
        steps = source.clock_steps
    check_stamps(recorder, steps)
