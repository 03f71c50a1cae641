"""``rtai listen --out -`` into a pipe, and files written as the audio arrives (RF64 past 4 GiB)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from rtai.wavstream import HEADER_BYTES, AudioSink
from tests.rtai_support import change_channels, distinct_audio, in_loop, read_wav, wav_device, wav_server
from tests.server import BIN, ApplianceProcess

RATE, CHANNELS = 48000, 8
RTAI = str(BIN / "rtai")

# A reader of a pipe, as a user would write it: Python's wave module on stdin,
# which cannot seek; it saves what it read for the test to compare.
CHECK_WAV = r"""
import sys, wave
import numpy as np
with wave.open(sys.stdin.buffer, "rb") as w:
    assert w.getsampwidth() == 2, w.getsampwidth()
    head = (w.getnchannels(), w.getframerate(), w.getnframes())
    data = b""
    while chunk := w.readframes(4096):
        data += chunk
np.save(sys.argv[1], np.frombuffer(data, "<i2").reshape(-1, head[0]))
print(*head)
"""


source_audio, server, token = wav_device("pipes", seed=23)


def piped(listen: list[str], reader: list[str]) -> tuple[str, str, int, int]:
    """``listen | reader``: the reader's stdout, listen's stderr, both exit codes."""
    first = subprocess.Popen(listen, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert first.stdout is not None
    second = subprocess.Popen(reader, stdin=first.stdout, stdout=subprocess.PIPE, text=True)
    first.stdout.close()  # the reader holds the pipe now
    try:
        out, _ = second.communicate(timeout=60)
        _, err = first.communicate(timeout=60)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return out, err.decode(), first.returncode, second.returncode


def listen_args(server: ApplianceProcess, token: str, *extra: str) -> list[str]:
    return [RTAI, "listen", server.device, f"--token={token}", "--latency", "2000", *extra]


@pytest.mark.parametrize("out", ["-", "/dev/stdout"])
def test_wav_into_a_pipe_is_bit_exact(
    server: ApplianceProcess, token: str, source_audio: NDArray[np.int16], tmp_path: Path, out: str
) -> None:
    saved = tmp_path / "got.npy"
    head, err, listen_rc, reader_rc = piped(
        listen_args(server, token, "--duration", "1", "--out", out),
        [sys.executable, "-c", CHECK_WAV, str(saved)],
    )
    assert (listen_rc, reader_rc) == (0, 0), err
    channels, rate, frames = (int(x) for x in head.split())
    # Sizes unknown in the header (0xFFFFFFFF), as streaming readers expect.
    assert (channels, rate, frames) == (CHANNELS, RATE, 0xFFFFFFFF // (2 * CHANNELS))
    got = np.load(saved)
    assert got.shape == (RATE, CHANNELS)
    assert in_loop(source_audio, got)


def test_raw_into_a_pipe_is_bit_exact(
    server: ApplianceProcess, token: str, source_audio: NDArray[np.int16], tmp_path: Path
) -> None:
    saved = tmp_path / "raw.npy"
    code = "import sys, numpy as np; np.save(sys.argv[1], np.frombuffer(sys.stdin.buffer.read(), '<i2'))"
    _, err, listen_rc, reader_rc = piped(
        listen_args(server, token, "--duration", "1", "--format", "raw", "--out", "-"),
        [sys.executable, "-c", code, str(saved)],
    )
    assert (listen_rc, reader_rc) == (0, 0), err
    got = np.load(saved).reshape(-1, CHANNELS)
    assert got.shape == (RATE, CHANNELS)
    assert in_loop(source_audio, got)


def test_a_reader_that_leaves_ends_listen_quietly(server: ApplianceProcess, token: str) -> None:
    reader = ["sh", "-c", "head -c 100000 >/dev/null"]
    _, err, listen_rc, reader_rc = piped(listen_args(server, token, "--out", "-"), reader)
    assert reader_rc == 0
    assert listen_rc == 0, err
    assert "Traceback" not in err and "Broken pipe" not in err


def test_a_file_is_valid_while_it_is_being_written(
    server: ApplianceProcess, token: str, source_audio: NDArray[np.int16], tmp_path: Path
) -> None:
    out = tmp_path / "live.wav"
    proc = subprocess.Popen(listen_args(server, token, "--out", str(out)), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        frames = 0
        while frames < RATE:  # the header is rewritten every second of audio
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
            if out.exists() and out.stat().st_size >= HEADER_BYTES:
                with wave.open(str(out), "rb") as w:
                    frames = w.getnframes()
        _, got = read_wav(out)
        assert got.shape[0] >= RATE and in_loop(source_audio, got)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_past_4_gib_the_file_becomes_rf64(tmp_path: Path) -> None:
    """A sparse 4.5 GiB recording: the header turns into RF64 and ffprobe reads it whole."""
    path = tmp_path / "long.wav"
    block = distinct_audio(4800, 2, seed=5)
    big = (9 << 29) // 4  # frames of 4.5 GiB at 2 channels
    with path.open("wb") as f:
        sink = AudioSink(f, RATE, 2)
        sink.write(block)
        # Skip ahead without writing 4.5 GiB: the file system leaves a hole.
        f.seek(HEADER_BYTES + big * 4)
        sink.frames = big
        sink.write(block)
        sink.finish()
    with path.open("rb") as f:
        assert f.read(4) == b"RF64"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=channels,sample_rate,duration",
         "-of", "default=nw=1", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    fields = dict(line.split("=") for line in probe.stdout.split())
    assert (fields["channels"], fields["sample_rate"]) == ("2", str(RATE))
    assert float(fields["duration"]) == pytest.approx((big + 4800) / RATE, abs=0.01)
    head = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-t", "0.1", "-f", "s16le", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert np.array_equal(np.frombuffer(head.stdout, "<i2").reshape(-1, 2), block)


def test_a_format_change_ends_a_pipe_in_words(source_audio: NDArray[np.int16], tmp_path: Path) -> None:
    """A pipe holds one format: the change ends the recording with a message; what came before is intact."""
    server = wav_server(tmp_path, source_audio)
    server.start()
    try:
        token = server.token("pipe-change")
        saved = tmp_path / "before.npy"
        first = subprocess.Popen(listen_args(server, token, "--out", "-"), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)  # fmt: skip
        assert first.stdout is not None
        seen = tmp_path / "seen.wav"  # tee shows how far the pipe got, without disturbing it
        reader = subprocess.Popen(
            ["sh", "-c", 'tee "$1" | "$2" -c "$3" "$4"', "sh", str(seen), sys.executable, CHECK_WAV,
             str(saved)],
            stdin=first.stdout, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        first.stdout.close()
        try:
            deadline = time.monotonic() + 30
            while not (seen.exists() and seen.stat().st_size > 200_000):
                assert time.monotonic() < deadline and first.poll() is None, "nothing came through the pipe"
                time.sleep(0.05)
            reply = asyncio.run(change_channels(server, token, 4))
            assert reply["type"] == "ack", reply
            _, err = first.communicate(timeout=60)
            reader.communicate(timeout=60)
        finally:
            for proc in (first, reader):
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
    finally:
        server.stop()
    assert first.returncode == 1
    assert (
        "the device now sends 4 channels at 48000 Hz; a pipe carries one format, so the recording ends here"
        in (err.decode())
    )
    got = np.load(saved)
    assert got.shape[1] == CHANNELS and got.shape[0] > 0 and in_loop(source_audio, got)
