"""GStreamer receives every channel in order and bit for bit, with the pipeline rtai gives.

A plain ``rtpL16depay`` reorders 5, 6 and 8 channel streams into surround
layouts; the pipeline of ``rtai sdp --gst`` (``rtai.gst``) must not, at any
channel count, and must keep up with 48 channels at 48 kHz.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from appliance.capture.config import AudioConfig
from rtai.gst import gst_pipeline
from rtai.sdp import StreamDescription
from tests.rtai_support import (
    device,
    distinct_audio,
    free_port_pair,
    in_loop,
    no_leaked_threads,  # noqa: F401  (autouse)
    publish_paced,
    split_blocks,
    wav_server,
)
from tests.server import BIN
from tests.test_rtai_interop import _tool

RATE = 48000

pytestmark = pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="needs gstreamer1.0-tools")


def _wait_for_size(path: Path, size: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while not (path.exists() and path.stat().st_size >= size):
        assert proc.poll() is None, "gst-launch-1.0 ended early"
        assert time.monotonic() < deadline, f"{path} has {path.stat().st_size if path.exists() else 0} bytes"
        time.sleep(0.05)


@pytest.mark.parametrize("channels", [2, 6, 8, 48])
def test_rtai_pipeline_keeps_channel_order_and_samples(tmp_path: Path, channels: int) -> None:
    audio = distinct_audio(RATE, channels, seed=channels)
    port = free_port_pair()
    out = tmp_path / "g.raw"
    config = AudioConfig(rate=RATE, channels=channels, buffer_frames=1024)

    async def stream(describe_only: bool) -> StreamDescription:
        async with device(config) as (bus, manager):
            desc = StreamDescription.from_json(manager.subscribe("gst", "127.0.0.1", port))
            if not describe_only:
                await publish_paced(bus, split_blocks(audio, 1024), RATE)
            return desc

    desc = asyncio.run(stream(describe_only=True))
    with _tool(gst_pipeline(desc, str(out)), port) as proc:
        asyncio.run(stream(describe_only=False))
        _wait_for_size(out, audio.nbytes, proc)
    got = np.fromfile(out, dtype=">i2").reshape(-1, channels)
    assert got.shape == audio.shape
    assert np.array_equal(got, audio)


def test_plain_depayloader_reorders_eight_channels(tmp_path: Path) -> None:
    """The fault the pipeline avoids, kept visible: if GStreamer stops reordering, this says so."""
    channels = 8
    audio = distinct_audio(RATE // 2, channels, seed=3)
    port = free_port_pair()
    out = tmp_path / "plain.raw"
    caps = f"application/x-rtp,media=audio,clock-rate={RATE},encoding-name=L16,channels={channels},payload=96"
    cmd = ["gst-launch-1.0", "-q", "-e", "udpsrc", f"port={port}", "address=127.0.0.1", f"caps={caps}",
           "!", "rtpL16depay", "!", "filesink", "buffer-mode=unbuffered", f"location={out}"]  # fmt: skip

    async def stream() -> None:
        config = AudioConfig(rate=RATE, channels=channels, buffer_frames=1024)
        async with device(config) as (bus, manager):
            manager.subscribe("gst", "127.0.0.1", port)
            await publish_paced(bus, split_blocks(audio, 1024), RATE)

    with _tool(cmd, port) as proc:
        asyncio.run(stream())
        _wait_for_size(out, audio.nbytes, proc)
    got = np.fromfile(out, dtype=">i2").reshape(-1, channels)
    assert np.array_equal(got, audio[:, [0, 1, 2, 3, 6, 7, 4, 5]])


def test_rtai_sdp_gst_prints_a_pipeline_that_records_the_device(tmp_path: Path) -> None:
    channels = 8
    source = distinct_audio(RATE * 2, channels, seed=31)
    server = wav_server(tmp_path, source)
    server.start()
    try:
        token = server.token("gst")
        port = free_port_pair()
        sdp = subprocess.Popen(
            [str(BIN / "rtai"), "sdp", server.device, f"--token={token}", "--port", str(port), "--gst"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert sdp.stdout is not None
            line = sdp.stdout.readline()
            argv = shlex.split(line)
            assert argv[:2] == ["gst-launch-1.0", "-e"] and "rawaudioparse" in argv, line
            out = tmp_path / "rec.raw"
            argv[-1] = f"location={out}"
            with _tool(argv, port) as proc:
                _wait_for_size(out, RATE * channels * 2, proc)
        finally:
            sdp.send_signal(signal.SIGINT)
            _, err = sdp.communicate(timeout=30)
        assert sdp.returncode == 0, err
        assert f"ffmpeg -f s16be -ar {RATE} -ac {channels} -i rec.raw rec.wav" in err
    finally:
        server.stop()
    got = np.fromfile(out, dtype=">i2")
    got = got[: got.size // channels * channels].reshape(-1, channels)
    assert got.shape[0] >= RATE
    assert in_loop(source, got)
