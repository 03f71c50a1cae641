"""The capture thread with the simulator: states, reopen, reconfigure, stop."""

from __future__ import annotations

import logging
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from appliance.capture.config import AudioConfig
from appliance.capture.sources.factory import make_source
from appliance.capture.sources.simulator import SimulatedArray
from appliance.capture.sources.wavfile import WavSource
from appliance.capture.thread import Capture
from appliance.errors import ConfigError
from tests.capture_support import Recorder, running

SMALL = AudioConfig(rate=16000, channels=4, buffer_frames=160, volume=80)  # 10 ms blocks


def test_blocks_flow_in_order_with_their_shape() -> None:
    rec = Recorder()
    with running(SimulatedArray("respeaker-4mic"), rec, SMALL) as capture:
        status = rec.wait_state("running")
        rec.wait_blocks(10)
        assert capture.config == SMALL
        assert capture.capabilities is not None and 4 in capture.capabilities.channels
    assert [s.state for s in rec.statuses] == ["starting", "running", "stopped"]
    assert status.config == SMALL and status.source.spec == "sim:respeaker-4mic"
    assert "capturing 4 channels at 16000 Hz" in status.message
    seqs = [b.seq for b in rec.blocks]
    assert seqs == list(range(len(seqs)))
    for block in rec.blocks:
        assert block.data.shape == (160, 4) and block.data.dtype == np.int16
        assert not block.data.flags.writeable
    times = [b.time for b in rec.blocks]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 60


def test_desired_config_is_moved_to_what_the_device_accepts() -> None:
    rec = Recorder()
    wanted = AudioConfig(rate=12345, channels=48, buffer_frames=256, volume=55)
    with running(SimulatedArray("respeaker-4mic"), rec, wanted):
        status = rec.wait_state("running")
    assert status.config == AudioConfig(rate=11025, channels=4, buffer_frames=256, volume=55)


def test_missing_at_start_waits_then_runs_when_it_appears() -> None:
    sim = SimulatedArray("respeaker-4mic")
    sim.disappear()
    rec = Recorder()
    with running(sim, rec, SMALL):
        waiting = rec.wait_state("waiting")
        assert waiting.message == (
            "waiting for the capture device: simulated respeaker-4mic is unplugged (fault switch)"
        )
        assert waiting.config is None and waiting.capabilities is None
        assert not rec.blocks
        sim.reappear()
        rec.wait_state("running")
        rec.wait_blocks(3)
    # retries are quiet: one waiting report, not one per probe
    assert [s.state for s in rec.statuses] == ["starting", "waiting", "running", "stopped"]


def test_disappearing_while_running_is_picked_up_again() -> None:
    sim = SimulatedArray("respeaker-4mic")
    rec = Recorder()
    with running(sim, rec, SMALL) as capture:
        rec.wait_blocks(5)
        sim.disappear()
        rec.wait_state("waiting")
        assert capture.config is None
        rec.clear_blocks()
        sim.reappear()
        status = rec.wait_state("running", after=2)
        rec.wait_blocks(3)
        assert status.config == SMALL
        assert rec.blocks[0].seq == 0  # a reopen starts counting again


def test_reconfigure_reopens_with_the_new_shape() -> None:
    rec = Recorder()
    with running(SimulatedArray("respeaker-6mic"), rec, SMALL) as capture:
        rec.wait_blocks(3)
        new = AudioConfig(rate=48000, channels=8, buffer_frames=480, volume=80)
        capture.reconfigure(new)
        status = rec.wait_state("running", after=2)
        assert status.config == new
        rec.wait_for(lambda: any(b.data.shape == (480, 8) for b in rec.blocks))
        shapes = [b.data.shape for b in rec.blocks]
        first_new = shapes.index((480, 8))
        assert set(shapes[first_new:]) == {(480, 8)}
        assert rec.blocks[first_new].seq == 0
        assert capture.config == new


def test_reconfigure_does_not_wait_for_a_blocked_read() -> None:
    sim = SimulatedArray("usb-stereo")
    rec = Recorder()
    with running(sim, rec, SMALL) as capture:
        rec.wait_blocks(1)
        sim.stall()  # the read under way would never return by itself
        new = AudioConfig(8000, 2, 80)
        capture.reconfigure(new)
        assert rec.wait_state("running", after=2).config == new
        sim.release()
        rec.wait_for(lambda: rec.last is not None and rec.last.data.shape == (80, 2))


def test_volume_reaches_the_source() -> None:
    rec = Recorder()
    with running(SimulatedArray("respeaker-4mic"), rec, SMALL) as capture:
        rec.wait_blocks(2)
        capture.set_volume(0)
        rec.wait_for(lambda: rec.last is not None and not rec.last.data.any())


