"""A script on the device loads only what it needs: no mDNS, no HTTP client.

A fresh interpreter imports ``browserinterface``, starts a session with the
real device on loopback and takes audio blocks; then neither zeroconf nor
Tornado's HTTP client may be among its modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import REPO, ApplianceProcess

CHECK = """
import json, sys
import browserinterface as bi

after_import = sorted(sys.modules)
blocks = []
def handle(buffer):
    blocks.append(buffer.shape)
    if len(blocks) == 5:
        bi.stop()
bi.register_handle_data(handle)
bi.start()
bi.loop_callbacks()
heavy = ("zeroconf", "tornado.httpclient", "tornado.simple_httpclient", "tornado.websocket")
print(json.dumps({
    "blocks": len(blocks),
    "loaded": [m for m in heavy if m in sys.modules],
    "loaded_by_import": [m for m in heavy if m in after_import],
}))
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApplianceProcess]:
    srv = ApplianceProcess(tmp_path / "data", "sim:usb-stereo").start()
    try:
        yield srv
    finally:
        srv.stop()
        srv.assert_clean_log()


@pytest.mark.parametrize("ring", ["1", "0"], ids=["ring", "websocket"])
def test_a_local_audio_script_loads_neither_zeroconf_nor_the_http_client(
    server: ApplianceProcess, ring: str
) -> None:
    env = {**os.environ, "BI_DEVICE": server.device, "BI_TOKEN": server.token(f"t{ring}"), "BI_RING": ring}
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"blocks": 5, "loaded": [], "loaded_by_import": []}


def test_a_device_named_by_its_mdns_name_still_loads_zeroconf_when_asked() -> None:
    code = (
        "import sys\nfrom browserinterface.device import resolve_device\n"
        "try:\n    resolve_device('nothing-here.local', timeout_s=0.2)\nexcept Exception as exc:\n"
        "    print(type(exc).__name__)\nprint('zeroconf' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["DeviceNotFound", "True"], done.stderr


def _mapped(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_service_loads_neither_mdns_nor_cryptography_it_does_not_use(server: ApplianceProcess) -> None:
    """Started without mDNS and HTTPS, the service maps neither library (each costs MB and boot time).

    Both are compiled (zeroconf's Cython modules, cryptography's Rust one), so
    the process's own memory map says whether they were loaded.
    """
    assert server.proc is not None
    maps = _mapped(server.proc.pid)
    assert "site-packages/zeroconf/" not in maps
    assert "site-packages/cryptography/" not in maps
    # The help pages' Markdown and the package list's metadata reader are pure Python:
    # their imports are checked in the module graph (the latter is 0.36 s of a boot in QEMU).
    out = subprocess.run(
        [sys.executable, "-c", "import sys, appliance.cli, appliance.daemon, appliance.web.app;"
         "print([m for m in ('markdown_it', 'zeroconf', 'cryptography', 'importlib.metadata', 'venv')"
         " if m in sys.modules])"],
        capture_output=True, text=True, cwd=REPO, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "[]"
