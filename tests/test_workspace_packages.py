"""The scripts' own environment: the pinned stack plus installed packages, never the service's venv.

Real venv, real pip (from a local wheel folder, so the test needs no network),
a real interpreter importing from both layers, and the Settings page of a
real ``appliance serve``.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import subprocess
from pathlib import Path

import pytest

from appliance.runs.scriptenv import PackageError, ScriptEnv, check_requirement
from tests.conftest_web import Http, running_server
from tests.wheels import pip_wheel

PKG = "micarray-wstest"


def build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    (src / "micarray_wstest").mkdir(parents=True)
    (src / "micarray_wstest" / "__init__.py").write_text("ANSWER = 42\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{PKG}"\nversion = "1.2.3"\n'
    )
    wheels = tmp / "wheels"
    pip_wheel(src, wheels, timeout=120)
    return wheels


def test_an_added_package_goes_to_the_scripts_venv_beside_the_stack(tmp_path: Path) -> None:
    wheels = build_wheel(tmp_path)
    env = ScriptEnv(tmp_path / "data", pip_args=("--no-index", "--find-links", str(wheels)))
    python = env.ensure()

    async def install() -> str:
        job = env.start_install(f"{PKG}==1.2.3")
        with pytest.raises(PackageError, match="is being installed; wait until it is done"):
            env.start_install("scipy")
        async with asyncio.timeout(120):
            while job.state == "running":
                await asyncio.sleep(0.1)
        return "\n".join(job.output) if job.state != "installed" else job.state

    assert asyncio.run(install()) == "installed"
    listed = {p["name"].lower(): p for p in env.packages()}
    assert listed[PKG] == {"name": PKG, "version": "1.2.3", "where": "added"}
    assert listed["scipy"]["where"] == listed["pyroomacoustics"]["where"] == "stack"
    code = (
        "import micarray_wstest, scipy, soundfile, pyroomacoustics, matplotlib, browserinterface\n"
        "print(micarray_wstest.ANSWER)"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr
    # The service's own environment is untouched.
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version(PKG)


@pytest.mark.parametrize(
    "bad",
    ["../evil", "-e .", "--index-url=http://x", "https://example.com/x.whl", "numpy; rm -rf /", "a b", ""],
)
def test_only_plain_requirements_are_accepted(bad: str) -> None:
    with pytest.raises(PackageError, match="is not a package name; give one name from PyPI"):
        check_requirement(bad)


def test_the_settings_page_lists_the_stack_and_refuses_a_bad_name() -> None:
    with running_server(password=True) as srv:
        http = Http(srv.url)
        assert http.login() == 302
        status, _, body = http.request("GET", "/settings/packages")
        assert status == 200 and b'data-package="pyroomacoustics"' in body and b"<td>stack</td>" in body
        status, _, body = http.request("POST", "/settings/packages", form={"requirement": "--pre x"})
        assert status == 400 and b"is not a package name" in body
        status, packages = http.json("GET", "/api/v1/packages")
        assert status == 200 and any(p["name"] == "scipy" for p in packages["packages"])
