"""``micarray-update``: install a new appliance wheel, keep the previous one, go back by itself.

The device keeps the wheel it runs and the one before it in :data:`STATE_DIR`
(the image puts its own wheel there as the first ``current.whl``). An update:

1. checks the new wheel's name (``micarray_appliance-<version>-...whl``);
2. installs it into the virtual environment (dependencies at the image's
   pinned versions, as before);
3. restarts ``micarray.service`` and waits at most :data:`READY_TIMEOUT_S`
   for it to become ready (``Type=notify``: ``systemctl restart`` returns
   once the service has said READY=1, or fails when it exits first);
4. keeps it when the service is ready; otherwise reinstalls the wheel that
   ran before, restarts that, and says so: in the journal, on the terminal,
   and in :data:`STATUS_FILE`, which the service reads at every start and
   shows to the admin on every page, as it does with boot-file problems.

Run as root (the image has no ``sudo``: log in as root with the key).
``micarray-update`` in ``/usr/local/sbin`` is a two-line wrapper around
``python -m appliance.boot.update``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import syslog
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from appliance.boot.bootreport import UPDATE_STATUS_FILE

VENV = Path("/opt/micarray/.venv")
CONSTRAINTS = Path("/opt/micarray/requirements.lock")
STATE_DIR = Path("/var/lib/micarray-update")
DATA_DIR = Path("/var/lib/micarray")
STATUS_FILE = UPDATE_STATUS_FILE
SERVICE = "micarray.service"
#: How long a new version has to become ready (the unit's TimeoutStartSec= is 90 s).
READY_TIMEOUT_S = 90.0
#: A wheel of the appliance is a few MB; a download is refused past this.
MAX_WHEEL_BYTES = 200 << 20
_WHEEL = re.compile(r"^micarray_appliance-(?P<version>[0-9][0-9A-Za-z.+!_]*)-[^/]*\.whl$")


class UpdateError(Exception):
    """The update could not be done; the message says why and what is running."""


@dataclass(frozen=True, slots=True)
class Paths:
    """Where things are; tests point them into a temporary tree."""

    venv: Path = VENV
    constraints: Path = CONSTRAINTS
    state: Path = STATE_DIR
    data: Path = DATA_DIR
    systemctl: str = "systemctl"

    @property
    def current(self) -> Path:
        """Holds the running version's wheel, under its own name (pip reads the version from it)."""
        return self.state / "current"

    @property
    def previous(self) -> Path:
        """Holds the wheel that ran before it."""
        return self.state / "previous"

    @property
    def incoming(self) -> Path:
        return self.state / "incoming"


def stored_wheel(folder: Path) -> Path | None:
    """The one wheel kept in ``folder``, or None."""
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    return wheels[0] if wheels else None


def wheel_version(name: str) -> str:
    """The version in a wheel file's name; UpdateError for anything but an appliance wheel."""
    match = _WHEEL.match(name)
    if not match:
        raise UpdateError(
            f"{name!r} is not a wheel of the appliance; build one in a checkout with "
            "`pip wheel --no-deps .` (its name starts micarray_appliance-)"
        )
    return match.group("version")


def say(message: str, warning: bool = False) -> None:
    """On the terminal and in the journal (syslog reaches journald on the device)."""
    print(f"micarray-update: {message}", file=sys.stderr, flush=True)
    syslog.openlog("micarray-update")
    syslog.syslog(syslog.LOG_WARNING if warning else syslog.LOG_INFO, message)


def fetch(source: str, paths: Paths) -> Path:
    """The new wheel copied into the state directory (a URL is downloaded, at most MAX_WHEEL_BYTES)."""
    shutil.rmtree(paths.incoming, ignore_errors=True)
    paths.incoming.mkdir(parents=True)
    if source.startswith(("http://", "https://")):
        name = source.rstrip("/").rsplit("/", 1)[-1]
        wheel_version(name)
        target = paths.incoming / name
        with urllib.request.urlopen(source, timeout=60) as answer, target.open("wb") as out:
            while chunk := answer.read(1 << 20):
                if out.tell() + len(chunk) > MAX_WHEEL_BYTES:
                    raise UpdateError(f"{name} is larger than {MAX_WHEEL_BYTES >> 20} MB; not installed")
                out.write(chunk)
        return target
    path = Path(source)
    wheel_version(path.name)
    if not path.is_file():
        raise UpdateError(f"{source} is not a file")
    target = paths.incoming / path.name
    shutil.copyfile(path, target)
    return target


