"""``ffmpeg -i http://DEVICE/api/v1/stream.sdp?...``: a stream at a URL, to the requester only."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from rtai.sdp import parse_sdp
from tests.rtai_support import distinct_audio, free_port_pair, in_loop, wav_server
from tests.server import ApplianceProcess

RATE, CHANNELS = 48000, 8


@pytest.fixture(scope="module")
def source_audio() -> NDArray[np.int16]:
    return distinct_audio(RATE * 3, CHANNELS, seed=17)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, source_audio: NDArray[np.int16]
) -> Iterator[ApplianceProcess]:
    proc = wav_server(tmp_path_factory.mktemp("sdp-url"), source_audio)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()
    assert "Traceback" not in proc.log()


@pytest.fixture(scope="module")
def token(server: ApplianceProcess) -> str:
    return server.token("sdp-url")


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
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
    # The token never reaches the device's log (the access line drops the query).
    assert token not in server.log()
    assert "GET /api/v1/stream.sdp (127.0.0.1)" in server.log()


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
