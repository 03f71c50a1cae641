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
import signal
import sys
from functools import partial
from pathlib import Path

from appliance.runs import sandbox as sandbox_mod
from appliance.runs.launchbase import (
    Launched,
    Launcher,
    LaunchError,
    LaunchSpec,
    RunLimits,
    RunOutput,
    RunUser,
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


def _limit_child(memory_bytes: int, nice: int, nproc: int | None, sandboxed: bool) -> None:
    # Runs in the child between fork and exec, after the user switch: only
    # async-signal-safe-ish system calls, no locks, no logging.
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    os.nice(nice)
    if sandboxed:
        # Stop's SIGINT and SIGTERM are for the script: bubblewrap would die of
        # them and take the run with it at once.  The relay inside restores them.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _api_port(env: dict[str, str]) -> int | None:
    """The device's API port a run is told about, None when it is told of none."""
    device = env.get("BI_DEVICE")
    if device is None:
        return None
    try:
        return int(device.rpartition(":")[2])
    except ValueError:
        raise LaunchError(f"BI_DEVICE {device!r} is not HOST:PORT; a sandboxed run cannot reach it") from None


class RlimitLauncher:
    """Resource limits set in the child before exec; for machines without systemd.

    With bubblewrap (``appliance.runs.sandbox``) each run is also sandboxed:
    its own user id, pid and network namespaces and a private file system
    view.  Without it runs share the one run user, as before, and a warning
    says so.
    """

    def __init__(
        self,
        limits: RunLimits | None = None,
        interpreter: str = sys.executable,
        *,
        sandbox: bool | None = None,
        hidden: tuple[Path, ...] = (),
    ) -> None:
        self.limits = limits or RunLimits()
        self.fixed_run_root: Path | None = None
        self.interpreter = interpreter
        self.sandboxed = sandbox_mod.bwrap_usable() if sandbox is None else sandbox
        self.hidden = hidden
        """Directories blanked in every sandbox (the data directory)."""
        # Checked even when each sandboxed run gets a uid of its own, so a
        # wrong setting is told at start and not when the sandbox goes.
        self.user = resolve_run_user(self.limits.user)
        self._own_uids = self.sandboxed and self.user is not None
        self._last_user: RunUser | None = None
        self._uids = sandbox_mod.UidPool()
        self._relays: dict[str, sandbox_mod.ApiRelay] = {}
        if not self.sandboxed:
            log.warning("scripts are not sandboxed (bubblewrap missing or not allowed): runs share one user")

    @property
    def user_name(self) -> str:
        """The account runs execute as."""
        if self._own_uids:
            # Asked right after spawn: the newest run's own id.
            return self._last_user.name if self._last_user else "a user id per run"
        return self.user.name if self.user else own_user_name()

    def _run_user(self, spec: LaunchSpec) -> RunUser | None:
        if self._own_uids:
            uid = self._uids.get(spec.run_id)
            if uid is None:
                uid = self._uids.take(spec.run_id)
            self._last_user = RunUser(f"run-{uid}", uid, uid)
            return self._last_user
        return self.user

    def prepare(self, spec: LaunchSpec) -> None:
        """Hand the run's writable folders to the run user so the script can write there."""
        user = self._run_user(spec)
        if user is not None:
            for folder in spec.writable_dirs:
                check_reachable(folder, user)
                chown_tree(folder, user.uid, user.gid)

    async def _command(self, spec: LaunchSpec, user: RunUser | None) -> list[str]:
        command = [self.interpreter, "-u", str(spec.script_path)]
        if not self.sandboxed:
            return command
        argv = sandbox_mod.bwrap_argv(
            spec.run_dir,
            self.limits.network,
            self.hidden,
            writable=spec.writable_dirs,
            readonly=_venv_of(self.interpreter),
            workdir=spec.workdir,
        )
        port = _api_port(spec.env)
        ring = spec.env.get("BI_RING_SOCKET")
        if ring and os.path.exists(ring):
            # At its own path, so the welcome's ring offer names it inside too (docs/protocol.md).
            argv += ["--bind", ring, ring]
        if self.limits.network == "all" or port is None:
            return [*argv, "--", *sandbox_mod.relay_argv(None, command)]
        relay = sandbox_mod.ApiRelay(spec.run_dir.parent / f"{spec.run_id}.sock", port)
        await relay.start(user.uid if user else None)
        self._relays[spec.run_id] = relay
        argv += ["--bind", str(relay.path), sandbox_mod.SANDBOX_API_SOCKET]
        return [*argv, "--", *sandbox_mod.relay_argv(relay.port, command)]

    async def spawn(self, spec: LaunchSpec) -> Launched:
        """Start ``interpreter -u script`` in a new session with the limits applied."""
        user = self._run_user(spec)
        nproc = self.limits.max_processes if user is not None else None
        try:
            return await spawn_with_pipes(
                *await self._command(spec, user),
                cwd=spec.workdir,
                env=spec.env,
                start_new_session=True,
                preexec_fn=partial(
                    _limit_child, self.limits.memory_bytes, self.limits.nice, nproc, self.sandboxed
                ),
                user=user.uid if user else None,
                group=user.gid if user else None,
                extra_groups=[] if user else None,
            )
        except BaseException:
            await self._release(spec)
            raise

    async def signal(self, spec: LaunchSpec, proc: asyncio.subprocess.Process, sig: int) -> None:
        """Signal the run's process group (its id is the leader's pid).

        In a sandbox, SIGKILL of the group ends the pid namespace's first
        process, and with it the kernel ends every process of the run, even
        those that left the group with ``setsid``.
        """
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def alive(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> bool:
        """Whether the leader runs or any other member of its group is left."""
        return proc.returncode is None or group_alive(proc.pid)

    async def finish(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> tuple[int, str | None]:
        """Give back the run's uid and relay; bubblewrap's 128+N means signal N."""
        await self._release(spec)
        code = proc.returncode if proc.returncode is not None else -1
        if self.sandboxed and code > 128 and code - 128 in signal.valid_signals():
            code = 128 - code
        return code, None

    async def _release(self, spec: LaunchSpec) -> None:
        relay = self._relays.pop(spec.run_id, None)
        if relay is not None:
            await relay.close()
        self._uids.give_back(spec.run_id)


def _venv_of(interpreter: str) -> tuple[Path, ...]:
    """The virtual environment around ``interpreter`` (the scripts' own, in the data directory)."""
    root = Path(interpreter).parent.parent
    return (root,) if (root / "pyvenv.cfg").is_file() else ()


def default_launcher(
    limits: RunLimits | None = None, interpreter: str = sys.executable, *, hidden: tuple[Path, ...] = ()
) -> Launcher:
    """The launcher that confines runs best on this machine.

    With systemd as PID 1: the administrator's ``micarray-run@.service``
    template when it is installed (the image; the service need not be root),
    else transient ``systemd-run`` units when we are root.  Otherwise
    resource limits in the child and a bubblewrap sandbox when it can run;
    ``hidden`` directories (the data directory) are blanked in that sandbox.
    """
    if Path("/run/systemd/system").is_dir():
        if template_installed():
            return SystemdUnitLauncher(limits, interpreter=interpreter)
        if os.geteuid() == 0 and shutil.which("systemd-run") is not None:
            return SystemdRunLauncher(limits, interpreter, hidden=hidden)
    if os.geteuid() != 0:
        log.warning("scripts run as this service's own user: no systemd run unit and not root")
    return RlimitLauncher(limits, interpreter, hidden=hidden)