def pip_install(paths: Paths, wheel: Path, with_deps: bool) -> subprocess.CompletedProcess[str]:
    """Install the wheel into the venv (replacing the appliance even at the same version)."""
    pip = [str(paths.venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if with_deps:
        # Dependencies stay at the image's pinned versions; pip refuses rather than mixing.
        done = subprocess.run(
            [*pip, "--no-build-isolation", "-c", str(paths.constraints), str(wheel)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return done
    return subprocess.run(
        [*pip, "--force-reinstall", "--no-deps", str(wheel)], capture_output=True, text=True, check=False
    )


def restart_and_wait(paths: Paths, timeout: float) -> str | None:
    """Restart the service; None once it is ready and active, else why not."""
    try:
        done = subprocess.run(
            [paths.systemctl, "restart", SERVICE],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"it did not become ready within {timeout:.0f} s"
    state = subprocess.run(
        [paths.systemctl, "is-active", SERVICE], capture_output=True, text=True, check=False
    ).stdout.strip()
    if done.returncode != 0 or state != "active":
        detail = (done.stderr or done.stdout).strip().splitlines()
        return f"it failed to start ({state or 'unknown'}{': ' + detail[0] if detail else ''})"
    return None


def write_status(paths: Paths, body: dict[str, str]) -> None:
    """The outcome where the service reads it at start (owned by root, readable by the service)."""
    paths.data.mkdir(parents=True, exist_ok=True)
    path = paths.data / STATUS_FILE
    tmp = path.with_name(f".{STATUS_FILE}.new")
    tmp.write_text(json.dumps({"time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"), **body}) + "\n")
    tmp.chmod(0o644)
    os.replace(tmp, path)


def update(source: str, paths: Paths, timeout: float = READY_TIMEOUT_S) -> int:
    """The whole update; 0 when the new version runs, 1 when it went back."""
    running = stored_wheel(paths.current)
    if running is None:
        raise UpdateError(
            f"no copy of the running version in {paths.current}/, so there would be nothing to "
            "go back to; record the running version's wheel once with --keep-current WHEEL"
        )
    old = wheel_version(running.name)
    incoming = fetch(source, paths)
    new = wheel_version(incoming.name)
    say(f"installing {new} (running {old}); it has {timeout:.0f} s to become ready")
    installed = pip_install(paths, incoming, with_deps=True)
    reason = None if installed.returncode == 0 else "pip could not install it: " + _last(installed)
    if reason is None:
        reason = restart_and_wait(paths, timeout)
    if reason is None:
        shutil.rmtree(paths.previous, ignore_errors=True)
        os.replace(paths.current, paths.previous)
        os.replace(paths.incoming, paths.current)
        write_status(paths, {"result": "updated", "version": new, "previous": old})
        say(f"{new} is running; {old} is kept to go back to: micarray-update {paths.previous / running.name}")
        return 0
    say(f"the update to {new} failed: {reason}; going back to {old}", warning=True)
    shutil.rmtree(paths.incoming, ignore_errors=True)
    _go_back(paths, running, new, reason, timeout)
    return 1


def _go_back(paths: Paths, running: Path, new: str, reason: str, timeout: float) -> None:
    old = wheel_version(running.name)
    back = pip_install(paths, running, with_deps=False)
    subprocess.run([paths.systemctl, "reset-failed", SERVICE], capture_output=True, check=False)
    again = restart_and_wait(paths, timeout) if back.returncode == 0 else "pip: " + _last(back)
    write_status(
        paths,
        {
            "result": "rolled back",
            "version": old,
            "failed": new,
            "reason": reason,
            "now": again or "running",
        },
    )
    if again is None:
        say(f"rolled back: {old} is running again", warning=True)
    else:
        say(f"going back to {old} failed too: {again}; reinstall a wheel by hand", warning=True)


def keep_current(wheel: Path, paths: Paths) -> None:
    """Record ``wheel`` as the running version (the image build does this once)."""
    wheel_version(wheel.name)
    shutil.rmtree(paths.current, ignore_errors=True)
    paths.current.mkdir(parents=True)
    shutil.copyfile(wheel, paths.current / wheel.name)


def _last(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def main(argv: Sequence[str] | None = None) -> int:
    """``micarray-update WHEEL|URL`` (as root)."""
    parser = argparse.ArgumentParser(prog="micarray-update", description=__doc__.split("\n")[0])
    parser.add_argument("wheel", help="a wheel of the appliance: a file, or an http(s) URL")
    parser.add_argument("--ready-timeout", type=float, default=READY_TIMEOUT_S, help="seconds (default 90)")
    parser.add_argument(
        "--keep-current", action="store_true", help="only record WHEEL as the running version"
    )
    parser.add_argument("--venv", type=Path, default=VENV, help=argparse.SUPPRESS)
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--constraints", type=Path, default=CONSTRAINTS, help=argparse.SUPPRESS)
    parser.add_argument("--systemctl", default="systemctl", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    paths = Paths(args.venv, args.constraints, args.state_dir, args.data_dir, args.systemctl)
    try:
        if args.keep_current:
            keep_current(Path(args.wheel), paths)
            return 0
        return update(args.wheel, paths, args.ready_timeout)
    except (UpdateError, OSError) as exc:
        say(f"nothing was changed: {exc}", warning=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
