"""What a script run may use, who it runs as, and what is launched.

The plain data both launchers share: :class:`RunLimits` (memory, CPU, niceness,
processes, user), :class:`RunUser`, :class:`LaunchSpec`, and the checks that a
run user exists, is not root, and can reach the run directory.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import ApplianceError

#: Users a run switches to when the service runs as root, first that exists wins.
DEFAULT_RUN_USERS = ("micarray-run", "nobody")
#: Prefix of the transient systemd unit of a run: ``micarray-run-<id>.service``.
UNIT_PREFIX = "micarray-run-"
MIB = 1 << 20
#: Smallest memory limit accepted: below this the interpreter itself cannot start.
MIN_MEMORY_BYTES = 64 * MIB


class LaunchError(ApplianceError):
    """A run could not be started as configured (unknown user, unreachable directory)."""


@dataclass(frozen=True)
class RunLimits:
    """Resources one script run may use."""

    memory_bytes: int = 512 * MIB
    """Memory ceiling.  Address space (RLIMIT_AS) without systemd, so virtual
    reservations count; ``MemoryMax`` of the run's cgroup with systemd."""
    cpu_percent: int = 200
    """systemd ``CPUQuota``: 100 is one whole core.  Without systemd there is
    no quota, only :attr:`nice` (a CPU-time rlimit would kill long runs)."""
    nice: int = 10
    """Niceness added to the run so capture and the service always win the CPU."""
    max_processes: int = 64
    """``TasksMax`` with systemd; RLIMIT_NPROC of the run user otherwise (only
    when switching users: the limit counts every process of that user)."""
    user: str | None = None
    """Account to run as when the service is root; None picks the first of
    ``micarray-run``, ``nobody`` that exists.  Ignored when not root."""

    def __post_init__(self) -> None:
        if self.memory_bytes < MIN_MEMORY_BYTES:
            raise LaunchError(
                f"memory limit {self.memory_bytes} bytes is too small; "
                f"allowed is at least {MIN_MEMORY_BYTES} bytes (64 MiB)"
            )
        if not 1 <= self.cpu_percent <= 100 * 64:
            raise LaunchError(f"cpu_percent {self.cpu_percent} is not allowed; use 1 to 6400")
        if not 0 <= self.nice <= 19:
            raise LaunchError(f"nice {self.nice} is not allowed; use 0 to 19")
        if self.max_processes < 1:
            raise LaunchError(f"max_processes {self.max_processes} is not allowed; use 1 or more")

    @property
    def memory_mib(self) -> int:
        """The memory limit in whole MiB, for messages."""
        return self.memory_bytes // MIB


@dataclass(frozen=True)
class RunUser:
    """The account a run executes as."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class LaunchSpec:
    """What to launch: ``<interpreter> -u <script>`` in ``run_dir`` with ``env``."""

    run_id: str
    script: str
    run_dir: Path
    env: dict[str, str] = field(repr=False)

    @property
    def unit(self) -> str:
        """The transient unit name used by :class:`SystemdRunLauncher`."""
        return f"{UNIT_PREFIX}{self.run_id}.service"


def resolve_run_user(name: str | None) -> RunUser | None:
    """The account to switch to, or None when the service is not root (no switch)."""
    if os.geteuid() != 0:
        return None
    candidates = (name,) if name else DEFAULT_RUN_USERS
    for candidate in candidates:
        try:
            entry = pwd.getpwnam(candidate)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            raise LaunchError(f"run user {candidate!r} is root; scripts must not run as root")
        return RunUser(candidate, entry.pw_uid, entry.pw_gid)
    raise LaunchError(f"run user {' or '.join(map(repr, candidates))} does not exist on this system")


def _groups_of(user: RunUser) -> set[int]:
    return {user.gid} | {g.gr_gid for g in grp.getgrall() if user.name in g.gr_mem}


def check_reachable(run_dir: Path, user: RunUser) -> None:
    """Raise LaunchError unless ``user`` may search every directory above ``run_dir``.

    The interpreter opens the script by its absolute path, so a parent with
    mode 0700 (pytest's tmp, root's home) makes the run fail in a way users
    cannot read; this says which directory is at fault instead.
    """
    groups = _groups_of(user)
    for parent in run_dir.resolve().parents:
        st = parent.stat()
        if st.st_uid == user.uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise LaunchError(
                f"run directory {run_dir} is not reachable by user {user.name}: "
                f"{parent} has mode {stat.S_IMODE(st.st_mode):04o}; "
                "make it searchable (chmod o+x) or choose another run root"
            )
