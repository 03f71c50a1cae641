"""Standing streams on a test LAN: multicast with no subscriber, announced with SAP.

The device runs in one namespace with a standing stream in its data
directory; a laptop in another finds it with ``rtai sap`` and records it
bit for bit with ``rtai listen sap:NAME``; a configuration change ends the
stream with RTCP BYE and the laptop follows the new announcement, saying so;
the stream comes back by itself after a restart.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.netns import Host, lan, requires_netns, wait_for_line
from tests.rtai_support import distinct_audio, in_loop, write_wav

BIN = Path(sys.executable).parent
RATE, CHANNELS, PORT = 48000, 6, 8080
GROUP = "239.255.7.1"

pytestmark = requires_netns

CHANGE = r"""
import asyncio, json, sys
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

async def main():
    headers = {"Authorization": "Bearer " + sys.argv[2]}
    ws = await websocket_connect(HTTPRequest(f"ws://{sys.argv[1]}/api/v1/ws", headers=headers))
    await ws.write_message(json.dumps({"type": "hello", "protocol": 1, "role": "script"}))
    await ws.write_message(json.dumps({"type": "change_config", "id": 7, "channels": 4}))
    while (msg := json.loads(await ws.read_message())).get("id") != 7:
        pass
    print(msg["type"])
    ws.close()

asyncio.run(main())
"""


def device_dir(root: Path, audio: np.ndarray) -> Path:
    wav = root / "array.wav"
    write_wav(wav, audio, RATE)
    data = root / "data"
    data.mkdir()
    (data / "audio.json").write_text(json.dumps({"rate": RATE, "channels": CHANNELS, "buffer_frames": 1024,
                                                 "volume": 80}))  # fmt: skip
    (data / "standing.json").write_text(
        json.dumps([{"name": "lab", "host": GROUP, "port": 5004, "channels": []}])
    )
    return data


def serve(host: Host, data: Path, channels: int = CHANNELS) -> subprocess.Popen[str]:
    argv = [str(BIN / "appliance"), "serve", "--source", f"wav:{data.parent / 'array.wav'}", "--http-port",
            str(PORT), "--data-dir", str(data), "--no-mdns", "--hostname", "lab-pi"]  # fmt: skip
    proc = host.spawn(argv)
    wait_for_line(
        proc, f"standing stream lab to {GROUP}:5004 ({channels} channels at {RATE} Hz)", deadline_s=60
    )
    return proc


def rtai(host: Host, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    argv = ["ip", "netns", "exec", host.ns, str(BIN / "rtai"), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())


def test_standing_multicast_stream_is_announced_received_and_follows_changes(tmp_path: Path) -> None:
    audio = distinct_audio(RATE * 2, CHANNELS, seed=41)
    data = device_dir(tmp_path, audio)
    token = subprocess.run([str(BIN / "appliance"), "token", "new", "t", "--data-dir", str(data)],
                           capture_output=True, text=True, check=True).stdout.split()[-1]  # fmt: skip
    with lan(2) as (device, laptop):
        serve(device, data)

        listed = rtai(laptop, "sap", "--json", "--timeout", "7")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        keys = ("name", "host", "address", "port", "channels", "rate", "origin")
        assert [tuple(r[k] for k in keys) for r in rows] == [
            ("lab", "lab-pi", GROUP, 5004, CHANNELS, RATE, device.address)
        ]

        out = tmp_path / "sap.wav"
        got = rtai(laptop, "listen", "sap:lab", "--duration", "1", "--out", str(out), "--latency", "500")
        assert got.returncode == 0, got.stderr
        assert read(out).shape == (RATE, CHANNELS) and in_loop(audio, read(out))

        # A configuration change: BYE, new SSRC and SDP version, re-announced; the laptop follows.
        rec = tmp_path / "change.wav"
        listen = subprocess.Popen(
            ["ip", "netns", "exec", laptop.ns, str(BIN / "rtai"), "listen", "sap:lab", "--duration", "3",
             "--out", str(rec), "--latency", "500"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not (rec.exists() and rec.stat().st_size > 200_000):
            if listen.poll() is not None or time.monotonic() > deadline:
                listen.kill()
                raise AssertionError(f"rtai listen wrote nothing: {listen.communicate()[1]}")
            time.sleep(0.05)
        changed = laptop.run([sys.executable, "-c", CHANGE, f"{device.address}:{PORT}", token])
        assert changed.strip() == "ack"
        _, err = listen.communicate(timeout=60)
        assert listen.returncode == 0, err
        assert "the device ended this stream (configuration changed to 48000 Hz, 4 channels)" in err
        assert "the device changed the stream lab: now 4 channels at 48000 Hz" in err
        first, second = read(rec), read(tmp_path / "change-2.wav")
        assert first.shape[1] == CHANNELS and second.shape[1] == 4
        assert in_loop(audio, first) and in_loop(audio[:, :4], second)

        # Restarted, the device streams again with nobody asking.
        device.stop_all()
        serve(device, data, channels=4)  # the configuration is kept too
        again = rtai(laptop, "listen", "sap:lab@lab-pi", "--duration", "0.5", "--out", str(out))
        assert again.returncode == 0, again.stderr
        assert read(out).shape == (RATE // 2, 4)


def _vlc_playlist(vlc: subprocess.Popen[str], deadline: float) -> str:
    """Ask VLC's rc interface for its playlist; the text up to its end marker."""
    assert vlc.stdin is not None and vlc.stdout is not None
    vlc.stdin.write("playlist\n")
    vlc.stdin.flush()
    text = ""
    while "End of playlist" not in text:
        ready, _, _ = select.select([vlc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"VLC did not answer: {text!r}"
        text += os.read(vlc.stdout.fileno(), 65536).decode(errors="replace")
    return text


@pytest.mark.skipif(shutil.which("cvlc") is None, reason="needs vlc-bin and vlc-plugin-base")
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg")
def test_third_party_sap_receivers_find_and_record_the_stream(tmp_path: Path) -> None:
    """VLC's SAP discovery lists the session; ffmpeg's SAP demuxer records it bit for bit."""
    audio = distinct_audio(RATE * 2, CHANNELS, seed=43)
    data = device_dir(tmp_path, audio)
    home = tmp_path / "vlc-home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    with lan(2) as (device, laptop):
        serve(device, data)
        # VLC refuses to run as root; nobody is enough to listen to multicast.
        vlc = subprocess.Popen(
            ["ip", "netns", "exec", laptop.ns, "setpriv", "--reuid=nobody", "--regid=nogroup",
             "--clear-groups", "env", f"HOME={home}", "cvlc", "-I", "rc", "--rc-fake-tty", "-S", "sap"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while "lab on lab-pi" not in (listing := _vlc_playlist(vlc, deadline)):
                assert time.monotonic() < deadline, listing
                time.sleep(0.5)
            assert "Network streams (SAP)" in listing
        finally:
            vlc.kill()
            vlc.communicate()
        out = tmp_path / "ff.raw"
        laptop.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", "sap://239.255.255.255", "-t", "1",
                    "-f", "s16le", "-y", str(out)])  # fmt: skip
    got = np.fromfile(out, "<i2").reshape(-1, CHANNELS)
    assert got.shape == (RATE, CHANNELS)
    assert in_loop(audio, got)
