"""The intercom's network path: two processes on loopback, WAV files in and out."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tests.rtai_support import distinct_audio, free_port_pair
from tests.server import BIN

RATE = 16000


def _write(path: Path, data: NDArray[np.int16]) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(data.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(data.astype("<i2").tobytes())


def _read(path: Path) -> NDArray[np.int16]:
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        return data.reshape(-1, wav.getnchannels())


def _heard_frames(source: NDArray[np.int16], got: NDArray[np.int16]) -> int:
    """Frames of ``got`` that continue ``source`` from its first frame; the rest must be silence.

    The side that finishes first hangs up, and the other then hears silence
    (never older audio) for the rest of its duration.
    """
    start = np.flatnonzero(np.all(source == got[0], axis=1))
    assert start.size == 1, "the first frame heard is not in the peer's input"
    piece = source[start[0] : start[0] + got.shape[0]]
    differs = np.flatnonzero(np.any(piece[: got.shape[0]] != got[: piece.shape[0]], axis=1))
    heard = int(differs[0]) if differs.size else got.shape[0]
    assert not got[heard:].any(), "after the peer's audio ends there is only silence"
    return heard


def test_two_intercoms_hear_each_other(tmp_path: Path) -> None:
    a_in, b_in = distinct_audio(RATE * 3, 2, seed=21), distinct_audio(RATE * 3, 2, seed=22)
    _write(tmp_path / "a.wav", a_in)
    _write(tmp_path / "b.wav", b_in)
    port_a, port_b = free_port_pair(), free_port_pair()
    common = ["--rate", str(RATE), "--channels", "2", "--duration", "1.5", "--latency", "1000"]
    procs = [
        subprocess.Popen(
            [
                str(BIN / "rtai"),
                "intercom",
                "--peer",
                "127.0.0.1",
                "--port",
                str(me),
                "--peer-port",
                str(other),
                "--input",
                f"wav:{tmp_path / name}.wav",
                "--output",
                f"wav:{tmp_path / name}-heard.wav",
                *common,
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other, name in ((port_a, port_b, "a"), (port_b, port_a, "b"))
    ]
    try:
        errors = [p.communicate(timeout=60)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [0, 0], errors
    heard_by_a, heard_by_b = _read(tmp_path / "a-heard.wav"), _read(tmp_path / "b-heard.wav")
    assert heard_by_a.shape == heard_by_b.shape == (RATE * 3 // 2, 2)
    # Each side hears the other's input from the first packet that reached it on.
    assert _heard_frames(b_in, heard_by_a) >= RATE // 2
    assert _heard_frames(a_in, heard_by_b) >= RATE // 2


def test_intercom_refuses_a_file_of_another_format(tmp_path: Path) -> None:
    _write(tmp_path / "mono.wav", distinct_audio(100, 1))
    run = subprocess.run(
        [
            str(BIN / "rtai"),
            "intercom",
            "--peer",
            "127.0.0.1",
            "--channels",
            "2",
            "--rate",
            str(RATE),
            "--input",
            f"wav:{tmp_path / 'mono.wav'}",
            "--output",
            "wav:x.wav",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert run.returncode == 1
    assert "mono.wav has 1 channels at 16000 Hz; the intercom runs 2 at 16000 Hz" in run.stderr
    run = subprocess.run(
        [str(BIN / "rtai"), "intercom", "--peer", "127.0.0.1", "--input", "mic"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "--input 'mic' is not supported; use sd, sd:DEVICE or wav:PATH" in run.stderr
