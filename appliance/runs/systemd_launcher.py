"""Runs as systemd units: the cgroup holds the limits and is killed as a whole.

:class:`SystemdUnitLauncher` starts instances of the administrator's template
``micarray-run@<id>.service`` (``systemd/micarray-run@.service``).  That is how
the image runs: the service is the unprivileged ``micarray`` user, and polkit
lets it start, kill and reset exactly those units, whose user, limits and
sandbox the template fixes.  The launcher prepares what the template expects
(``docs/systemd.md``): the run directory, a root-only environment file, and
two listening sockets PID 1 connects the script's stdout and stderr to.

:class:`SystemdRunLauncher` makes transient units with ``systemd-run`` instead,
for a service running as root where the template is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from appliance.runs.launchbase import (
    READER_LIMIT,
    Launched,
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
from appliance.runs.sandbox import UidPool
from appliance.runs.unit_sandbox import transient_properties

log = logging.getLogger(__name__)

TEMPLATE = "micarray-run@.service"
UNIT_DIRS = (
    Path("/etc/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)
#: Where env files and output sockets of template runs live (the template names it).
RUNTIME_DIR = Path("/run/micarray/runs")
#: The template's ``WorkingDirectory=`` is ``<RUN_ROOT>/<id>``.
RUN_ROOT = Path("/var/lib/micarray/runs")
#: The run group (each run's own user is ``micarray-run-<id>``, in this group).
RUN_USER = "micarray-run"
#: Where the template binds a run's project inside its run directory.
PROJECT_MOUNT = "project"
#: Seconds systemctl may take for show, kill, reset-failed before it is given up on.
SYSTEMCTL_TIMEOUT_S = 10.0
STREAMS = ("stdout", "stderr")


def template_installed() -> bool:
    """Whether the ``micarray-run@.service`` template is installed."""
    return any((d / TEMPLATE).is_file() for d in UNIT_DIRS)


def env_file_text(env: dict[str, str]) -> str:
    """``env`` as a systemd EnvironmentFile (values double-quoted)."""
    lines = []
    for key, value in sorted(env.items()):
        if not key.replace("_", "a").isalnum() or "\n" in value or "\0" in value:
            raise LaunchError(f"environment entry {key!r} cannot be passed to systemd")
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key}="{quoted}"\n')
    return "".join(lines)


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Write ``env`` to ``path`` readable by its owner only (PID 1 reads it as root)."""
    text = env_file_text(env)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def unit_end(shown: str, returncode: int, limits: RunLimits, complaint: str = "") -> tuple[int, str | None]:
    """Exit status and reason from ``systemctl show`` of an ended run unit.

    systemctl and systemd-run report a signal death only as a failure status
    of their own; the unit's ExecMainCode (0 never ran, 1 exited, 2 killed,
    3 dumped core) and ExecMainStatus say what happened to the script.
    ``complaint`` is what systemctl printed, used when the script never ran.
    """
    props = dict(line.partition("=")[::2] for line in shown.splitlines())
    code, status = props.get("ExecMainCode", ""), props.get("ExecMainStatus", "")
    result = props.get("Result", "")
    if code in ("2", "3") and status.isdigit():
        returncode = -int(status)
    elif code == "1" and status.isdigit():
        returncode = int(status)
    if result == "oom-kill":
        return returncode, f"memory limit of {limits.memory_mib} MiB reached"
    if code in ("", "0"):  # the script never ran
        if complaint.strip():
            return returncode, f"the run could not be started: {complaint.strip().splitlines()[-1]}"
        if result not in ("", "success"):
            return returncode, f"the run could not be started: result {result!r}"
    return returncode, None


async def systemctl(command: Sequence[str], *args: str) -> tuple[int, str]:
    """Run systemctl with ``args``; its exit status and standard output."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            *args,
            "--no-ask-password",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        log.warning("systemctl %s failed: %s", " ".join(args), exc)
        return -1, ""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), SYSTEMCTL_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        log.warning("systemctl %s did not answer in %.0f s", " ".join(args), SYSTEMCTL_TIMEOUT_S)
        return -1, ""
    if proc.returncode:
        log.warning("systemctl %s: %s", " ".join(args), err.decode("utf-8", "replace").strip())
    return proc.returncode or 0, out.decode("utf-8", "replace")


async def finish_unit(
    command: Sequence[str], unit: str, returncode: int, limits: RunLimits, complaint: str = ""
) -> tuple[int, str | None]:
    """Read how a failed unit's script ended, then let systemd forget the unit."""
    if returncode == 0:
        return 0, None
    _, shown = await systemctl(command, "show", "--property=Result,ExecMainCode,ExecMainStatus", unit)
    await systemctl(command, "reset-failed", unit)
    return unit_end(shown, returncode, limits, complaint)


