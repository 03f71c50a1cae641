"""The layout is the architecture: dependencies point one way, and a laptop installs only its side."""

from __future__ import annotations

import ast
import tomllib
import zipfile
from pathlib import Path

from tests.wheels import pip_wheel

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("capture", "sessions", "runs", "boot", "system")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (lazy imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _files(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "node_modules" not in p.parts]


def test_the_device_layers_never_import_the_service_or_the_web_app() -> None:
    for layer in LAYERS:
        for path in _files(f"appliance/{layer}"):
            above = {
                n
                for n in _imports(path)
                if n.startswith(("appliance.service", "appliance.web", "appliance.daemon"))
            }
            assert not above, f"{path.relative_to(ROOT)} imports {sorted(above)} from above its layer"


def test_only_the_composition_root_wires_the_web_app_to_the_service() -> None:
    for path in _files("appliance"):
        if path.parts[-2] == "web" or path.name == "daemon.py":
            continue
        web = {n for n in _imports(path) if n.startswith("appliance.web")}
        assert not web, f"{path.relative_to(ROOT)} imports {sorted(web)}"
    assert "appliance.web.app" in _imports(ROOT / "appliance" / "daemon.py")


def test_client_packages_import_nothing_of_the_device() -> None:
    for package in ("browserinterface", "rtai"):
        for path in _files(package):
            device = {n for n in _imports(path) if n.split(".")[0] in ("appliance", "alsaaudio", "systemd")}
            assert not device, f"{path.relative_to(ROOT)} imports {sorted(device)}"


def test_the_laptop_install_holds_only_the_client_side() -> None:
    """``pip install client/`` (what a laptop needs) packages browserinterface and rtai, nothing else."""
    client = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())
    assert client["project"]["name"] == "micarray-client"
    found = client["tool"]["setuptools"]["packages"]["find"]
    assert set(found["include"]) == {"browserinterface*", "rtai*"}
    deps = " ".join(client["project"]["dependencies"])
    for device_only in ("pyalsaaudio", "systemd", "cryptography"):
        assert device_only not in deps


def test_the_client_wheel_is_built_from_the_same_sources(tmp_path: Path) -> None:
    wheel = pip_wheel(ROOT / "client", tmp_path)
    assert wheel.name.startswith("micarray_client-"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        tops = {n.split("/")[0] for n in archive.namelist()}
        schema = archive.read("browserinterface/schema.py")
    assert tops == {"browserinterface", "rtai", wheel.name.split("-py3")[0] + ".dist-info"}
    assert schema == (ROOT / "browserinterface" / "schema.py").read_bytes()
