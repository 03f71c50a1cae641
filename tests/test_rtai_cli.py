"""The rtai CLI against a real ``appliance serve`` playing a WAV file on loopback."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from browserinterface.client import close_socket
from rtai import client
from rtai.client import DeviceStream
from rtai.receiver import Receiver
from rtai.resolve import resolve_host
from rtai.sdp import StreamDescription
from tests.rtai_support import in_loop, read_wav, wav_device, wav_server
from tests.server import BIN, ApplianceProcess, free_port

RATE, CHANNELS = 48000, 8
RTAI = str(BIN / "rtai")


source_audio, server, token = wav_device("rtai-cli", seed=11)


def _rtai(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RTAI, *args], check=False, capture_output=True, text=True, timeout=timeout)


def test_listen_records_what_the_device_captured_bit_for_bit(
    server: ApplianceProcess, token: str, source_audio: NDArray[np.int16], tmp_path: Path
) -> None:
    out = tmp_path / "rec.wav"
    run = _rtai(
        "listen",
        server.device,
        f"--token={token}",
        "--out",
        str(out),
        "--duration",
        "2",
        "--stats",
        "--latency",
        "2000",
    )
    assert run.returncode == 0, run.stderr
    rate, got = read_wav(out)
    assert (rate, got.shape) == (RATE, (2 * RATE, CHANNELS))  # the duration asked for, exactly
    assert in_loop(source_audio, got)
    assert "recv " in run.stderr and "lost 0" in run.stderr
    assert f"wrote {out} (2.00 s)" in run.stderr


def test_listen_picks_channels_counted_from_one(
    server: ApplianceProcess, token: str, source_audio: NDArray[np.int16], tmp_path: Path
) -> None:
    out = tmp_path / "two.wav"
    run = _rtai(
        "listen",
        server.device,
        f"--token={token}",
        "--out",
        str(out),
        "--duration",
        "0.5",
        "--channels",
        "1,3",
        "--latency",
        "2000",
    )
    assert run.returncode == 0, run.stderr
    _, got = read_wav(out)
    assert got.shape == (RATE // 2, 2)
    assert in_loop(source_audio[:, [0, 2]], got)


def test_refused_token_and_unreachable_device_are_said_in_words(
    server: ApplianceProcess, tmp_path: Path
) -> None:
    out = tmp_path / "x.wav"
    run = _rtai("listen", server.device, "--token", "wrong", "--out", str(out), "--duration", "1")
    assert run.returncode == 1
    assert f"the device 127.0.0.1 at {server.device} refused the token (HTTP 401)" in run.stderr
    port = free_port()
    run = _rtai("listen", f"127.0.0.1:{port}", "--token", "t", "--out", str(out))
    assert run.returncode == 1
    assert f"cannot reach the device 127.0.0.1 at 127.0.0.1:{port}: Connection refused" in run.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "x.wav", "--latency", "-1"], "--latency -1 is out of range; use 0 to 10000 ms"),
        ([], "nothing to do: give --out FILE.wav, --out - (standard output), --play, or both"),
        (["--out", "x.wav", "--channels", "0,2"], "'0' is not a channel; channels count from 1"),
        (["--out", "x.wav", "--duration", "0"], "--duration 0 must be more than 0 seconds"),
    ],
)
def test_unsupported_options_are_refused(args: list[str], message: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [RTAI, "listen", "127.0.0.1:9", "--token", "t", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert run.returncode == 1
    assert message in run.stderr


def test_play_without_portaudio_says_what_to_install(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    try:
        import sounddevice  # noqa: F401, PLC0415

        pytest.skip("sounddevice works here; the missing-library message cannot be seen")
    except OSError:
        pass
    run = _rtai("listen", "127.0.0.1:9", "--token", "t", "--play")
    assert run.returncode == 1
    assert "needs the PortAudio library" in run.stderr and "libportaudio2" in run.stderr


def test_ctrl_c_leaves_a_valid_wav_with_everything_so_far(
    server: ApplianceProcess, token: str, source_audio: NDArray[np.int16], tmp_path: Path
) -> None:
    out = tmp_path / "cut.wav"
    proc = subprocess.Popen(
        [RTAI, "listen", server.device, f"--token={token}", "--out", str(out), "--latency", "2000"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not (out.exists() and out.stat().st_size > 200_000):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    _, got = read_wav(out)
    assert got.shape[0] * CHANNELS * 2 >= 200_000 - 44
    assert in_loop(source_audio, got)


def test_sdp_prints_the_description_and_streams_until_interrupted(
    server: ApplianceProcess, token: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        port = sock.getsockname()[1]
        proc = subprocess.Popen(
            [RTAI, "sdp", server.device, f"--token={token}", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline().strip() for _ in range(8)]
            assert lines[0] == "v=0"
            assert "c=IN IP4 127.0.0.1" in lines
            assert f"m=audio {port} RTP/AVP 96" in lines
            assert f"a=rtpmap:96 L16/{RATE}/{CHANNELS}" in lines
            data = sock.recv(2048)
            assert data[0] >> 6 == 2 and len(data) <= 1472
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0
    match = re.search(rf"stream (\w+) to 127\.0\.0\.1:{port} for", server.log())
    assert match is not None
    deadline = time.monotonic() + 10
    while f"stream {match[1]} to 127.0.0.1:{port} stopped" not in server.log():
        assert time.monotonic() < deadline, "the device kept the stream after rtai sdp ended"
        time.sleep(0.05)


def test_the_device_streams_only_to_the_authenticated_peer(server: ApplianceProcess, token: str) -> None:
    """A request naming another address is refused whole; a plain one streams to the TCP peer."""

    async def request(conn: WebSocketClientConnection, msg: dict[str, object]) -> dict[str, object]:
        await conn.write_message(json.dumps(msg))
        while True:
            reply = json.loads(await conn.read_message())  # type: ignore[arg-type]
            if reply.get("id") == msg["id"]:
                return dict(reply)

    async def main() -> tuple[dict[str, object], dict[str, object]]:
        request_ = HTTPRequest(
            f"ws://{server.device}/api/v1/ws", headers={"Authorization": f"Bearer {token}"}
        )
        conn = await websocket_connect(request_)
        try:
            await conn.write_message(json.dumps({"type": "hello", "protocol": 1, "role": "listener"}))
            hostile = {"type": "stream_start", "id": 7, "port": 5004, "address": "192.0.2.1",
                       "host": "192.0.2.1", "peer": "192.0.2.1"}  # fmt: skip
            refused = await request(conn, hostile)
            plain = await request(conn, {"type": "stream_start", "id": 8, "port": 5004})
            return refused, plain
        finally:
            await close_socket(conn)

    refused, reply = asyncio.run(main())
    assert refused["type"] == "error" and refused["field"] in ("address", "host", "peer"), refused
    assert "192.0.2.1" not in server.log()
    assert reply["type"] == "ack", reply
    stream = reply["stream"]
    assert isinstance(stream, dict)
    assert stream["address"] == "127.0.0.1"
    assert "c=IN IP4 127.0.0.1" in str(stream["sdp"])


def test_client_subscribes_again_when_the_device_dropped_the_stream(
    server: ApplianceProcess, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renewing later than the device's 5 s makes it drop the stream, as a
    # network outage would; the client must notice and subscribe again.
    monkeypatch.setattr(client, "RENEW_INTERVAL_S", 5.5)
    changed: list[StreamDescription] = []
    again = threading.Event()

    def on_change(desc: StreamDescription) -> None:
        changed.append(desc)
        again.set()

    with Receiver(rate=RATE, channels=CHANNELS) as rx:
        port = rx.port
        stream = DeviceStream(resolve_host(server.device), token, port, on_change=on_change)
        first = stream.open()
        try:
            assert again.wait(20), "no new subscription"
        finally:
            stream.close()
    assert changed[0].id != first.id and changed[0].port == port


def test_listen_follows_a_configuration_change_into_a_new_file(
    tmp_path: Path, source_audio: NDArray[np.int16]
) -> None:
    server = wav_server(tmp_path, source_audio)
    try:
        server.start()
        token = server.token("change")
        out = tmp_path / "rec.wav"
        proc = subprocess.Popen(
            [RTAI, "listen", server.device, f"--token={token}", "--out", str(out),
             "--duration", "2", "--latency", "2000"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while not (out.exists() and out.stat().st_size > 100_000):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            reply = asyncio.run(_send(server, token, {"type": "change_config", "id": 3, "channels": 4}))
            assert reply["type"] == "ack", reply
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        server.stop()
    assert proc.returncode == 0, err
    first, second = read_wav(out)[1], read_wav(tmp_path / "rec-2.wav")[1]
    assert first.shape[1] == CHANNELS and second.shape[1] == 4
    assert first.shape[0] + second.shape[0] == 2 * RATE  # the duration asked for, over both files
    assert in_loop(source_audio, first)
    assert in_loop(source_audio[:, :4], second)
    assert "now sends 4 channels" in err


async def _send(server: ApplianceProcess, token: str, message: dict[str, object]) -> dict[str, object]:
    """Say hello as a script, send one message, return the reply with its id."""
    request = HTTPRequest(f"ws://{server.device}/api/v1/ws", headers={"Authorization": f"Bearer {token}"})
    conn = await websocket_connect(request)
    try:
        await conn.write_message(json.dumps({"type": "hello", "protocol": 1, "role": "script"}))
        await conn.write_message(json.dumps(message))
        while True:
            msg = json.loads(await conn.read_message())  # type: ignore[arg-type]
            if msg.get("id") == message["id"]:
                return dict(msg)
    finally:
        await close_socket(conn)


def test_a_device_going_away_ends_listen_with_the_recording_saved(
    tmp_path: Path, source_audio: NDArray[np.int16]
) -> None:
    server = wav_server(tmp_path, source_audio)
    out = tmp_path / "gone.wav"
    try:
        server.start()
        token = server.token("gone")
        proc = subprocess.Popen(
            [RTAI, "listen", server.device, f"--token={token}", "--out", str(out), "--latency", "2000"],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            while not (out.exists() and out.stat().st_size > 100_000):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            server.stop()
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        server.stop()
    assert proc.returncode == 1
    assert "lost the connection to the device; the recording so far is saved" in err
    _, got = read_wav(out)
    assert got.shape[0] > 0 and in_loop(source_audio, got[: np.flatnonzero(got.any(axis=1))[-1] + 1])
