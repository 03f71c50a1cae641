"""Standing streams set in Settings: checked, saved, running at once and after a restart."""

from __future__ import annotations

import json
import re
import select
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.boot import bootconfig
from appliance.sessions import standing
from rtai.rtcp import Bye
from tests.browser_login import login
from tests.rtai_support import free_port_pair
from tests.server import ApplianceProcess, serving


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApplianceProcess]:
    with serving(ApplianceProcess(tmp_path / "data", "sim")) as proc:
        yield proc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def post(server: ApplianceProcess, cookie: str, text: str, xsrf: bool = True) -> tuple[int, str]:
    token = re.search(r"_xsrf=([^;]+)", cookie)
    assert token is not None
    form = {"streams": text, **({"_xsrf": token.group(1)} if xsrf else {})}
    request = urllib.request.Request(
        f"{server.url}/settings/streams",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Cookie": cookie},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


def first_datagrams(sock: socket.socket, count: int, deadline_s: float = 10) -> list[bytes]:
    end = time.monotonic() + deadline_s
    out: list[bytes] = []
    while len(out) < count:
        ready, _, _ = select.select([sock], [], [], max(0.0, end - time.monotonic()))
        assert ready, f"only {len(out)} datagrams in {deadline_s} s"
        out.append(sock.recv(65536))
    return out


def next_bye(rtcp: socket.socket) -> Bye:
    """The next RTCP BYE on the socket (sender reports before it are skipped)."""
    deadline = time.monotonic() + 10
    while (bye := Bye.find(first_datagrams(rtcp, 1)[0])) is None:
        assert time.monotonic() < deadline, "no RTCP BYE"
    return bye


def test_settings_start_save_and_keep_standing_streams(server: ApplianceProcess) -> None:
    port = free_port_pair()
    rtp, rtcp = (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    )
    rtp.bind(("127.0.0.1", port))
    rtcp.bind(("127.0.0.1", port + 1))
    try:
        no_session = urllib.request.build_opener(_NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as refused:
            no_session.open(f"{server.url}/settings/streams", timeout=10)
        assert refused.value.code == 302  # to the login page
        refused.value.close()

        cookie = login(server.port, server.data_dir)
        assert post(server, cookie, f"uni 127.0.0.1:{port} 1", xsrf=False)[0] == 403

        status, body = post(server, cookie, f"lab 239.255.7.2:5006 1-2\nuni 127.0.0.1:{port} 1")
        assert status == 200 and "Saved; 2 standing stream(s) configured." in body
        saved = json.loads((server.data_dir / "standing.json").read_text())
        assert [(s["name"], s["host"], s["port"], s["channels"]) for s in saved] == [
            ("lab", "239.255.7.2", 5006, [0, 1]),
            ("uni", "127.0.0.1", port, [0]),
        ]
        # The unicast one goes where the admin typed, with nobody subscribed: one channel.
        packet = first_datagrams(rtp, 1)[0]
        assert len(packet) > 12 and (len(packet) - 12) % 2 == 0

        status, body = post(server, cookie, "lab 10.0.0.1 1")
        assert status == 400
        assert "Not saved: &#x27;10.0.0.1&#x27; needs a port from 1 to 65534 after &#x27;:&#x27;" in body
        assert json.loads((server.data_dir / "standing.json").read_text()) == saved

        server.stop()
        assert next_bye(rtcp).reason == "the device is stopping"
        _drain(rtp)  # what the first run sent must not pass for the second's
        server.start()
        first_datagrams(rtp, 1)  # running again after the restart, nobody asking

        # Removing it ends it with an RTCP BYE saying why.
        cookie = login(server.port, server.data_dir)
        assert post(server, cookie, "lab 239.255.7.2:5006 1-2")[0] == 200
        assert next_bye(rtcp).reason == "the stream was stopped"
    finally:
        rtp.close()
        rtcp.close()


def _drain(sock: socket.socket) -> None:
    """Read and forget every datagram already queued on ``sock``."""
    while select.select([sock], [], [], 0)[0]:
        sock.recv(65536)


def test_boot_file_stream_lines_are_checked_and_saved(tmp_path: Path) -> None:
    config = bootconfig.parse(
        "STREAM=lab 239.255.7.1:5004 1-4\nSTREAM=desk lab-laptop.local:6000\nSTREAM=lab 224.0.0.5:5004\n"
    )
    assert [s.value for s in config.streams] == ["lab 239.255.7.1:5004 1,2,3,4", "desk lab-laptop.local:6000"]
    assert [str(p) for p in config.problems] == [
        "micarray.txt line 3: 224.0.0.5 is reserved for local network control; use a group in 239.255.0.0/16"
    ]
    standing.save(tmp_path, [standing.parse_standing("desk 10.0.0.9:7000")])
    standing.add_from_boot(tmp_path, [s.value for s in config.streams])
    assert [s.text() for s in standing.load(tmp_path)] == [
        "lab 239.255.7.1:5004 1,2,3,4",
        "desk lab-laptop.local:6000",  # the boot file's line replaces the one of the same name
    ]
