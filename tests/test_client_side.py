"""The client side: its public names, and that a laptop needs nothing of the device."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import browserinterface

ROOT = Path(__file__).resolve().parent.parent

PUBLIC = {
    "BlockInfo", "ConfigError", "Device", "Handler", "SetupError", "add_handle_data", "add_handler",
    "add_when_new_config", "unregister_handle_data", "unregister_when_new_config", "bi_board_ip", "board_ip",
    "buffer_frames",
    "change_config", "channels", "geometry", "inform_browser", "lag_ms", "loop_callbacks", "rate",
    "record_audio", "register_handle_data", "register_when_behind", "register_when_new_config",
    "send_audio", "set_max_backlog", "start", "stop",
    "valid_num_channels", "valid_rates", "volume",
}  # fmt: skip


def test_browserinterface_public_names_are_pinned() -> None:
    assert set(browserinterface.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(browserinterface, name), name
    assert (ROOT / "browserinterface" / "py.typed").exists()
    assert browserinterface.__doc__ and "register_handle_data" in browserinterface.__doc__


def test_defaults_before_any_configuration() -> None:
    assert browserinterface.inform_browser is False
    for name in ("rate", "channels", "buffer_frames", "volume", "bi_board_ip", "board_ip"):
        assert getattr(browserinterface, name) is None, name


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("alsaaudio", "systemd", "appliance"):
            raise ImportError(f"a laptop has no {name}")
        return None
sys.meta_path.insert(0, Block())
import browserinterface, rtai, rtai.cli, rtai.discover, rtai.receiver
print("ok")
"""


def test_client_packages_import_without_device_modules() -> None:
    out = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_device_only_packages_are_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    assert "pyalsaaudio" not in base and "systemd" not in base
    device = " ".join(project["optional-dependencies"]["device"])
    assert "pyalsaaudio" in device and "systemd-python" in device
