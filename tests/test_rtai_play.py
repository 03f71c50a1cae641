"""Playing and capturing through a sound card: a fake one paced by the clock.

``tests/rtai_fakes/sounddevice.py`` stands in for the sounddevice module (this
machine has no sound card): periods of frames at the card's own pace, a
few hundred ppm away from the device's clock, written to a file.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tests.rtai_support import find_start, free_port_pair, read_wav, wav_server, write_wav
from tests.server import BIN

RATE = 48000
FAKES = Path(__file__).with_name("rtai_fakes")


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(FAKES), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def _tone(seconds: float, channels: int, hz: float = 375.0) -> NDArray[np.int16]:
    t = np.arange(int(RATE * seconds)) / RATE
    wave = (12000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return np.repeat(wave[:, None], channels, axis=1)


def test_listen_plays_live_on_a_card_with_its_own_clock(tmp_path: Path) -> None:
    server = wav_server(tmp_path, _tone(1.0, 2))  # 375 Hz: 128 frames a period, loops seamlessly
    played = tmp_path / "played.raw"
    try:
        server.start()
        token = server.token("play")
        run = subprocess.run(
            [str(BIN / "rtai"), "listen", server.device, f"--token={token}", "--play",
             "--duration", "3", "--latency", "40"],
            env=_env(RTAI_FAKE_PLAY_PATH=str(played), RTAI_FAKE_CARD_PPM="700"),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr
    match = re.search(r"rtai listen: played 3\.00 s, (\d+) underruns", run.stderr)
    assert match is not None, run.stderr
    # Underruns need this loaded machine to stall the device for over 60 ms;
    # most periods must still have played sound.
    assert int(match[1]) * 256 < 0.1 * 3 * RATE
    out = np.fromfile(played, dtype="<i2").reshape(-1, 2)
    sound = out[np.flatnonzero(out.any(axis=1))[0] :]
    spectrum = np.abs(np.fft.rfft(sound[:, 0].astype(np.float64)))
    assert abs(np.argmax(spectrum) * RATE / (2 * (spectrum.size - 1)) - 375.0) < 2.0
    assert abs(int(np.abs(sound[:, 0]).max()) - 12000) < 200  # resampled, not distorted


def test_intercom_with_microphone_and_speaker(tmp_path: Path) -> None:
    rate = 16000
    mic = (np.random.default_rng(3).integers(-20000, 20000, (rate * 3, 1))).astype(np.int16)
    other = _tone(3.0, 1)[:: RATE // rate][: rate * 3]
    write_wav(tmp_path / "mic.wav", mic, rate)
    write_wav(tmp_path / "other.wav", other, rate)
    played = tmp_path / "speaker.raw"
    a_port, b_port = free_port_pair(), free_port_pair()
    common = ["--peer", "127.0.0.1", "--rate", str(rate), "--duration", "1.5", "--latency", "1000"]
    a = subprocess.Popen(
        [str(BIN / "rtai"), "intercom", "--port", str(a_port), "--peer-port", str(b_port),
         "--input", "sd", "--output", "sd", *common],
        env=_env(RTAI_FAKE_MIC_PATH=str(tmp_path / "mic.wav"), RTAI_FAKE_PLAY_PATH=str(played)),
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    b = subprocess.Popen(
        [str(BIN / "rtai"), "intercom", "--port", str(b_port), "--peer-port", str(a_port),
         "--input", f"wav:{tmp_path / 'other.wav'}", "--output", f"wav:{tmp_path / 'heard.wav'}",
         *common],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        errors = [p.communicate(timeout=60)[1] for p in (a, b)]
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert (a.returncode, b.returncode) == (0, 0), errors
    _, heard = read_wav(tmp_path / "heard.wav")
    start = find_start(mic, heard)
    n = np.flatnonzero(heard.any(axis=1))[-1] + 1  # the peer may hang up first
    assert n >= rate // 2 and np.array_equal(heard[:n], mic[start : start + n])
    speaker = np.fromfile(played, dtype="<i2")
    assert np.abs(speaker).max() > 10000  # the other side's tone came out of the speaker
