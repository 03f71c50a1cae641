"""A stand-in for ``systemctl`` and PID 1, for the run-unit launcher's tests.

systemd is not PID 1 on the build machine, so this plays both parts for the
verbs the launcher uses on ``micarray-run@<id>.service``, the way the
template unit says: ``start --wait`` reads ``<runtime>/<id>.env``, connects
the script's stdout and stderr to ``<runtime>/<id>.stdout`` and ``.stderr``,
runs ``python -u $BI_SCRIPT_NAME`` in ``<runs>/<id>`` as the run user in its
own process group, kills what is left of the group when the script ends
(KillMode=control-group) and exits 1 when the unit failed.  ``kill``,
``show`` and ``reset-failed`` act on what ``start`` recorded.

Configured by environment: FAKE_SYSTEMD_RUNS, FAKE_SYSTEMD_RUNTIME,
FAKE_SYSTEMD_STATE, FAKE_SYSTEMD_USER; FAKE_SYSTEMD_DENY=1 refuses every
start like polkit without the rule.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

UNIT_PREFIX, UNIT_SUFFIX = "micarray-run@", ".service"


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = shlex.split(value)[0] if value else ""
    return env


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    return sock


def start(run_id: str, unit: str) -> int:
    if os.environ.get("FAKE_SYSTEMD_DENY"):
        print(f"Failed to start {unit}: Access denied", file=sys.stderr)
        return 1
    runtime = Path(os.environ["FAKE_SYSTEMD_RUNTIME"])
    state = Path(os.environ["FAKE_SYSTEMD_STATE"])
    env = read_env(runtime / f"{run_id}.env")
    out, err = connect(runtime / f"{run_id}.stdout"), connect(runtime / f"{run_id}.stderr")
    user = pwd.getpwnam(os.environ["FAKE_SYSTEMD_USER"])
    proc = subprocess.Popen(
        [sys.executable, "-u", env["BI_SCRIPT_NAME"]],
        cwd=Path(os.environ["FAKE_SYSTEMD_RUNS"]) / run_id,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out.fileno(),
        stderr=err.fileno(),
        start_new_session=True,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
    )
    out.close()
    err.close()
    (state / f"{run_id}.pid").write_text(str(proc.pid))
    rc = proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    if rc == 0:
        result, code, status = "success", 1, 0
    elif rc > 0:
        result, code, status = "exit-code", 1, rc
    else:
        result, code, status = "signal", 2, -rc
    show = f"Result={result}\nExecMainCode={code}\nExecMainStatus={status}\n"
    (state / f"{run_id}.show").write_text(show)
    return 0 if rc == 0 else 1


def main(argv: list[str]) -> int:
    args = [arg for arg in argv if arg not in ("--no-ask-password", "--wait")]
    verb, unit = args[0], args[-1]
    run_id = unit.removeprefix(UNIT_PREFIX).removesuffix(UNIT_SUFFIX)
    state = Path(os.environ["FAKE_SYSTEMD_STATE"])
    if verb == "start":
        return start(run_id, unit)
    if verb == "kill":
        sig = signal.Signals[args[1].removeprefix("--signal=")]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int((state / f"{run_id}.pid").read_text()), sig)
        return 0
    if verb == "show":
        show = state / f"{run_id}.show"
        print(show.read_text() if show.exists() else "Result=success\nExecMainCode=0")
        return 0
    if verb == "reset-failed":
        (state / f"{run_id}.show").unlink(missing_ok=True)
        return 0
    print(f"fake systemctl: unknown verb {verb!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
