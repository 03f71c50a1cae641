"""How a user's script becomes a confined process: the seam with the OS.

Two launchers implement one :class:`Launcher` protocol.  Where systemd is PID 1
each run is a transient unit (``systemd-run``) whose cgroup enforces memory,
CPU and task limits and is killed as a whole.  Elsewhere (containers, laptops,
this project's test machine) the child sets resource limits on itself before
``exec`` and runs in its own process group.  Either way a run started by root
drops to an unprivileged user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Protocol

from appliance.runlimits import (
    LaunchError,
    LaunchSpec,
    RunLimits,
    RunUser,
    check_reachable,
    resolve_run_user,
)

__all__ = [
    "LaunchError",
    "LaunchSpec",
    "Launcher",
    "RlimitLauncher",
    "RunLimits",
    "SystemdRunLauncher",
    "default_launcher",
    "group_alive",
]

log = logging.getLogger(__name__)


class Launcher(Protocol):
    """Starts, signals and watches one run's processes."""

    limits: RunLimits

    @property
    def user_name(self) -> str:
        """The account runs execute as."""
        ...

    def prepare(self, spec: LaunchSpec) -> None:
        """Make ``spec.run_dir`` usable by the run user (blocking file I/O)."""
        ...

    async def spawn(self, spec: LaunchSpec, stdout: int, stderr: int) -> asyncio.subprocess.Process:
        """Start the run with stdin from /dev/null and the given output pipes.

        The caller owns both ends of the pipes, so it can let go of them even
        when a process that escaped the run still holds the write ends.
        """
        ...

    async def signal(self, spec: LaunchSpec, proc: asyncio.subprocess.Process, sig: int) -> None:
        """Send ``sig`` to every process of the run."""
        ...

    def alive(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> bool:
        """Whether any process of the run is still there (zombies do not count)."""
        ...

    async def finish(self, spec: LaunchSpec, returncode: int) -> tuple[int, str | None]:
        """Clean up after the run.

        Returns the script's exit status (negative: the signal that ended it),
        which may differ from ``returncode`` when a helper stood in between,
        and a reason in words when the launcher knows it (a cgroup OOM kill).
        """
        ...


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` has a member that is not a zombie.

    Zombies count as members for ``kill(-pgid, 0)``, and a container's PID 1
    may never reap orphans, so /proc is read to tell them apart.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with os.scandir("/proc") as entries:
        pids = [entry.name for entry in entries if entry.name.isdigit()]
    for pid in pids:
        try:
            raw = Path("/proc", pid, "stat").read_bytes()
        except OSError:
            continue  # it ended while we looked
        # Fields after the parenthesised command: state ppid pgrp ...
        fields = raw[raw.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _limit_child(memory_bytes: int, nice: int, nproc: int | None) -> None:
    # Runs in the child between fork and exec, after the user switch: only
    # async-signal-safe-ish system calls, no locks, no logging.
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    os.nice(nice)


def _own_user_name() -> str:
    # Containers often run as a uid that has no passwd entry.
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


class RlimitLauncher:
    """Resource limits set in the child before exec; for machines without systemd."""

    def __init__(self, limits: RunLimits | None = None, interpreter: str = sys.executable) -> None:
        self.limits = limits or RunLimits()
        self.interpreter = interpreter
        self.user = resolve_run_user(self.limits.user)

    @property
    def user_name(self) -> str:
        """The account runs execute as."""
        return self.user.name if self.user else _own_user_name()

    def prepare(self, spec: LaunchSpec) -> None:
        """Hand the run directory to the run user so the script can write there."""
        if self.user is not None:
            check_reachable(spec.run_dir, self.user)
            os.chown(spec.run_dir, self.user.uid, self.user.gid)

    async def spawn(self, spec: LaunchSpec, stdout: int, stderr: int) -> asyncio.subprocess.Process:
        """Start ``interpreter -u script`` in a new session with the limits applied."""
        user = self.user
        nproc = self.limits.max_processes if user is not None else None
        return await asyncio.create_subprocess_exec(
            self.interpreter,
            "-u",
            spec.script,
            cwd=spec.run_dir,
            env=spec.env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=partial(_limit_child, self.limits.memory_bytes, self.limits.nice, nproc),
            user=user.uid if user else None,
            group=user.gid if user else None,
            extra_groups=[] if user else None,
        )

    async def signal(self, spec: LaunchSpec, proc: asyncio.subprocess.Process, sig: int) -> None:
        """Signal the run's process group (its id is the leader's pid)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def alive(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> bool:
        """Whether the leader runs or any other member of its group is left."""
        return proc.returncode is None or group_alive(proc.pid)

    async def finish(self, spec: LaunchSpec, returncode: int) -> tuple[int, str | None]:
        """Nothing to clean up; the child was the script itself."""
        return returncode, None


def env_file_text(env: dict[str, str]) -> str:
    """``env`` as a systemd EnvironmentFile (values double-quoted)."""
    lines = []
    for key, value in sorted(env.items()):
        if not key.replace("_", "a").isalnum() or "\n" in value or "\0" in value:
            raise LaunchError(f"environment entry {key!r} cannot be passed to systemd")
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key}="{quoted}"\n')
    return "".join(lines)


def systemd_run_argv(
    spec: LaunchSpec, limits: RunLimits, user: RunUser | None, interpreter: str, env_file: Path
) -> list[str]:
    """The ``systemd-run`` command line for one run (pure, for tests and logs).

    The environment goes through a root-only file rather than ``--setenv`` so
    the run's token never shows up in ``ps``.
    """
    props = {
        "MemoryMax": str(limits.memory_bytes),
        "MemorySwapMax": "0",
        "CPUQuota": f"{limits.cpu_percent}%",
        "TasksMax": str(limits.max_processes),
        "LimitCORE": "0",
        "EnvironmentFile": str(env_file),
        "KillMode": "control-group",
        "TimeoutStopSec": "1s",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectSystem": "strict",
        "ReadWritePaths": str(spec.run_dir),
    }
    argv = [
        "systemd-run",
        f"--unit={spec.unit}",
        f"--description=micarray script {spec.script}",
        "--quiet",
        "--wait",
        "--pipe",
        f"--working-directory={spec.run_dir}",
        f"--nice={limits.nice}",
    ]
    if user is not None:
        argv += [f"--uid={user.uid}", f"--gid={user.gid}"]
    argv += [f"--property={key}={value}" for key, value in props.items()]
    return [*argv, "--", interpreter, "-u", spec.script]


class SystemdRunLauncher:
    """Each run is a transient systemd service: its cgroup holds the limits.

    No ``--collect``: a failed unit stays loaded until :meth:`finish` has read
    its result (``oom-kill`` says the memory limit ended it) and reset it.
    """

    def __init__(self, limits: RunLimits | None = None, interpreter: str = sys.executable) -> None:
        self.limits = limits or RunLimits()
        self.interpreter = interpreter
        self.user = resolve_run_user(self.limits.user)

    @property
    def user_name(self) -> str:
        """The account runs execute as."""
        return self.user.name if self.user else _own_user_name()

    def _env_file(self, spec: LaunchSpec) -> Path:
        return spec.run_dir.with_name(f"{spec.run_id}.env")

    def prepare(self, spec: LaunchSpec) -> None:
        """Hand the run directory to the run user and write the root-only env file."""
        if self.user is not None:
            check_reachable(spec.run_dir, self.user)
            os.chown(spec.run_dir, self.user.uid, self.user.gid)
        path = self._env_file(spec)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(env_file_text(spec.env))

    async def spawn(self, spec: LaunchSpec, stdout: int, stderr: int) -> asyncio.subprocess.Process:
        """Start ``systemd-run --wait --pipe``; it lives as long as the unit."""
        argv = systemd_run_argv(spec, self.limits, self.user, self.interpreter, self._env_file(spec))
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )

    async def _systemctl(self, *args: str) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                "systemctl",
                *args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            log.warning("systemctl %s failed: %s", " ".join(args), exc)
            return ""
        out, _ = await proc.communicate()
        return out.decode("utf-8", "replace")

    async def signal(self, spec: LaunchSpec, proc: asyncio.subprocess.Process, sig: int) -> None:
        """Signal every process in the unit's cgroup."""
        await self._systemctl("kill", f"--signal={signal.Signals(sig).name}", spec.unit)

    def alive(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> bool:
        """``systemd-run --wait`` returns only once the whole cgroup is empty."""
        return proc.returncode is None

    async def finish(self, spec: LaunchSpec, returncode: int) -> tuple[int, str | None]:
        """Read how the unit's main process ended, forget the unit, remove the env file."""
        reason = None
        if returncode != 0:
            shown = await self._systemctl("show", "--property=Result,ExecMainCode,ExecMainStatus", spec.unit)
            returncode, reason = unit_end(shown, returncode, self.limits)
            await self._systemctl("reset-failed", spec.unit)
        self._env_file(spec).unlink(missing_ok=True)
        return returncode, reason


def unit_end(shown: str, returncode: int, limits: RunLimits) -> tuple[int, str | None]:
    """Exit status and reason from ``systemctl show`` of an ended run unit.

    systemd-run reports a signal death only as a failure status of its own;
    the unit's ExecMainCode (1 exited, 2 killed, 3 dumped core) says more.
    """
    props = dict(line.partition("=")[::2] for line in shown.splitlines())
    status = props.get("ExecMainStatus", "")
    if props.get("ExecMainCode") in ("2", "3") and status.isdigit():
        returncode = -int(status)
    elif props.get("ExecMainCode") == "1" and status.isdigit():
        returncode = int(status)
    if props.get("Result") == "oom-kill":
        return returncode, f"memory limit of {limits.memory_mib} MiB reached"
    return returncode, None


def default_launcher(limits: RunLimits | None = None, interpreter: str = sys.executable) -> Launcher:
    """systemd units when systemd is PID 1 and we are root, resource limits otherwise."""
    if os.geteuid() == 0 and Path("/run/systemd/system").is_dir() and shutil.which("systemd-run") is not None:
        return SystemdRunLauncher(limits, interpreter)
    return RlimitLauncher(limits, interpreter)
