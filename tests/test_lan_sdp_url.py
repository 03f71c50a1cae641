"""``ffmpeg -i http://DEVICE/api/v1/stream.sdp?...``: a stream at a URL, to the requester only."""

from __future__ import annotations

import asyncio
import select
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import numpy as np
import pytest
from numpy.typing import NDArray

from rtai.rtcp import Bye
from rtai.sdp import parse_sdp
from tests.conftest_web import wait_until
from tests.rtai_support import change_channels, free_port_pair, in_loop, wav_device, wav_server
from tests.server import BIN, ApplianceProcess

RTAI = str(BIN / "rtai")

RATE, CHANNELS = 48000, 8


source_audio, server, token = wav_device("sdp-url", seed=17)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs Debian's ffmpeg")
def test_ffmpeg_records_from_the_url_bit_exact(
    server: ApplianceProcess, token: str, source_audio: NDArray[np.int16], tmp_path: Path
) -> None:
    port = free_port_pair()
    url = f"{server.url}/api/v1/stream.sdp?port={port}&channels=1,3,8&token={token}"
    out = tmp_path / "ff.raw"
    run = subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-protocol_whitelist", "http,tcp,udp,rtp",
         "-i", url, "-t", "1", "-f", "s16le", "-y", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = np.fromfile(out, dtype="<i2").reshape(-1, 3)
    assert got.shape == (RATE, 3)
    assert in_loop(source_audio[:, [0, 2, 7]], got)
    # The token never reaches the device's log (the access line drops the query). Successful
    # requests are logged at debug level only, so a refused one shows the line that is written.
    wrong = "not-a-token-" + token[-8:]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url.replace(token, wrong), timeout=10)
    assert refused.value.code == 401
    refused.value.close()
    # The access line is written once the answer has gone out, so it may follow the 401 a little.
    wait_until(lambda: "GET /api/v1/stream.sdp (127.0.0.1)" in server.log(), 10, "the refused request's line")
    assert token not in server.log() and wrong not in server.log()


def test_the_sdp_names_the_requester_and_a_second_fetch_renews_the_same_stream(
    server: ApplianceProcess, token: str
) -> None:
    port = free_port_pair()
    url = f"{server.url}/api/v1/stream.sdp?port={port}&duration=30"
    status, first = fetch(url, {"Authorization": f"Bearer {token}"})
    assert status == 200, first
    desc = parse_sdp(first)
    assert (desc.address, desc.port, desc.channels, desc.rate) == ("127.0.0.1", port, CHANNELS, RATE)
    status, again = fetch(url, {"Authorization": f"Bearer {token}"})
    assert (status, again) == (200, first)  # same SSRC, same version: the lease was renewed


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("port=5004", 401, "a valid token is needed (Authorization: Bearer T, or ?token=T)"),
        ("port=5004&token=mic_wrong", 401, "a valid token is needed"),
        ("port=0&token={t}", 400, "port '0' is not allowed; use a whole number from 1 to 65534"),
        ("port=5004&channels=0&token={t}", 400, "channels '0' is not allowed; give channel numbers from 1"),
        ("port=5004&channels=9&token={t}", 400, "channel 8 does not exist; this device has channels 0 to 7"),
        ("port=5004&duration=999999&token={t}", 400, "duration '999999' is not allowed"),
        # The address is never the requester's choice: there is no such parameter to honour.
        ("port=5004&address=192.0.2.1&token={t}", 200, "c=IN IP4 127.0.0.1"),
    ],
)
def test_bad_requests_are_refused_in_words(
    server: ApplianceProcess, token: str, query: str, status: int, message: str
) -> None:
    got_status, body = fetch(f"{server.url}/api/v1/stream.sdp?{query.format(t=token)}")
    assert got_status == status
    assert message in body


def _sdp_from(stream: IO[str]) -> str:
    lines: list[str] = []
    while not lines or lines[-1] != "a=recvonly":
        line = stream.readline()
        assert line, "rtai sdp ended"
        lines.append(line.strip())
    return "\r\n".join(lines) + "\r\n"


def test_a_configuration_change_ends_the_stream_with_bye_and_rtai_sdp_prints_the_new_one(
    tmp_path: Path, source_audio: NDArray[np.int16]
) -> None:
    server = wav_server(tmp_path, source_audio)
    server.start()
    port = free_port_pair()
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp.bind(("127.0.0.1", port + 1))
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", port))
    rtp.settimeout(10)
    try:
        token = server.token("change")
        sdp = subprocess.Popen(
            [RTAI, "sdp", server.device, f"--token={token}", "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert sdp.stdout is not None
            first_text = _sdp_from(sdp.stdout)
            first = parse_sdp(first_text)
            rtp.recv(65536)  # the stream has sent audio: it has an SSRC to say BYE for
            reply = asyncio.run(change_channels(server, token, 4))
            assert reply["type"] == "ack", reply
            second_text = _sdp_from(sdp.stdout)
            second = parse_sdp(second_text)
            assert (first.channels, second.channels) == (CHANNELS, 4)
            old_session, old_version = _origin(first_text)
            new_session, new_version = _origin(second_text)
            assert new_session != old_session and new_version == old_version + 1  # new SSRC, new version
            bye = _next_bye(rtcp)
            assert bye.reason == "configuration changed to 48000 Hz, 4 channels"
        finally:
            sdp.send_signal(signal.SIGINT)
            _, err = sdp.communicate(timeout=30)
        assert "the device now sends 4 channels at 48000 Hz (description version" in err
    finally:
        rtcp.close()
        rtp.close()
        server.stop()
    assert "Traceback" not in server.log()


def _origin(sdp: str) -> tuple[int, int]:
    fields = next(line for line in sdp.splitlines() if line.startswith("o=")).split()
    return int(fields[1]), int(fields[2])


def _next_bye(rtcp: socket.socket) -> Bye:
    deadline = time.monotonic() + 10
    while True:
        ready, _, _ = select.select([rtcp], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, "no RTCP BYE"
        bye = Bye.find(rtcp.recv(65536))
        if bye is not None:
            return bye
