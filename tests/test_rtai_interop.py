"""Other tools receive our stream with no code of ours: Debian's ffmpeg and GStreamer."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from appliance.capture.config import AudioConfig
from tests.rtai_support import (
    device,
    distinct_audio,
    free_port_pair,
    no_leaked_threads,  # noqa: F401  (autouse)
    publish_paced,
    split_blocks,
)

RATE = 48000


def _bound_udp_ports() -> set[int]:
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                ports.add(int(line.split()[1].rsplit(":", 1)[1], 16))
    return ports


@contextmanager
def _tool(
    cmd: list[str], port: int, stop: signal.Signals = signal.SIGINT
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while port not in _bound_udp_ports():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, f"{cmd[0]} did not open UDP port {port}"
            time.sleep(0.02)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _stream(channels: int, port: int, audio: np.ndarray) -> None:
    async def main() -> None:
        config = AudioConfig(rate=RATE, channels=channels, buffer_frames=1024)
        async with device(config) as (bus, manager):
            manager.subscribe("interop", "127.0.0.1", port)
            await publish_paced(bus, split_blocks(audio, 1024), RATE)

    asyncio.run(main())


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg")
@pytest.mark.parametrize("channels", [2, 48])
def test_ffmpeg_decodes_our_sdp_and_samples_are_equal(tmp_path: Path, channels: int) -> None:
    audio = distinct_audio(RATE // 2, channels)
    port = free_port_pair()
    sdp = tmp_path / "s.sdp"
    out = tmp_path / "out.raw"

    async def describe() -> None:
        config = AudioConfig(rate=RATE, channels=channels, buffer_frames=1024)
        async with device(config) as (_, manager):
            sdp.write_text(manager.subscribe("interop", "127.0.0.1", port)["sdp"])

    asyncio.run(describe())  # ffmpeg needs the SDP before the stream starts
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        "file,udp,rtp",
        "-buffer_size",
        "4194304",
        "-reorder_queue_size",
        "0",
        "-i",
        str(sdp),
        "-flush_packets",
        "1",
        "-fflags",
        "nobuffer",
        "-f",
        "s16le",
        "-y",
        str(out),
    ]
    # ffmpeg's RTP input ignores SIGINT until a read times out; its output is
    # flushed packet by packet, so once the file is complete it may be killed.
    with _tool(cmd, port, stop=signal.SIGKILL) as proc:
        _stream(channels, port, audio)
        _wait_for_size(out, audio.nbytes, proc)
    got = np.fromfile(out, dtype="<i2").reshape(-1, channels)
    assert got.shape == audio.shape
    assert np.array_equal(got, audio)


@pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="needs gstreamer1.0-tools")
def test_gstreamer_receives_a_four_channel_stream(tmp_path: Path) -> None:
    channels = 4
    audio = distinct_audio(RATE // 2, channels)
    port = free_port_pair()
    out = tmp_path / "g.raw"
    caps = f"application/x-rtp,media=audio,clock-rate={RATE},encoding-name=L16,channels={channels},payload=96"
    cmd = [
        "gst-launch-1.0",
        "-q",
        "-e",
        "udpsrc",
        f"port={port}",
        "address=127.0.0.1",
        f"caps={caps}",
        "!",
        "rtpL16depay",
        "!",
        "filesink",
        "buffer-mode=unbuffered",
        f"location={out}",
    ]
    with _tool(cmd, port) as proc:
        _stream(channels, port, audio)
        _wait_for_size(out, audio.nbytes, proc)
    got = np.fromfile(out, dtype=">i2").reshape(-1, channels)  # L16 as on the wire
    assert np.array_equal(got, audio)


def _wait_for_size(path: Path, size: int, proc: subprocess.Popen[bytes]) -> None:
    """Stop the tool once it wrote everything (tools buffer; SIGINT makes them flush)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.stat().st_size >= size:
            return
        time.sleep(0.05)
