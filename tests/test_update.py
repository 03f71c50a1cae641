"""``micarray-update`` against a real virtual environment, real wheels and a real service.

Three wheels of the appliance are built from this tree with pip (a good one,
one that fails at import, one that starts but never says READY=1). They are
installed into a fresh virtual environment whose dependencies come from the
test environment through a ``.pth`` line (so numpy is not installed again),
and ``micarray.service`` is played by a small ``systemctl`` that starts the
venv's own ``appliance serve --source sim --no-mdns`` on loopback, hands it a
``NOTIFY_SOCKET`` and, like systemd for ``Type=notify``, answers ``restart``
once READY=1 arrives or fails when the process exits first.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.boot import bootreport, update
from tests.server import free_port
from tests.wheels import appliance_wheel

# Building four wheels and a venv takes a minute alone, several on a loaded machine.
pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parent.parent
BASE, GOOD, BROKEN, SILENT = "0.1.0", "0.1.1", "0.1.2", "0.1.3"
# Each broken wheel breaks the service module the way a bad release would.
BREAKAGE = {
    BROKEN: 'raise ImportError("this release is broken on purpose")\n',
    SILENT: "import time\n\ntime.sleep(3600)  # never gets as far as READY=1\n",
}
READY_TIMEOUT_S = 20.0
SERVES = (302, "/setup")
PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"

FAKE_SYSTEMCTL = r'''#!PYTHON
"""systemctl and PID 1 for one Type=notify unit, micarray.service (see test_update.py)."""
import os, signal, socket, subprocess, sys, time
from pathlib import Path

STATE = Path(os.environ["FAKE_SERVICE_STATE"])
VENV, DATA = os.environ["FAKE_SERVICE_VENV"], os.environ["FAKE_SERVICE_DATA"]
PORT = os.environ["FAKE_SERVICE_PORT"]
pidfile, statefile = STATE / "pid", STATE / "state"

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")

def stop():
    if pidfile.exists():
        pid = int(pidfile.read_text())
        if alive(pid):
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)
        pidfile.unlink()
    statefile.write_text("inactive")

def start():
    sock_path = STATE / "notify"
    sock_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.1)
    log = open(STATE / "service.log", "ab")
    cmd = [f"{VENV}/bin/appliance", "serve", "--source", "sim", "--no-mdns", "--bind", "127.0.0.1",
           "--http-port", PORT, "--data-dir", DATA]
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path)}
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    pidfile.write_text(str(proc.pid))
    statefile.write_text("activating")
    while proc.poll() is None:
        try:
            if b"READY=1" in sock.recv(4096).split(b"\n"):
                statefile.write_text("active")
                return 0
        except socket.timeout:
            pass
    statefile.write_text("failed")
    print("Job for micarray.service failed because the control process exited with error code.",
          file=sys.stderr)
    return 1

verb = sys.argv[1]
if verb == "restart":
    stop()
    sys.exit(start())
if verb == "stop":
    stop()
elif verb == "is-active":
    state = statefile.read_text() if statefile.exists() else "inactive"
    if state == "active" and not alive(int(pidfile.read_text())):
        state = "failed"
    print(state)
    sys.exit(0 if state == "active" else 3)
'''


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("wheels")
    src = work / "src"
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    src.mkdir()
    for name in files.splitlines():
        if name.startswith(("appliance/", "browserinterface/", "rtai/")) or name in (
            "pyproject.toml",
            "README.md",
        ):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    wheels: dict[str, Path] = {}
    for version in (BASE, GOOD, BROKEN, SILENT):
        tree = shutil.copytree(src, work / f"tree-{version}")
        wheels[version] = appliance_wheel(tree, work / "dist", version, BREAKAGE.get(version, ""))
    return wheels


class Device:
    """A venv with the base version installed and recorded, and its service running."""

    def __init__(self, root: Path, wheels: dict[str, Path]) -> None:
        self.root = root
        self.venv = root / "opt/micarray/.venv"
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True, timeout=120)
        site = Path(
            subprocess.run(
                [str(self.venv / "bin/python"), "-c", PURELIB],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
        )  # fmt: skip
        # The test environment's packages (numpy, tornado, ...) without its editable appliance.
        (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        self.state = Path(tempfile.mkdtemp(prefix="svc", dir="/tmp"))  # short: a socket lives here
        self.port = free_port()
        systemctl = root / "bin/systemctl"
        systemctl.parent.mkdir(parents=True)
        systemctl.write_text(FAKE_SYSTEMCTL.replace("PYTHON", sys.executable, 1))
        systemctl.chmod(0o755)
        self.paths = update.Paths(
            venv=self.venv,
            constraints=REPO / "requirements.lock",
            state=root / "var/lib/micarray-update",
            data=root / "var/lib/micarray",
            systemctl=str(systemctl),
        )
        self.env = {
            "FAKE_SERVICE_STATE": str(self.state),
            "FAKE_SERVICE_VENV": str(self.venv),
            "FAKE_SERVICE_DATA": str(self.paths.data),
            "FAKE_SERVICE_PORT": str(self.port),
        }
        self.pip_installed = False
        self.reset(wheels[BASE])

    def reset(self, base: Path) -> None:
        # Only wheels are ever installed here, so the base version's files are the base wheel's:
        # after a rollback (or a refused update) there is nothing to install again.
        if not self.pip_installed or self.installed() != update.wheel_version(base.name):
            self.pip_install(base)
        for folder in (self.paths.previous, self.paths.incoming):
            shutil.rmtree(folder, ignore_errors=True)
        (self.paths.data / update.STATUS_FILE).unlink(missing_ok=True)
        update.keep_current(base, self.paths)
        assert self.systemctl("restart").returncode == 0, self.log()

    def pip_install(self, wheel: Path) -> None:
        self.pip_installed = True
        subprocess.run(
            [str(self.venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
             str(wheel)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip

    def systemctl(self, verb: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.paths.systemctl, verb, update.SERVICE], env=self.environ(), capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def micarray_update(self, wheel: Path | str) -> subprocess.CompletedProcess[str]:
        """The real command as a root shell runs it (the image's wrapper execs this module)."""
        p = self.paths
        cmd = [
            str(self.venv / "bin/python"), "-m", "appliance.boot.update", str(wheel),
            "--ready-timeout", str(READY_TIMEOUT_S), "--venv", str(p.venv), "--state-dir", str(p.state),
            "--data-dir", str(p.data), "--constraints", str(p.constraints), "--systemctl", p.systemctl,
        ]  # fmt: skip
        return subprocess.run(
            cmd, env=self.environ(), capture_output=True, text=True, timeout=300, check=False
        )

    def installed(self) -> str:
        return subprocess.run(
            [str(self.venv / "bin/python"), "-c",
             "import importlib.metadata as m; print(m.version('micarray-appliance'))"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    def login_page(self) -> tuple[int, str | None]:
        """What GET /login answers: an unconfigured device sends the browser to first-run setup."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/login")
        answer = conn.getresponse()
        conn.close()
        return answer.status, answer.getheader("Location")

    def status(self) -> dict[str, str]:
        data = json.loads((self.paths.data / update.STATUS_FILE).read_text())
        assert isinstance(data, dict)
        return data

    def log(self) -> str:
        path = self.state / "service.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self.systemctl("stop")
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture(scope="module")
def one_device(tmp_path_factory: pytest.TempPathFactory, wheels: dict[str, Path]) -> Iterator[Device]:
    dev = Device(tmp_path_factory.mktemp("device"), wheels)
    try:
        yield dev
    finally:
        dev.close()


@pytest.fixture
def device(one_device: Device, wheels: dict[str, Path]) -> Device:
    """The device as flashed: the base version installed, recorded and running, nothing else kept."""
    one_device.reset(wheels[BASE])
    return one_device


def test_a_good_update_sticks_and_keeps_the_one_before(device: Device, wheels: dict[str, Path]) -> None:
    done = device.micarray_update(wheels[GOOD])
    assert done.returncode == 0, done.stderr + device.log()
    assert device.installed() == GOOD
    assert device.login_page() == SERVES
    assert [p.name for p in device.paths.current.iterdir()] == [wheels[GOOD].name]
    assert [p.name for p in device.paths.previous.iterdir()] == [wheels[BASE].name]
    assert device.status()["result"] == "updated"
    assert bootreport.update_notices(device.paths.data) == []
    # A reboot (the service started again) keeps it.
    assert device.systemctl("restart").returncode == 0
    assert device.installed() == GOOD and device.login_page() == SERVES


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        (BROKEN, "it failed to start (failed: Job for micarray.service failed"),
        (SILENT, f"it did not become ready within {READY_TIMEOUT_S:.0f} s"),
    ],
)
def test_a_broken_update_goes_back_by_itself_and_says_so(
    device: Device, wheels: dict[str, Path], version: str, reason: str
) -> None:
    done = device.micarray_update(wheels[version])
    assert done.returncode == 1, done.stderr
    assert f"the update to {version} failed: {reason}" in done.stderr
    assert f"rolled back: {BASE} is running again" in done.stderr
    assert device.installed() == BASE
    assert device.systemctl("is-active").stdout.strip() == "active"
    assert device.login_page() == SERVES
    status = device.status()
    assert (status["result"], status["version"], status["failed"], status["now"]) == (
        "rolled back", BASE, version, "running",
    )  # fmt: skip
    assert reason in status["reason"]
    [notice] = bootreport.update_notices(device.paths.data)
    assert notice.startswith(f"The update to {version} was rolled back on ")
    assert f"Version {BASE} is running (running)" in notice
    # The running version is still the one kept to go back to; the bad one is not kept.
    assert [p.name for p in device.paths.current.iterdir()] == [wheels[BASE].name]
    assert not device.paths.previous.exists() and not device.paths.incoming.exists()


def test_what_is_not_an_appliance_wheel_changes_nothing(device: Device, tmp_path: Path) -> None:
    other = tmp_path / "requests-2.0-py3-none-any.whl"
    other.write_bytes(b"PK")
    done = device.micarray_update(other)
    assert done.returncode == 2
    assert (
        "is not a wheel of the appliance; build one in a checkout with `pip wheel --no-deps .`" in done.stderr
    )
    assert device.installed() == BASE and device.login_page() == SERVES


def test_without_a_kept_version_it_refuses(device: Device, wheels: dict[str, Path]) -> None:
    shutil.rmtree(device.paths.current)
    done = device.micarray_update(wheels[GOOD])
    assert done.returncode == 2
    assert "there would be nothing to go back to" in done.stderr
    assert device.installed() == BASE


def test_the_image_runs_the_module_and_needs_no_sudo() -> None:
    wrapper = (REPO / "image/files/micarray-update").read_text()
    assert 'exec /opt/micarray/.venv/bin/python -m appliance.boot.update "$@"' in wrapper
    assert "sudo micarray" not in wrapper
