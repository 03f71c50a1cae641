"""How a user's script becomes a confined process: the seam with the OS.

Every launcher implements :class:`Launcher` (in ``appliance.runs.launchbase``) and
hands back the process plus the script's output streams.
:class:`RlimitLauncher` sets resource limits in the child before ``exec`` and
runs it in its own process group; the systemd launchers
(``appliance.runs.systemd_launcher``) put each run in a unit whose cgroup holds the
limits.  :func:`default_launcher` picks one.  Either way a run drops to an
unprivileged user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import shutil
import sys
from functools import partial
from pathlib import Path

from appliance.runs.launchbase import (
    Launched,
    Launcher,
    LaunchError,
    LaunchSpec,
    RunLimits,
    RunOutput,
    check_reachable,
    chown_tree,
    own_user_name,
    resolve_run_user,
    spawn_with_pipes,
)
from appliance.runs.systemd_launcher import SystemdRunLauncher, SystemdUnitLauncher, template_installed

__all__ = [
    "LaunchError",
    "LaunchSpec",
    "Launched",
    "Launcher",
    "RlimitLauncher",
    "RunLimits",
    "RunOutput",
    "default_launcher",
    "group_alive",
]

log = logging.getLogger(__name__)


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


class RlimitLauncher:
    """Resource limits set in the child before exec; for machines without systemd."""

    def __init__(self, limits: RunLimits | None = None, interpreter: str = sys.executable) -> None:
        self.limits = limits or RunLimits()
        self.fixed_run_root: Path | None = None
        self.interpreter = interpreter
        self.user = resolve_run_user(self.limits.user)

    @property
    def user_name(self) -> str:
        """The account runs execute as."""
        return self.user.name if self.user else own_user_name()

    def prepare(self, spec: LaunchSpec) -> None:
        """Hand the run's writable folders to the run user so the script can write there."""
        if self.user is not None:
            for folder in spec.writable_dirs:
                check_reachable(folder, self.user)
                chown_tree(folder, self.user.uid, self.user.gid)

    async def spawn(self, spec: LaunchSpec) -> Launched:
        """Start ``interpreter -u script`` in a new session with the limits applied."""
        user = self.user
        nproc = self.limits.max_processes if user is not None else None
        return await spawn_with_pipes(
            self.interpreter,
            "-u",
            spec.script,
            cwd=spec.workdir,
            env=spec.env,
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

    async def finish(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> tuple[int, str | None]:
        """Nothing to clean up; the child was the script itself."""
        return (proc.returncode if proc.returncode is not None else -1), None


def default_launcher(limits: RunLimits | None = None, interpreter: str = sys.executable) -> Launcher:
    """The launcher that confines runs best on this machine.

    With systemd as PID 1: the administrator's ``micarray-run@.service``
    template when it is installed (the image; the service need not be root),
    else transient ``systemd-run`` units when we are root.  Otherwise
    resource limits in the child.
    """
    if Path("/run/systemd/system").is_dir():
        if template_installed():
            return SystemdUnitLauncher(limits)
        if os.geteuid() == 0 and shutil.which("systemd-run") is not None:
            return SystemdRunLauncher(limits, interpreter)
    if os.geteuid() != 0:
        log.warning("scripts run as this service's own user: no systemd run unit and not root")
    return RlimitLauncher(limits, interpreter)
