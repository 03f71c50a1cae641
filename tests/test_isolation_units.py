"""The transient unit of a run under systemd, read as the unit file it amounts to.

systemd is not PID 1 here, so the unit is written out from the same
properties ``systemd-run`` gets and judged by ``systemd-analyze``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.runs.launchbase import LaunchSpec, RunLimits, RunUser
from appliance.runs.systemd_launcher import systemd_run_argv
from appliance.runs.unit_sandbox import transient_properties, unit_file_text

SPEC = LaunchSpec("0123456789ab", "doa.py", Path("/run/micarray/runs/0123456789ab"), {"BI_TOKEN": "x"})
needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")


def _transient_unit(tmp_path: Path, network: str) -> tuple[Path, dict[str, str]]:
    limits = RunLimits(network=network)
    props = transient_properties(
        SPEC, limits, Path("/run/micarray/runs/0123456789ab.env"), (Path("/var/lib/micarray"),)
    )
    path = tmp_path / "micarray-run-0123456789ab.service"
    path.write_text(unit_file_text(props, ["/usr/bin/python3", "-u", "doa.py"], "micarray script doa.py"))
    return path, dict(props)


def test_the_audio_rings_socket_is_bound_into_the_unit_at_its_own_path() -> None:
    ring = "/run/micarray/runs/ring.sock"
    spec = LaunchSpec(SPEC.run_id, SPEC.script, SPEC.run_dir, {**SPEC.env, "BI_RING_SOCKET": ring})
    props = transient_properties(spec, RunLimits(), Path("/run/micarray/runs/x.env"))
    assert ("BindPaths", f"-{ring}") in props
    assert ("BindPaths", str(SPEC.run_dir)) in props


def test_the_transient_unit_isolates_a_run_like_the_sandbox(tmp_path: Path) -> None:
    _, props = _transient_unit(tmp_path, "api")
    assert props["TemporaryFileSystem"] == "/run/micarray/runs:ro /dev/shm"
    assert props["BindPaths"] == props["ReadWritePaths"] == str(SPEC.run_dir)
    assert props["InaccessiblePaths"] == "-/var/lib/micarray"
    assert (props["IPAddressDeny"], props["IPAddressAllow"]) == ("any", "localhost")
    assert (props["PrivateTmp"], props["ProtectProc"], props["KillMode"]) == (
        "yes",
        "invisible",
        "control-group",
    )
    _, open_props = _transient_unit(tmp_path, "all")
    assert "IPAddressDeny" not in open_props
    argv = systemd_run_argv(
        SPEC, RunLimits(), RunUser("run-61184", 61184, 61184), "/usr/bin/python3", Path("/e")
    )
    assert "--uid=61184" in argv and "--property=ProtectProc=invisible" in argv


@needs_analyze
def test_the_transient_unit_passes_systemd_analyze(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _transient_unit(tmp_path, "api")
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    unknown = [line for line in verify.stderr.splitlines() if "Unknown" in line or "Invalid" in line]
    assert unknown == [], verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security.stdout)
    assert match, security.stdout + security.stderr
    exposure = float(match.group(1))
    with capsys.disabled():
        print(f"\nsystemd-analyze security: transient run unit exposure {exposure}")
    assert exposure < 2.0, security.stdout
