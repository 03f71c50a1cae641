"""Announcing over mDNS between network namespaces: a device, a laptop, a second device.

Every mDNS packet of these tests stays on veth links inside namespaces the
tests create; nothing is sent from the root namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from appliance.system.mdns import AnnounceError, device_txt, normalize_hostname
from tests.netns import NS_PREFIX, Host, lan, requires_netns, sweep_stale, veth_pair, wait_for_line

PY = sys.executable

# The device side: an Announcer in a small process, driven by lines on stdin.
DEVICE = r"""
import asyncio, logging, sys
from appliance.system import mdns
from appliance.system.logsetup import setup_logging
setup_logging("INFO", target="stderr")
mdns.INTERFACE_POLL_S = 0.3
mdns.RETRY_AFTER_FAILURE_S = 0.5
if len(sys.argv) > 2:
    mdns.MAX_RENAMES = int(sys.argv[2])
txt = mdns.device_txt(device_id="dev-" + sys.argv[1], model="ReSpeaker 4-mic (simulated)",
    channels=4, rate=16000, rates=[16000, 48000], api_port=8080, ws_path="/api/ws",
    version="0.1.0", protocol="1")

async def main():
    announcer = mdns.Announcer(sys.argv[1], 8080, txt)
    await announcer.start()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "quit":
            break
        key, _, value = line.strip().partition("=")
        await announcer.update({key: value})
        logging.getLogger("device").info("updated %s", key)
    await announcer.close()
    logging.getLogger("device").info("goodbye sent")

asyncio.run(main())
"""

# The laptop side: browse and report each change as one JSON line.
WATCHER = r"""
import asyncio, json, sys
from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf
from rtai.discover import SERVICE_TYPE

def changed(zeroconf, service_type, name, state_change):
    print(json.dumps([state_change.name, name]), file=sys.stderr, flush=True)

