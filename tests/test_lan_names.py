"""Devices flashed from one image and powered together get distinct host names.

Three ``appliance serve`` processes with the same ``--hostname`` start at
once in three namespaces on one bridge; a fourth namespace runs avahi (not
ours) and must resolve three names to three addresses. A device that joins
later renames itself too, and a renamed device keeps its name after a restart.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.avahi import avahi, requires_avahi
from tests.netns import Host, lan, requires_netns, wait_for_line

BIN = Path(sys.executable).parent
PORT = 8080

pytestmark = [requires_netns, requires_avahi]

WELCOME = r"""
import asyncio, json, sys
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

async def main():
    headers = {"Authorization": "Bearer " + sys.argv[2]}
    ws = await websocket_connect(HTTPRequest(f"ws://{sys.argv[1]}:8080/api/v1/ws", headers=headers))
    await ws.write_message(json.dumps({"type": "hello", "protocol": 1, "role": "listener"}))
    while (msg := json.loads(await ws.read_message()))["type"] != "welcome":
        pass
    print(msg["device"]["name"])
    ws.close()

asyncio.run(main())
"""


def token_for(data: Path) -> str:
    out = subprocess.run(
        [str(BIN / "appliance"), "token", "new", "laptop", "--data-dir", str(data)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def serve(host: Host, data: Path) -> subprocess.Popen[str]:
    argv = [str(BIN / "appliance"), "serve", "--source", "sim", "--http-port", str(PORT),
            "--data-dir", str(data), "--hostname", "twin"]  # fmt: skip
    return host.spawn(argv)


def announced(proc: subprocess.Popen[str], address: str) -> str:
    """The name a device settled on, from its log line."""
    line = wait_for_line(proc, f"({address}) on port {PORT}", deadline_s=90)
    return line.split("announced ", 1)[1].split(".local", 1)[0]


def page_name(laptop: Host, address: str, token: str) -> str:
    return laptop.run([sys.executable, "-c", WELCOME, address, token]).strip()


def test_devices_started_together_get_distinct_names(tmp_path: Path) -> None:
    datas = [tmp_path / f"dev{i}" for i in range(4)]
    tokens = [token_for(d) for d in datas]
    with lan(5) as hosts:
        devices, laptop, late = hosts[:3], hosts[3], hosts[4]
        procs = [serve(host, data) for host, data in zip(devices, datas, strict=False)]
        names = [announced(proc, host.address) for proc, host in zip(procs, devices, strict=True)]
        assert sorted(names) == ["twin", "twin-2", "twin-3"], names

        with avahi(laptop, tmp_path / "avahi") as resolver:
            found = {name: resolver.resolve(f"{name}.local") for name in names}
            assert found == {name: host.address for name, host in zip(names, devices, strict=True)}
            # The name reaches the page (welcome message) and the TXT record.
            for name, host, token in zip(names, devices, tokens, strict=False):
                assert page_name(laptop, host.address, token) == name
            txt = {row[6]: row[9] for row in resolver.browse("_micarray._tcp")}
            assert {host: f'"host={host}"' in record for host, record in txt.items()} == {
                f"{name}.local": True for name in names
            }

            # A fourth device joins later: the three names are held, it takes the next.
            joined = serve(late, datas[3])
            wait_for_line(joined, "host name twin.local is taken on this network; announcing as twin-4.local")
            assert announced(joined, late.address) == "twin-4"
            assert resolver.resolve("twin-4.local") == late.address

            # Restarted, the late device keeps its name even though it could not know
            # whether twin.local is free: the name once chosen is the device's name.
            kept = json.loads((datas[3] / "hostname.json").read_text())
            assert kept == {"requested": "twin", "name": "twin-4"}
            late.stop_all()
            again = serve(late, datas[3])
            assert announced(again, late.address) == "twin-4"
            assert resolver.resolve("twin-4.local") == late.address


def test_a_claimed_name_is_defended_against_another_stack(tmp_path: Path) -> None:
    """avahi probing for a name the device holds is answered and must pick another."""
    with lan(3) as (device, other, _laptop):
        proc = serve(device, tmp_path / "dev")
        assert announced(proc, device.address) == "twin"
        with avahi(other, tmp_path / "avahi", publish_as="twin") as stranger:
            assert "Host name is twin-2.local" in stranger.ready
            assert stranger.resolve("twin.local") == device.address


def _bridge_port(host: Host, index: int, state: str) -> None:
    bridge = host.ns.rsplit("-h", 1)[0] + "-br"  # tests.netns names the bridge's namespace so
    subprocess.run(["ip", "-n", bridge, "link", "set", f"p{index}", state], check=True, timeout=30)


def test_two_networks_joined_later_resolve_the_clash(tmp_path: Path) -> None:
    """Both devices hold ``twin`` on separate segments; once joined, one renames (section 9)."""
    with lan(3) as (first, second, laptop):
        _bridge_port(second, 1, "down")
        one, two = serve(first, tmp_path / "a"), serve(second, tmp_path / "b")
        assert announced(one, first.address) == "twin"
        assert announced(two, second.address) == "twin"
        _bridge_port(second, 1, "up")
        with avahi(laptop, tmp_path / "avahi") as resolver:
            # The laptop's question makes both answer; each hears the other, and the
            # new probes' tie-break (or the holder's defence) leaves one name each.
            resolver.resolve("twin.local")
            renamed = wait_for_any([one, two], "announced twin-2.local")
            keeper = two if renamed is one else one
            assert resolver.resolve("twin-2.local") == (first if renamed is one else second).address
            assert resolver.resolve("twin.local") == (first if keeper is one else second).address


def wait_for_any(
    procs: list[subprocess.Popen[str]], needle: str, deadline_s: float = 60
) -> subprocess.Popen[str]:
    """The process that logs ``needle`` first."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for proc in procs:
            with contextlib.suppress(AssertionError):
                wait_for_line(proc, needle, deadline_s=0.5)
                return proc
    raise AssertionError(f"no process logged {needle!r} in {deadline_s} s")
