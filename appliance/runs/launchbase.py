"""The launch seam's shared parts: limits, run user, what to launch, what comes back.

:class:`RunLimits` (memory, CPU, niceness, processes, user), :class:`RunUser`
and :class:`LaunchSpec` go in; :class:`Launched` (the process and its output
streams) comes out of a :class:`Launcher`.  Also the checks that a run user
exists, is not root and can reach the run directory, and the pipe plumbing
the launchers share.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from appliance.errors import ApplianceError

#: Users a run switches to when the service runs as root, first that exists wins.
DEFAULT_RUN_USERS = ("micarray-run", "nobody")
MIB = 1 << 20
#: Smallest memory limit accepted: below this the interpreter itself cannot start.
MIN_MEMORY_BYTES = 64 * MIB
#: Bytes a run's output reader buffers before it stops reading the pipe.
READER_LIMIT = 65536
#: What a run's network may be (:attr:`RunLimits.network`).
RUN_NETWORKS = ("api", "all")


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
    ``micarray-run``, ``nobody`` that exists.  Ignored when not root, and
    when runs are sandboxed (each then gets a user id of its own)."""
    network: str = "api"
    """What a run may reach: ``api`` (default: only the device's own API on
    loopback) or ``all`` (every network the device is on).  Without systemd
    only a sandboxed run (bubblewrap) is held to ``api``; with systemd the
    run's unit is."""

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
        if self.network not in RUN_NETWORKS:
            raise LaunchError(f"network {self.network!r} is not allowed; use {' or '.join(RUN_NETWORKS)}")
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
    """What to launch: ``<interpreter> -u <script>`` in :attr:`workdir` with ``env``.

    A sandbox must make three folders writable for the run, at the same
    paths: ``run_dir`` (the script itself), :attr:`project_dir` (the working
    directory, when the run belongs to a project) and :attr:`output_dir`
    (what the run keeps); see :attr:`writable_dirs`.
    """

    run_id: str
    script: str
    run_dir: Path
    env: dict[str, str] = field(repr=False)
    project_dir: Path | None = None
    """The run's project: its working directory and on ``PYTHONPATH`` (helpers, data files).
    None: the run has no project and works in ``run_dir``."""
    output_dir: Path | None = None
    """Where the run writes what is kept (``BI_OUTPUT_DIR``); inside ``run_dir``
    while the run goes, moved to the run history when it ends."""

    @property
    def script_path(self) -> Path:
        """The script the editor sent, in the run directory (the working directory may be a
        project that has a file of the same name: that one is not what was asked for)."""
        return self.run_dir / self.script

    @property
    def workdir(self) -> Path:
        """The working directory of the script: its project, else the run directory."""
        return self.project_dir or self.run_dir

    @property
    def writable_dirs(self) -> tuple[Path, ...]:
        """Every folder the run must be able to write (a sandbox binds these read-write)."""
        dirs = [self.run_dir]
        for extra in (self.project_dir, self.output_dir):
            if extra is not None and not extra.is_relative_to(self.run_dir):
                dirs.append(extra)
        return tuple(dirs)


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


def chown_tree(folder: Path, uid: int, gid: int) -> None:
    """Give ``folder`` and every plain file and folder in it to ``uid``; links are left alone."""
    os.chown(folder, uid, gid)
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                os.chown(path, uid, gid)


def own_user_name() -> str:
    """The name of the account this service runs as (its uid when it has no name)."""
    # Containers often run as a uid that has no passwd entry.
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


@dataclass
class RunOutput:
    """One output stream of a run: where to read it, and how to let go of it."""

    reader: asyncio.StreamReader
    close: Callable[[], None]
    """Closes our end even if a process that escaped the run still holds the other."""


@dataclass
class Launched:
    """A started run: the process we wait for and its ``stdout``/``stderr``."""

    proc: asyncio.subprocess.Process
    outputs: dict[str, RunOutput]


class Launcher(Protocol):
    """Starts, signals and watches one run's processes."""

    limits: RunLimits
    fixed_run_root: Path | None
    """Where run directories must be when the launcher dictates it (a unit
    template's WorkingDirectory), else None: the caller chooses."""

    @property
    def user_name(self) -> str:
        """The account runs execute as."""
        ...

    def prepare(self, spec: LaunchSpec) -> None:
        """Make ``spec.run_dir`` usable by the run user (blocking file I/O)."""
        ...

    async def spawn(self, spec: LaunchSpec) -> Launched:
        """Start the run, stdin from /dev/null, its stdout and stderr readable."""
        ...

    async def signal(self, spec: LaunchSpec, proc: asyncio.subprocess.Process, sig: int) -> None:
        """Send ``sig`` to every process of the run."""
        ...

    def alive(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> bool:
        """Whether any process of the run is still there (zombies do not count)."""
        ...

    async def finish(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> tuple[int, str | None]:
        """Clean up after the run (``proc`` has exited).

        Returns the script's exit status (negative: the signal that ended it),
        which differs from ``proc.returncode`` when a helper (systemctl) stood
        in between, and a reason in words when the launcher knows it (a cgroup
        OOM kill, a unit that could not start).
        """
        ...


async def output_from_pipe(fd: int) -> RunOutput:
    """Read the pipe ``fd`` (which is taken over) on the loop."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READER_LIMIT)
    pipe = os.fdopen(fd, "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    except BaseException:
        pipe.close()
        raise
    return RunOutput(reader, transport.close)


async def spawn_with_pipes(*argv: str, **options: Any) -> Launched:
    """``create_subprocess_exec`` with stdout and stderr on pipes we own.

    Not asyncio's own pipes: a process that escaped the run may hold the write
    ends forever, and then we must be able to close the read ends ourselves.
    """
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, **options
        )
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return Launched(proc, {"stdout": await output_from_pipe(out_r), "stderr": await output_from_pipe(err_r)})