async def main():
    azc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    browser = AsyncServiceBrowser(azc.zeroconf, [SERVICE_TYPE], handlers=[changed])
    print("watching", file=sys.stderr, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await browser.async_cancel()
    await azc.async_close()

asyncio.run(main())
"""


def start_device(host: Host, name: str, max_renames: int = 50) -> subprocess.Popen[str]:
    return host.spawn([PY, "-c", DEVICE, name, str(max_renames)], stdin=subprocess.PIPE)


def discover_json(host: Host, timeout: float = 2.0) -> list[dict[str, object]]:
    out = host.run([PY, "-m", "rtai.discover", "--timeout", str(timeout), "--json"])
    records: list[dict[str, object]] = json.loads(out)
    return records


def test_hostname_is_normalised_and_checked() -> None:
    assert normalize_hostname("MicArray.local.") == "micarray"
    assert normalize_hostname("lab-array-2") == "lab-array-2"
    assert normalize_hostname("Lab_Pi 4") == "lab-pi-4"
    assert normalize_hostname("-x-") == "x"
    assert len(normalize_hostname("a" * 80)) == 63
    with pytest.raises(AnnounceError, match="host name '__' cannot be announced; use letters"):
        normalize_hostname("__")


def test_txt_record_names() -> None:
    txt = device_txt(
        device_id="a1",
        model="UMA-8",
        channels=8,
        rate=48000,
        rates=[16000, 48000],
        api_port=80,
        ws_path="/api/ws",
        version="0.1.0",
    )
    assert txt == {
        "id": "a1",
        "model": "UMA-8",
        "channels": "8",
        "rate": "48000",
        "rates": "16000,48000",
        "api": "80",
        "path": "/api/ws",
        "version": "0.1.0",
    }


@pytest.fixture
def pair() -> Iterator[tuple[Host, Host]]:
    with veth_pair() as hosts:
        yield hosts


@requires_netns
def test_laptop_discovers_and_resolves_the_device(pair: tuple[Host, Host]) -> None:
    device, laptop = pair
    proc = start_device(device, "micarray")
    wait_for_line(proc, "announced micarray.local (10.231.0.1)")

    records = discover_json(laptop)
    assert len(records) == 1
    rec = records[0]
    assert rec["name"] == "micarray"
    assert rec["hostname"] == "micarray.local"
    assert rec["addresses"] == ["10.231.0.1"]
    assert rec["url"] == "http://micarray.local:8080/"
    assert (rec["model"], rec["channels"], rec["rates"]) == (
        "ReSpeaker 4-mic (simulated)",
        4,
        [16000, 48000],
    )
    assert (rec["api_port"], rec["ws_path"], rec["version"], rec["device_id"]) == (
        8080,
        "/api/ws",
        "0.1.0",
        "dev-micarray",
    )

    # The laptop resolves the name the way scripts do (bi_board_ip = "micarray.local").
    code = (
        "from browserinterface.device import resolve_device;"
        "a = resolve_device('micarray.local:8080'); print(a.host, a.port, a.name)"
    )
    assert laptop.run([PY, "-c", code]).split() == ["10.231.0.1", "8080", "micarray.local"]
    # Also from inside a running event loop (as `appliance run --device` does), and async.
    code = (
        "import asyncio\n"
        "from browserinterface.device import resolve_device\n"
        "from browserinterface.localname import async_resolve_local\n"
        "async def main():\n"
        "    print(resolve_device('micarray.local').host, await async_resolve_local('MicArray.local.'))\n"
        "asyncio.run(main())\n"
    )
    assert laptop.run([PY, "-c", code]).split() == ["10.231.0.1", "10.231.0.1"]
    # rtai's resolver gives UDP an address.
    code = "from rtai.resolve import resolve_ip; print(resolve_ip('micarray.local'))"
    assert laptop.run([PY, "-c", code]).strip() == "10.231.0.1"

    # The table a person reads.
    table = laptop.run([PY, "-m", "rtai.discover", "--timeout", "2"])
    assert "micarray  http://micarray.local:8080/  ReSpeaker 4-mic (simulated)" in table
    assert "16000,48000" in table


@requires_netns
def test_unknown_name_gives_a_clear_error(pair: tuple[Host, Host]) -> None:
    _, laptop = pair
    code = (
        "from browserinterface.device import resolve_device, DeviceNotFound\n"
        "try:\n    resolve_device('nobody.local', timeout_s=0.5)\n"
        "except DeviceNotFound as exc:\n    print(exc)\n"
    )
    assert laptop.run([PY, "-c", code]).strip() == (
        "no device answered for nobody.local over mDNS within 0.5 s; check that it is "
        "powered and on this network (`rtai discover` lists the devices here)"
    )
    assert discover_json(laptop, 1.0) == []


@requires_netns
def test_second_device_with_the_same_name_is_renamed() -> None:
    with lan(3) as (first, second, laptop):
        one = start_device(first, "micarray")
        wait_for_line(one, "announced micarray.local (10.231.0.1)")
        two = start_device(second, "micarray")
        taken = wait_for_line(two, "is taken on this network")
        assert "host name micarray.local is taken on this network; announcing as micarray-2" in (taken)
        wait_for_line(two, "announced micarray-2.local (10.231.0.2)")
        records = discover_json(laptop)
        assert [(r["name"], r["hostname"], r["addresses"]) for r in records] == [
            ("micarray", "micarray.local", ["10.231.0.1"]),
            ("micarray-2", "micarray-2.local", ["10.231.0.2"]),
        ]


@requires_netns
def test_every_name_taken_is_retried_not_fatal() -> None:
    with lan(3) as (first, second, laptop):
        one = start_device(first, "micarray")
        wait_for_line(one, "announced micarray.local (10.231.0.1)")
        two = start_device(second, "micarray", max_renames=1)
        failed = wait_for_line(two, "failed")
        assert (
            "announcing micarray.local on 10.231.0.2 failed (host names micarray.local to "
            "micarray-1.local are all taken on this network); trying again in 0 s"
        ) in failed
        # The first device leaves (goodbye): the second takes the name on a retry.
        assert one.stdin is not None
        one.stdin.write("quit\n")
        one.stdin.flush()
        wait_for_line(one, "goodbye sent")
        wait_for_line(two, "announced micarray.local (10.231.0.2)")
        assert [r["addresses"] for r in discover_json(laptop)] == [["10.231.0.2"]]


@requires_netns
def test_address_that_arrives_late_or_changes_is_announced() -> None:
    with lan(2, address_now=[False, True]) as (device, laptop):
        proc = start_device(device, "late")
        wait_for_line(proc, "no network address yet")
        device.add_address()
        wait_for_line(proc, "announced late.local (10.231.0.1)")
        assert [r["hostname"] for r in discover_json(laptop)] == ["late.local"]
        # A new lease: the device says goodbye for the old address and announces the new one.
        device.change_address("10.231.0.11")
        wait_for_line(proc, "announced late.local (10.231.0.11)")
        code = "from rtai.resolve import resolve_ip; print(resolve_ip('late.local'))"
        assert laptop.run([PY, "-c", code]).strip() == "10.231.0.11"


@requires_netns
def test_txt_update_and_goodbye(pair: tuple[Host, Host]) -> None:
    device, laptop = pair
    proc = start_device(device, "micarray")
    wait_for_line(proc, "announced micarray.local")
    assert proc.stdin is not None
    proc.stdin.write("channels=2\n")
    proc.stdin.flush()
    wait_for_line(proc, "updated channels")
    assert [r["channels"] for r in discover_json(laptop)] == [2]

    watcher = laptop.spawn([PY, "-c", WATCHER], stdin=subprocess.PIPE)
    wait_for_line(watcher, '["Added", "micarray._micarray._tcp.local."]')
    proc.stdin.write("quit\n")
    proc.stdin.flush()
    wait_for_line(proc, "goodbye sent")
    # Goodbye packets remove the service at once, not after its TTL (75 min).
    wait_for_line(watcher, '["Removed", "micarray._micarray._tcp.local."]', deadline_s=10)


@requires_netns
def test_namespaces_of_a_killed_test_run_are_swept() -> None:
    stale = f"{NS_PREFIX}{2**22 + 7}-0-h0"  # above pid_max's default: never a live pid
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        sweep_stale()
        listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
        assert stale not in listing.stdout
    finally:
        subprocess.run(["ip", "netns", "del", stale], check=False, capture_output=True)