def test_stop_is_bounded_when_the_source_is_stuck() -> None:
    sim = SimulatedArray("respeaker-4mic")
    rec = Recorder()
    capture = Capture(sim, rec.deliver, rec.on_status, SMALL)
    capture.start()
    rec.wait_blocks(2)
    sim.stall()  # the next read never returns by itself
    capture.stop(timeout=5)
    assert not any(t.name == "capture" for t in threading.enumerate())
    assert rec.statuses[-1].state == "stopped"
    assert rec.statuses[-1].message == "capture stopped"


def test_start_twice_is_refused() -> None:
    rec = Recorder()
    with running(SimulatedArray(), rec) as capture, pytest.raises(RuntimeError, match="already"):
        capture.start()


def test_make_source_understands_every_spec(tmp_path: Path) -> None:
    sim = make_source("sim")
    assert isinstance(sim, SimulatedArray) and sim.info.spec == "sim:respeaker-6mic"
    assert make_source("sim:pyramic").info.model == "Pyramic 48-channel array (simulated)"
    path = tmp_path / "a.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(64))
    assert isinstance(make_source(f"wav:{path}"), WavSource)
    alsaaudio = pytest.importorskip("alsaaudio")
    assert alsaaudio is not None
    assert make_source("alsa:hw:CARD=Array,DEV=0").info.spec == "alsa:hw:CARD=Array,DEV=0"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sim:nope", "array preset 'nope' is unknown; presets are respeaker-4mic, respeaker-6mic"),
        ("alsa:", "source 'alsa:' needs a device: use alsa:DEVICE"),
        ("wav:", "source 'wav:' needs a path: use wav:PATH"),
        (
            "mic",
            "source 'mic' is not understood; use auto, auto:sim, alsa:DEVICE, sim, sim:PRESET or wav:PATH",
        ),
        ("auto:x", "source 'auto:x' is not understood"),
    ],
)
def test_make_source_explains_a_bad_spec(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_source(spec)


def test_auto_says_once_what_it_picked(caplog: pytest.LogCaptureFixture) -> None:
    alsaaudio = pytest.importorskip("alsaaudio")
    if alsaaudio.cards():
        pytest.skip("this machine has a sound card")
    with caplog.at_level(logging.DEBUG, logger="appliance.capture.sources"):
        source = make_source("auto")
    assert source.info.kind == "sim"  # until an array is plugged in
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [r.getMessage() for r in infos] == [
        "source auto: no ALSA capture device found; using the simulator (sim:respeaker-6mic)"
    ]


def test_a_failing_consumer_stops_capture_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rec = Recorder()

    def deliver(block: object, lost: int) -> None:
        raise RuntimeError("event loop is closed")

    capture = Capture(SimulatedArray("usb-stereo"), deliver, rec.on_status, SMALL)
    with caplog.at_level(logging.ERROR, logger="appliance.capture.thread"):
        capture.start()
        stopped = rec.wait_state("stopped")
        capture.stop()
    assert stopped.message == "capture failed: event loop is closed"
    assert any(r.getMessage() == "capture thread failed" for r in caplog.records)
    assert not any(t.name == "capture" for t in threading.enumerate())


def srp_azimuth(block: np.ndarray, geometry: np.ndarray, rate: int) -> float:
    """Direction of arrival (degrees) by steered response power over pairwise lags."""
    mics = block.astype(np.float64)
    mics -= mics.mean(axis=0)
    n = len(mics)
    spectra = np.fft.rfft(mics, 2 * n, axis=0)
    angles = np.radians(np.arange(0, 360, 1.0))
    units = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    power = np.zeros(len(angles))
    count = geometry.shape[0]
    for i in range(count):
        for j in range(i + 1, count):
            xc = np.fft.irfft(spectra[:, i] * np.conj(spectra[:, j]), 2 * n)
            # xc[k] = sum x_i[n + k] x_j[n]; a far source in direction u reaches
            # mic m (p . u) / c early, so xc peaks at k = (p_j - p_i) . u * rate / c.
            lags = np.rint((geometry[j] - geometry[i]) @ units.T / 343.0 * rate).astype(int)
            power += xc[lags]
    return float(np.degrees(angles[int(np.argmax(power))]))


def test_a_direction_estimate_follows_the_simulated_source() -> None:
    rec = Recorder()
    config = AudioConfig(rate=48000, channels=6, buffer_frames=4096, volume=80)
    with running(SimulatedArray("respeaker-6mic"), rec, config) as capture:
        rec.wait_blocks(3)
        geometry = np.array(capture.source.info.geometry)
    for block in rec.blocks:
        truth = SimulatedArray.azimuth_at(block.time)
        estimate = srp_azimuth(np.asarray(block.data), geometry, 48000)
        error = (estimate - truth + 180) % 360 - 180
        assert abs(error) < 10, (estimate, truth)
