"""The systemd units, the install layout, the system user and the polkit rule.

systemd is not PID 1 here, so the units are checked the way a packager
does: `make install DESTDIR=...` stages them, `systemd-analyze verify` loads
them inside that root (with the host's own system units beside them), and
`systemd-analyze security --offline` scores the main unit's sandbox.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UNIT_DIR = REPO / "systemd"
UNITS = sorted(p.name for p in UNIT_DIR.iterdir() if p.suffix in (".service", ".slice"))
#: systemd-analyze security's exposure, 0 (locked down) to 10 (unsafe): the
#: long-running service and the script runs stay under 2, every unit under 5.
MAIN_UNITS = ("micarray.service", "micarray-run@.service")
MAX_EXPOSURE_MAIN = 2.0
MAX_EXPOSURE = 5.0
SERVICES = [u for u in UNITS if u.endswith(".service")]

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")


def unit_settings(name: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, keys repeated as systemd allows."""
    out: dict[str, list[str]] = {}
    for raw in (UNIT_DIR / name).read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A root file system with the appliance staged by ``make install DESTDIR=``."""
    root = tmp_path_factory.mktemp("rootfs")
    proc = subprocess.run(
        ["make", "--no-print-directory", "install", f"DESTDIR={root}", "SKIP_FRONTEND=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The venv is made inside the target system (install-venv); stand-ins
    # let verify check that ExecStart= names an executable there.
    venv_bin = root / "opt/micarray/.venv/bin"
    venv_bin.mkdir(parents=True)
    for exe in ("appliance", "python"):
        (venv_bin / exe).write_text("#!/bin/sh\n")
        (venv_bin / exe).chmod(0o755)
    # Tools of the base system the units call (coreutils and find for the data
    # directory's folders, the shell that starts a run in its project).
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    for tool in ("install", "chgrp", "find"):
        shutil.copy(f"/usr/bin/{tool}", root / "usr/bin" / tool)
    (root / "bin").mkdir(exist_ok=True)
    shutil.copy("/bin/sh", root / "bin/sh")
    # The image's own units are verified too, and the host's system units
    # (targets, sysinit) make the dependencies resolvable.
    for name in UNITS:
        target = root / "usr/local/lib/systemd/system" / name
        if not target.exists():
            shutil.copy(UNIT_DIR / name, target)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_install_layout(staged: Path) -> None:
    prefix = staged / "opt/micarray"
    for part in ("appliance/system/mdns.py", "rtai/discover.py", "pyproject.toml", "requirements.lock"):
        assert (prefix / part).is_file(), part
    assert not list(prefix.rglob("__pycache__"))
    units = staged / "usr/local/lib/systemd/system"
    assert {"micarray.service", "micarray-run@.service", "micarray-runs.slice"} <= {
        p.name for p in units.iterdir()
    }
    assert (staged / "usr/local/lib/sysusers.d/micarray.conf").is_file()
    assert (staged / "etc/polkit-1/rules.d/50-micarray.rules").is_file()
    wants = staged / "etc/systemd/system/multi-user.target.wants/micarray.service"
    assert wants.is_symlink()
    assert "/opt/micarray/.venv/bin/appliance serve --source auto --http-port 80" in (
        (units / "micarray.service").read_text()
    )


@needs_analyze
@pytest.mark.parametrize("unit", [u.replace("@.service", "@0123456789ab.service") for u in UNITS])
def test_systemd_analyze_verify(staged: Path, unit: str) -> None:
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={staged}", unit],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 even after warnings such as unknown keys: none may appear.
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


@needs_analyze
@pytest.mark.parametrize("unit", SERVICES)
def test_exposure(unit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # security needs an instance name for the template.
    name = unit.replace("@.service", "@0123456789ab.service")
    path = tmp_path / name
    shutil.copy(UNIT_DIR / unit, path)
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(rf"Overall exposure level for {re.escape(name)}: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    exposure = float(match.group(1))
    limit = MAX_EXPOSURE_MAIN if unit in MAIN_UNITS else MAX_EXPOSURE
    with capsys.disabled():
        print(f"\nsystemd-analyze security: {name} exposure {exposure} (limit, exclusive: {limit})")
    assert exposure < limit


def test_main_unit_settings() -> None:
    s = unit_settings("micarray.service")
    expected = {
        "Type": ["notify"],
        "Restart": ["on-failure"],
        "User": ["micarray"],
        "SupplementaryGroups": ["audio"],
        "StateDirectory": ["micarray"],
        "RuntimeDirectory": ["micarray"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "NoNewPrivileges": ["yes"],
        "DevicePolicy": ["closed"],
        "DeviceAllow": ["char-alsa rw"],
        "CapabilityBoundingSet": ["CAP_NET_BIND_SERVICE"],
        "AmbientCapabilities": ["CAP_NET_BIND_SERVICE"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"],
    }
    for key, value in expected.items():
        assert s.get(key) == value, key
    assert s["WatchdogSec"] and s["SystemCallFilter"][0] == "@system-service"
    assert "--data-dir /var/lib/micarray" in s["ExecStart"][0]


def test_nothing_waits_for_the_network_or_the_clock() -> None:
    # A fast boot: no unit of ours waits for DHCP or for NTP.
    for unit in UNITS:
        s = unit_settings(unit)
        ordered = " ".join(s.get("After", []) + s.get("Wants", []) + s.get("Requires", []))
        for target in ("network-online.target", "time-sync.target", "systemd-time-wait-sync"):
            assert target not in ordered, (unit, target)


def test_every_service_is_scored() -> None:
    assert {"micarray-firstboot.service", "micarray-rootgrow.service", *MAIN_UNITS} <= set(SERVICES)


def test_root_services_keep_only_the_capabilities_they_use() -> None:
    firstboot = unit_settings("micarray-firstboot.service")
    assert firstboot["CapabilityBoundingSet"] == ["CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_SYS_ADMIN"]
    assert firstboot["ReadWritePaths"] == ["/etc /var/lib/micarray /boot/firmware -/root/.ssh"]
    # The image makes /root/.ssh, so the writable path exists below ProtectHome's /root.
    assert 'install -d -m 0700 "$root/root/.ssh"' in (REPO / "image/customize.sh").read_text()
    assert firstboot["PrivateNetwork"] == ["yes"] and firstboot["ProtectSystem"] == ["strict"]
    assert "--no-grow" in firstboot["ExecStart"][0]
    grow = unit_settings("micarray-rootgrow.service")
    assert grow["CapabilityBoundingSet"] == ["CAP_SYS_ADMIN CAP_SYS_RESOURCE"]
    assert grow["DevicePolicy"] == ["closed"]
    # Nothing waits for the growth: it is not ordered before anything.
    assert "Before" not in grow


def test_run_unit_is_a_fixed_sandbox() -> None:
    s = unit_settings("micarray-run@.service")
    # A user of its own for every run, in the run group; nothing of the data
    # directory but its own run directory (its project bound there).
    assert s["DynamicUser"] == ["yes"] and s["User"] == ["micarray-run-%i"]
    assert s["SupplementaryGroups"] == ["micarray-run"]
    assert s["TemporaryFileSystem"] == ["/var/lib/micarray:ro /dev/shm"]
    assert s["BindPaths"] == [
        "/var/lib/micarray/runs/%i",
        "-/run/micarray/runs/%i.project:/var/lib/micarray/runs/%i/project",
    ]
    assert s["InaccessiblePaths"] == ["-/run/micarray"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["IPAddressDeny"] == ["any"] and s["IPAddressAllow"] == ["localhost"]
    assert s["Slice"] == ["micarray-runs.slice"]
    assert s["MemoryMax"] and s["TasksMax"] and s["CPUQuota"]


def test_sysusers_makes_the_two_users(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\naudio:x:29:\n")
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(UNIT_DIR / "sysusers.d/micarray.conf")],
        capture_output=True,
        check=True,
        timeout=60,
    )
    users = {line.split(":")[0]: line for line in (etc / "passwd").read_text().splitlines()}
    groups = {line.split(":")[0]: line for line in (etc / "group").read_text().splitlines()}
    assert users["micarray"].endswith(":/var/lib/micarray:/usr/sbin/nologin")
    assert "micarray-run" in users
    assert groups["audio"].endswith(":micarray")
    assert groups["micarray-run"].endswith(":micarray")


POLKIT_HARNESS = r"""
const fs = require("fs");
const rules = [];
const polkit = {
  Result: {YES: "yes", NO: "no", NOT_HANDLED: "not_handled"},
  addRule: (f) => rules.push(f),
};
const [rulesPath, casesJson] = process.argv.slice(-2);
new Function("polkit", fs.readFileSync(rulesPath, "utf8"))(polkit);
const cases = JSON.parse(casesJson);
const out = cases.map(([id, user, details]) => {
  const action = {id, lookup: (k) => details[k]};
  return rules.map((r) => r(action, {user})).find((r) => r !== undefined) ?? "not_handled";
});
console.log(JSON.stringify(out));
"""

MANAGE = "org.freedesktop.systemd1.manage-units"
POLKIT_CASES: list[tuple[str, str, dict[str, str], str]] = [
    (MANAGE, "micarray", {"unit": "micarray-run@0123456789ab.service", "verb": "start"}, "yes"),
    (MANAGE, "micarray", {"unit": "micarray-run@0123456789ab.service", "verb": "stop"}, "yes"),
    (MANAGE, "micarray", {"unit": "micarray-run@0123456789ab.service", "verb": "kill"}, "yes"),
    (MANAGE, "micarray", {"unit": "micarray-run@a.service", "verb": "reset-failed"}, "yes"),
    # Other verbs, other units, look-alike names: not this rule's business.
    (MANAGE, "micarray", {"unit": "micarray-run@a.service", "verb": "enable"}, "not_handled"),
    (MANAGE, "micarray", {"unit": "micarray.service", "verb": "stop"}, "not_handled"),
    (MANAGE, "micarray", {"unit": "ssh.service", "verb": "stop"}, "not_handled"),
    (MANAGE, "micarray", {"unit": "micarray-run@a.service.d", "verb": "start"}, "not_handled"),
    (MANAGE, "micarray", {"unit": "micarray-run@../x.service", "verb": "start"}, "not_handled"),
    (MANAGE, "micarray", {"unit": "micarray-run-a.service", "verb": "start"}, "not_handled"),
    # Transient units (StartTransientUnit carries no unit name on older systemd).
    (MANAGE, "micarray", {}, "not_handled"),
    (MANAGE, "alice", {"unit": "micarray-run@a.service", "verb": "start"}, "not_handled"),
    ("org.freedesktop.login1.reboot", "micarray", {}, "not_handled"),
]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to evaluate the rule")
def test_polkit_rule_allows_only_run_units() -> None:
    cases = [[action, user, details] for action, user, details, _ in POLKIT_CASES]
    proc = subprocess.run(
        [
            "node",
            "-e",
            POLKIT_HARNESS,
            "--",
            str(UNIT_DIR / "polkit/50-micarray.rules"),
            json.dumps(cases),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(proc.stdout) == [expected for *_, expected in POLKIT_CASES]


RUN_GENERATOR = Path("/usr/lib/systemd/system-generators/systemd-run-generator")


@needs_analyze
@pytest.mark.skipif(not RUN_GENERATOR.exists(), reason="needs systemd's run generator")
def test_systemd_run_on_the_kernel_command_line_runs_nothing_and_powers_nothing_off(staged: Path) -> None:
    # The real generator, fed Imager's kernel command line.
    out = staged / "etc/systemd/system"
    env = {"SYSTEMD_PROC_CMDLINE": "root=LABEL=RASPIROOT systemd.run=/boot/firstrun.sh "
           "systemd.run_success_action=reboot systemd.unit=kernel-command-line.target"}  # fmt: skip
    subprocess.run([str(RUN_GENERATOR), str(out), str(out), str(out)], env=env, check=True, timeout=60)
    generated = (out / "kernel-command-line.service").read_text()
    # What the drop-in must undo: running the script, and powering off when it fails.
    assert "ExecStart=/boot/firstrun.sh" in generated and "FailureAction=exit" in generated
    dropin = UNIT_DIR / "kernel-command-line.service.d/50-micarray.conf"
    target = out / "kernel-command-line.service.d"
    target.mkdir()
    shutil.copy(dropin, target)
    shutil.copy("/usr/bin/systemctl", staged / "usr/bin/systemctl")
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={staged}", "kernel-command-line.service"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")
    settings: dict[str, list[str]] = {}
    for line in dropin.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    assert settings["ExecStart"] == ["", "/usr/bin/systemctl --no-block start multi-user.target"]
    assert settings["SuccessAction"] == ["none"] and settings["FailureAction"] == ["none"]
    assert "kernel-command-line.service.d/50-micarray.conf" in (REPO / "image/customize.sh").read_text()