def _listen(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        sock.listen(1)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _socket_output(sock: socket.socket, path: Path, proc: asyncio.subprocess.Process) -> RunOutput:
    """A reader fed by the one connection PID 1 makes to ``sock``.

    If the unit ends without connecting (it failed to start), the reader ends.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READER_LIMIT)
    transports: list[asyncio.BaseTransport] = []

    async def accept() -> None:
        accepting = asyncio.ensure_future(loop.sock_accept(sock))
        ended = asyncio.ensure_future(proc.wait())
        try:
            await asyncio.wait({accepting, ended}, return_when=asyncio.FIRST_COMPLETED)
            if accepting.done():
                conn = accepting.result()[0]
            else:
                accepting.cancel()
                # A connection made just before the end may still wait in the backlog.
                conn = sock.accept()[0]
        except (BlockingIOError, OSError) as exc:
            if not isinstance(exc, BlockingIOError):
                log.warning("output socket %s: %s", path, exc)
            reader.feed_eof()
            return
        finally:
            ended.cancel()
            sock.close()
            path.unlink(missing_ok=True)
        transport, _ = await loop.connect_accepted_socket(lambda: asyncio.StreamReaderProtocol(reader), conn)
        transports.append(transport)

    task = loop.create_task(accept())

    def close() -> None:
        task.cancel()
        sock.close()
        path.unlink(missing_ok=True)
        for transport in transports:
            transport.close()

    return RunOutput(reader, close)


class SystemdUnitLauncher:
    """Each run is an instance of the installed ``micarray-run@.service`` template.

    The template gives every run a user of its own (``DynamicUser=``, named
    ``micarray-run-<id>``, in the run group), shows it nothing of the data
    directory but its own run directory, and binds its project there as
    ``project`` (the symbolic link ``<runtime>/<id>.project`` says which; PID
    1 follows it).  The script starts in ``BI_WORKDIR`` with ``BI_PYTHON``.
    ``limits`` only words messages here: the template (and its drop-ins)
    holds the real ones, so keep the two in step.
    """

    def __init__(
        self,
        limits: RunLimits | None = None,
        *,
        runtime_dir: Path = RUNTIME_DIR,
        run_root: Path = RUN_ROOT,
        command: Sequence[str] = ("systemctl",),
        run_group: str = RUN_USER,
        interpreter: str | None = None,
    ) -> None:
        self.limits = limits or RunLimits()
        self.runtime_dir = runtime_dir
        self.fixed_run_root: Path | None = run_root
        """Run directories must be here: the template's WorkingDirectory says so."""
        self.command = tuple(command)
        self.interpreter = interpreter
        self._last_user = f"{RUN_USER}-<id>"
        try:
            self._gid = grp.getgrnam(run_group).gr_gid
        except KeyError:
            raise LaunchError(
                f"group {run_group!r} does not exist; install systemd/sysusers.d/micarray.conf"
            ) from None

    @property
    def user_name(self) -> str:
        """The newest run's own user (the template's ``User=micarray-run-%i``)."""
        return self._last_user

    def unit(self, spec: LaunchSpec) -> str:
        """The unit name of a run."""
        return f"micarray-run@{spec.run_id}.service"

    def _path(self, spec: LaunchSpec, suffix: str) -> Path:
        return self.runtime_dir / f"{spec.run_id}.{suffix}"

    def prepare(self, spec: LaunchSpec) -> None:
        """Open the run's folders to the run group; point at its project; write the env file."""
        if spec.run_dir.parent != self.fixed_run_root:
            raise LaunchError(
                f"run directory {spec.run_dir} is not where the run unit template looks; "
                f"it runs scripts in {self.fixed_run_root}/<id>, so use that as the run root"
            )
        script = spec.script_path
        # The unit makes the run root setgid to the run group, so the group is
        # inherited: the service may neither chown (system-call filter) nor set a
        # setgid bit itself (RestrictSUIDSGID), hence 0770, not 2770, here.
        self._give_group(spec.run_dir, 0o770)
        self._give_group(script, 0o640)
        os.chmod(script, 0o640)  # exactly: nothing for others (a file has no setgid bit to keep)
        if spec.output_dir is not None and spec.output_dir.is_dir():
            _open_tree_to_group(spec.output_dir, self._give_group)
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        env = {**spec.env, "BI_SCRIPT_NAME": spec.script, "BI_SCRIPT_PATH": str(script)}
        env["BI_WORKDIR"] = str(spec.workdir)
        if self.interpreter is not None:
            env["BI_PYTHON"] = self.interpreter
        if spec.project_dir is not None and not spec.project_dir.is_relative_to(spec.run_dir):
            env = self._bind_project(spec, env)
        write_env_file(self._path(spec, "env"), env)
        self._last_user = f"{RUN_USER}-{spec.run_id}"

    def _bind_project(self, spec: LaunchSpec, env: dict[str, str]) -> dict[str, str]:
        """Point ``<runtime>/<id>.project`` at the project, which the run sees as ``<run dir>/project``."""
        assert spec.project_dir is not None
        _open_tree_to_group(spec.project_dir, self._give_group)
        inside = spec.run_dir / PROJECT_MOUNT
        inside.mkdir(mode=0o770)  # the mount point
        link = self._path(spec, "project")
        link.unlink(missing_ok=True)
        link.symlink_to(spec.project_dir)
        real = str(spec.project_dir)
        return {key: str(inside) if value == real else value for key, value in env.items()}

    def _give_group(self, path: Path, mode: int) -> None:
        st = path.lstat()
        if st.st_gid != self._gid:
            try:
                os.chown(path, -1, self._gid, follow_symlinks=False)
            except PermissionError:
                raise LaunchError(
                    f"{path} does not belong to the run group and this service may not change "
                    "that; restart the service (its start hands the projects to the run group)"
                ) from None
        have = stat.S_IMODE(st.st_mode)
        if have & mode == mode:
            return
        if have & (stat.S_ISUID | stat.S_ISGID):
            # A chmod that keeps the setgid bit is refused (RestrictSUIDSGID), and
            # one that drops it would lose the run group for what is made inside.
            raise LaunchError(
                f"{path} has mode {have:04o} and the run group needs {mode:04o}; restart the "
                "service (its start opens the projects to the run group)"
            )
        os.chmod(path, have | mode)

    async def spawn(self, spec: LaunchSpec) -> Launched:
        """Listen for the output, then ``systemctl start --wait`` the run's unit."""
        listeners: dict[str, tuple[socket.socket, Path]] = {}
        try:
            for stream in STREAMS:
                path = self._path(spec, stream)
                listeners[stream] = (_listen(path), path)
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                "start",
                "--wait",
                "--no-ask-password",
                self.unit(spec),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except BaseException:
            for sock, path in listeners.values():
                sock.close()
                path.unlink(missing_ok=True)
            raise
        return Launched(proc, {s: _socket_output(*listeners[s], proc) for s in STREAMS})

    async def signal(self, spec: LaunchSpec, proc: asyncio.subprocess.Process, sig: int) -> None:
        """Signal every process in the unit's cgroup."""
        await systemctl(self.command, "kill", f"--signal={signal.Signals(sig).name}", self.unit(spec))

    def alive(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> bool:
        """``systemctl start --wait`` returns only once the unit is inactive."""
        return proc.returncode is None

    async def finish(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> tuple[int, str | None]:
        """Read how the unit ended, let systemd forget it, remove the env file and project link."""
        complaint = b""
        if proc.stderr is not None:
            complaint = await proc.stderr.read()
        returncode = proc.returncode if proc.returncode is not None else -1
        ended = await finish_unit(
            self.command, self.unit(spec), returncode, self.limits, complaint.decode(errors="replace")
        )
        for suffix in ("env", "project"):
            self._path(spec, suffix).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (spec.run_dir / PROJECT_MOUNT).rmdir()  # the empty mount point, when there was one
        return ended


def _open_tree_to_group(folder: Path, give: Callable[[Path, int], None]) -> None:
    """Let the run group read and write ``folder`` and what is in it (links are left alone).

    What earlier runs made there belongs to their own users, already with
    group write (the template's ``UMask=0007``), and is skipped.
    """
    give(folder, 0o770)
    for parent, dirs, files in os.walk(folder):
        for name, mode in [(d, 0o770) for d in dirs] + [(f, 0o660) for f in files]:
            path = Path(parent, name)
            if path.is_symlink() or path.lstat().st_uid != os.geteuid():
                continue
            give(path, mode)


def systemd_run_argv(
    spec: LaunchSpec,
    limits: RunLimits,
    user: RunUser | None,
    interpreter: str,
    env_file: Path,
    *,
    hidden: Sequence[Path] = (),
) -> list[str]:
    """The ``systemd-run`` command line for one run (pure, for tests and logs).

    The environment goes through a root-only file rather than ``--setenv`` so
    the run's token never shows up in ``ps``.
    """
    argv = [
        "systemd-run",
        f"--unit={transient_unit(spec)}",
        f"--description=micarray script {spec.script}",
        "--quiet",
        "--wait",
        "--pipe",
        f"--working-directory={spec.workdir}",
        f"--nice={limits.nice}",
    ]
    if user is not None:
        argv += [f"--uid={user.uid}", f"--gid={user.gid}"]
    props = transient_properties(spec, limits, env_file, hidden)
    argv += [f"--property={key}={value}" for key, value in props]
    return [*argv, "--", interpreter, "-u", str(spec.script_path)]


def transient_unit(spec: LaunchSpec) -> str:
    """The transient unit name of a run started with ``systemd-run``."""
    return f"micarray-run-{spec.run_id}.service"


class SystemdRunLauncher:
    """Each run is a transient systemd service; for a root service without the template.

    No ``--collect``: a failed unit stays loaded until :meth:`finish` has read
    its result (``oom-kill`` says the memory limit ended it) and reset it.
    """

    def __init__(
        self,
        limits: RunLimits | None = None,
        interpreter: str = sys.executable,
        *,
        hidden: tuple[Path, ...] = (),
    ) -> None:
        self.limits = limits or RunLimits()
        self.fixed_run_root: Path | None = None
        self.interpreter = interpreter
        self.user = resolve_run_user(self.limits.user)
        self.hidden = hidden
        """Directories no run may see (the data directory)."""
        self.command = ("systemctl",)
        # Each run its own uid (numeric, no account): ProtectProc=invisible
        # then hides every other run's processes, and their files are not its.
        self._uids = UidPool()
        self._last_user: RunUser | None = None

    @property
    def user_name(self) -> str:
        """The account the newest run executes as."""
        if self._last_user is not None:
            return self._last_user.name
        return self.user.name if self.user else own_user_name()

    def _run_user(self, spec: LaunchSpec) -> RunUser | None:
        if self.user is None:
            return None
        uid = self._uids.get(spec.run_id)
        if uid is None:
            uid = self._uids.take(spec.run_id)
        self._last_user = RunUser(f"run-{uid}", uid, uid)
        return self._last_user

    def _env_file(self, spec: LaunchSpec) -> Path:
        return spec.run_dir.with_name(f"{spec.run_id}.env")

    def prepare(self, spec: LaunchSpec) -> None:
        """Hand the run's writable folders to the run's user and write the root-only env file."""
        user = self._run_user(spec)
        if user is not None:
            for folder in spec.writable_dirs:
                check_reachable(folder, user)
                chown_tree(folder, user.uid, user.gid)
        write_env_file(self._env_file(spec), spec.env)

    async def spawn(self, spec: LaunchSpec) -> Launched:
        """Start ``systemd-run --wait --pipe``; it lives as long as the unit."""
        user = self._run_user(spec)
        env_file = self._env_file(spec)
        argv = systemd_run_argv(spec, self.limits, user, self.interpreter, env_file, hidden=self.hidden)
        try:
            return await spawn_with_pipes(*argv, start_new_session=True)
        except BaseException:
            self._uids.give_back(spec.run_id)
            raise

    async def signal(self, spec: LaunchSpec, proc: asyncio.subprocess.Process, sig: int) -> None:
        """Signal every process in the unit's cgroup."""
        name = signal.Signals(sig).name
        await systemctl(self.command, "kill", f"--signal={name}", transient_unit(spec))

    def alive(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> bool:
        """``systemd-run --wait`` returns only once the whole cgroup is empty."""
        return proc.returncode is None

    async def finish(self, spec: LaunchSpec, proc: asyncio.subprocess.Process) -> tuple[int, str | None]:
        """Read how the unit's main process ended, forget the unit, remove the env file."""
        returncode = proc.returncode if proc.returncode is not None else -1
        ended = await finish_unit(self.command, transient_unit(spec), returncode, self.limits)
        with contextlib.suppress(FileNotFoundError):
            self._env_file(spec).unlink()
        self._uids.give_back(spec.run_id)
        return ended
