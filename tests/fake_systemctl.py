"""A stand-in for ``systemctl`` and PID 1, for the run-unit launcher's tests.

systemd is not PID 1 on the build machine, so this plays both parts for the
verbs the launcher uses on ``micarray-run@<id>.service``, reading the real
template (``systemd/micarray-run@.service``): ``start --wait`` takes its
``Environment=`` and ``EnvironmentFile=``, connects the script's stdout and
stderr to ``<runtime>/<id>.stdout`` and ``.stderr``, makes its file system
view in a mount namespace of its own (``TemporaryFileSystem=``,
``BindPaths=`` following a source link as PID 1 does,
``BindReadOnlyPaths=``, ``InaccessiblePaths=``), runs its ``ExecStart=`` in
its ``WorkingDirectory=`` as a user of the run's own (``DynamicUser=``: a
uid made from ``User=``) with ``SupplementaryGroups=`` in its own process
group, kills what is left of the group when the script ends
(KillMode=control-group) and exits 1 when the unit failed.  ``kill``,
``show`` and ``reset-failed`` act on what ``start`` recorded.

The template's paths are moved into the test's folders: /run/micarray/runs
to FAKE_SYSTEMD_RUNTIME, /var/lib/micarray/runs to FAKE_SYSTEMD_RUNS,
/var/lib/micarray to FAKE_SYSTEMD_DATA.  Also configured by environment:
FAKE_SYSTEMD_STATE, FAKE_SYSTEMD_GROUP (the run group);
FAKE_SYSTEMD_DENY=1 refuses every start like polkit without the rule.
"""

from __future__ import annotations

import contextlib
import ctypes
import grp
import os
import shlex
import signal
import socket
import subprocess
import sys
import zlib
from pathlib import Path

UNIT_PREFIX, UNIT_SUFFIX = "micarray-run@", ".service"
TEMPLATE = Path(__file__).resolve().parents[1] / "systemd" / "micarray-run@.service"
#: Where systemd takes dynamic users from (systemd.exec(5)).
DYNAMIC_UIDS = (61184, 65519)
CLONE_NEWNS, MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20000, 1, 32, 4096, 16384, 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    args = [x.encode() if x is not None else None for x in (source, target, fstype, data)]
    if _libc.mount(args[0], args[1], args[2], flags, args[3]) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def template(run_id: str) -> list[tuple[str, str]]:
    """The template's [Service] settings for ``run_id``, with its paths moved into the test's."""
    moves = [
        ("/run/micarray/runs", os.environ["FAKE_SYSTEMD_RUNTIME"]),
        ("/var/lib/micarray/runs", os.environ["FAKE_SYSTEMD_RUNS"]),
        ("/var/lib/micarray", os.environ["FAKE_SYSTEMD_DATA"]),
    ]
    settings = []
    for line in TEMPLATE.read_text().splitlines():
        key, sep, value = line.partition("=")
        if not sep or line.startswith(("#", "[")):
            continue
        value = value.replace("%i", run_id)
        for old, new in moves:
            value = value.replace(old, new)
        settings.append((key, value))
    return settings


def _paths(settings: list[tuple[str, str]], key: str) -> list[str]:
    return [word for k, v in settings if k == key for word in shlex.split(v)]


def make_view(settings: list[tuple[str, str]]) -> None:
    """This process's own mount namespace, set up as the template's settings say."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    binds = []  # sources are opened first: a temporary file system may cover them
    for key, read_only in (("BindPaths", False), ("BindReadOnlyPaths", True)):
        for word in _paths(settings, key):
            optional = word.startswith("-")
            source, _, target = word.removeprefix("-").partition(":")
            try:
                fd = os.open(source, os.O_PATH)  # follows a link, as PID 1 does
            except FileNotFoundError:
                if optional:
                    continue
                raise
            binds.append((target or source, fd, read_only))
    tmpfs = [w.partition(":") for w in _paths(settings, "TemporaryFileSystem")]
    for path, _, _options in tmpfs:
        _mount("tmpfs", path, "tmpfs", 0, "mode=0755")
    for target, fd, read_only in sorted(binds):
        os.makedirs(target, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        if read_only:
            _mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        os.close(fd)
    for path, _, options in tmpfs:
        if options == "ro":
            _mount("none", path, None, MS_REMOUNT | MS_RDONLY, "mode=0755")
    for word in _paths(settings, "InaccessiblePaths"):
        path = word.removeprefix("-")
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY, "mode=0000")


def dynamic_uid(name: str) -> int:
    """A uid for ``name`` from the dynamic range (systemd hashes the name too)."""
    low, high = DYNAMIC_UIDS
    return low + zlib.crc32(name.encode()) % (high - low)


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
    out, err = connect(runtime / f"{run_id}.stdout"), connect(runtime / f"{run_id}.stderr")
    # The unit's own view and user are made in the child: this process keeps
    # the test's view to record how the run ended.
    proc = subprocess.Popen(
        [sys.executable, __file__, "__exec", run_id],
        stdin=subprocess.DEVNULL,
        stdout=out.fileno(),
        stderr=err.fileno(),
        start_new_session=True,
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


def exec_unit(run_id: str) -> None:
    """Become the unit's process: its environment, view of the files, user, then ExecStart."""
    settings = template(run_id)
    unit = dict(settings)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    for key, value in settings:
        if key == "Environment":
            env.update(word.partition("=")[::2] for word in shlex.split(value))
        elif key == "EnvironmentFile":
            env.update(read_env(Path(value)))
    make_view(settings)
    assert unit["DynamicUser"] == "yes"
    uid = dynamic_uid(unit["User"])
    os.setgroups([grp.getgrnam(os.environ["FAKE_SYSTEMD_GROUP"]).gr_gid])
    os.setgid(uid)
    os.setuid(uid)
    os.umask(int(unit["UMask"], 8))
    os.chdir(unit["WorkingDirectory"])
    argv = [word.replace("$$", "$") for word in shlex.split(unit["ExecStart"])]
    os.execve(argv[0], argv, env)


def main(argv: list[str]) -> int:
    if argv[0] == "__exec":
        exec_unit(argv[1])
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
