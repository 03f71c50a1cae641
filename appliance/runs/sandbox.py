"""A private view for each script run without systemd: bubblewrap.

Each run gets, through ``bwrap`` (Debian's ``bubblewrap``):

- its own user id from :data:`RUN_UIDS` when the service is root, so no run
  can signal, trace or read another's processes or files;
- new pid, IPC, UTS and cgroup namespaces: ``/proc`` shows only the run's own
  processes (no other run's token in ``/proc/*/environ``), and when the
  sandbox's first process ends the kernel ends every process in it, ``setsid``
  or not;
- its own empty ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/run``, a minimal
  ``/dev`` (no microphones: audio comes through the API), no ``/home``,
  ``/root``, ``/var``, ``/srv`` or ``/mnt``, so neither the data directory
  (saved scripts, recordings, tokens) nor other runs' directories exist in it;
- the system (``/usr``, ``/etc``) and the interpreter's files read-only, and
  only its own run directory writable;
- a network namespace with only ``lo`` unless the admin allows all networks
  (:attr:`RunLimits.network`).  The device's API reaches it through a Unix
  socket the service binds in (:class:`ApiRelay`), which
  ``sandbox_relay.py`` serves inside on ``127.0.0.1`` at the API's port, so
  ``BI_DEVICE`` is the same address as outside.

Why a separate network namespace and not the host's with a filter: a
seccomp filter cannot look at the address a ``connect`` or ``sendto`` goes
to, so it could only forbid sockets wholesale; a namespace with nothing but
loopback is a wall the kernel keeps, and the relay lets exactly one thing
through.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from appliance.runs.launchbase import RUN_NETWORKS

log = logging.getLogger(__name__)

BWRAP = "bwrap"
#: User ids given to runs, one per live run (systemd's range for DynamicUser).
RUN_UIDS = range(61184, 65520)
#: Where the API socket appears inside the sandbox.
SANDBOX_API_SOCKET = "/run/micarray-api.sock"
RELAY = Path(__file__).with_name("sandbox_relay.py")
CHUNK = 65536
#: Connections one run may have open through the relay at once.
MAX_RELAYED = 16
#: Directories of the system every run sees read-only (when they exist).
SYSTEM_DIRS = ("/usr", "/etc")
_MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64")
PROBE_TIMEOUT_S = 10.0


@functools.cache
def bwrap_usable() -> bool:
    """Whether bubblewrap is installed and may make a run's namespaces here (checked once).

    Runs start it as an unprivileged user, so this does too: it needs user
    namespaces, which some kernels or containers forbid.
    """
    path = shutil.which(BWRAP)
    if path is None:
        return False
    uid = RUN_UIDS.start if os.geteuid() == 0 else None
    argv = [path, "--unshare-user", "--disable-userns", "--unshare-all", "--ro-bind", "/", "/", "true"]
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False, user=uid, group=uid, cwd="/"
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("bubblewrap cannot run here: %s", exc)
        return False
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()
        log.warning("bubblewrap cannot make namespaces here: %s", why)
    return done.returncode == 0


class UidPool:
    """Hands out a free user id from :data:`RUN_UIDS` to each live run.

    Free means: no account has it, no process on this machine runs as it, and
    no other service on this machine holds it (each held uid is an exclusive
    lock on a file in :data:`UID_CLAIMS`, released when the run ends or the
    service dies); two services on one machine (a second checkout, parallel
    tests) would otherwise give two runs one uid and so one process limit.
    """

    def __init__(self, uids: range = RUN_UIDS, claims: Path | None = None) -> None:
        self._uids = uids
        self._claims = claims or _claims_dir()
        self._taken: dict[str, tuple[int, int]] = {}

    def take(self, run_id: str) -> int:
        """A uid no account, no live process and no other run on this machine has."""
        used = {uid for uid, _ in self._taken.values()}
        busy = _uids_of_processes()
        for uid in self._uids:
            if uid in used or uid in busy or _has_account(uid):
                continue
            fd = _claim(self._claims / str(uid))
            if fd is not None:
                self._taken[run_id] = (uid, fd)
                return uid
        raise OSError(f"all {len(self._uids)} run user ids are in use")

    def get(self, run_id: str) -> int | None:
        """The uid of a live run."""
        taken = self._taken.get(run_id)
        return taken[0] if taken else None

    def give_back(self, run_id: str) -> None:
        """The run ended: its uid may go to the next one (of any service)."""
        taken = self._taken.pop(run_id, None)
        if taken is not None:
            os.close(taken[1])


def _claims_dir() -> Path:
    base = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    path = base / "micarray-run-uids"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _claim(path: Path) -> int | None:
    """An open descriptor holding the exclusive lock on ``path``, or None when another holds it."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _has_account(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _uids_of_processes() -> set[int]:
    """The real uids of every process on this machine (what a process limit counts)."""
    uids = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                uids.add(entry.stat().st_uid)
    return uids


def _code_dirs() -> list[str]:
    # The interpreter and the packages a script imports (browserinterface,
    # numpy) live under the venv; an editable install adds its source tree.
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for name in ("browserinterface", "appliance"):
        module = sys.modules.get(name)
        if module is not None and module.__file__:
            dirs.add(str(Path(module.__file__).resolve().parent))
    return sorted(d for d in dirs if not any(d.startswith(s + "/") or d == s for s in SYSTEM_DIRS))


def _ro_binds(paths: Iterable[str]) -> list[str]:
    argv: list[str] = []
    for path in paths:
        argv += ["--ro-bind-try", path, path]
    return argv


def _root_links() -> list[str]:
    argv: list[str] = []
    for name in _MERGED_USR:
        top = Path("/", name)
        if top.is_symlink():
            argv += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            argv += ["--ro-bind", str(top), str(top)]
    return argv


def bwrap_argv(
    run_dir: Path,
    network: str,
    hidden: Iterable[Path] = (),
    *,
    writable: Iterable[Path] = (),
    readonly: Iterable[Path] = (),
    workdir: Path | None = None,
) -> list[str]:
    """The ``bwrap`` options for one run (the command follows ``--``).

    ``hidden`` are directories blanked even when they lie under something the
    run sees (a data directory inside a source tree).  ``writable`` (the
    project and output folders) and ``readonly`` (the scripts' own venv) are
    bound back at their own paths after that, so a project inside the data
    directory is there and nothing else of it; the script starts in ``workdir``.
    """
    if network not in RUN_NETWORKS:
        raise ValueError(f"network {network!r} is not one of {', '.join(RUN_NETWORKS)}")
    argv = [BWRAP, "--unshare-user", "--disable-userns", "--unshare-pid", "--unshare-ipc"]
    argv += ["--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--hostname", "micarray-run"]
    if network == "api":
        argv.append("--unshare-net")
    argv += _ro_binds(SYSTEM_DIRS) + _root_links()
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp"]
    argv += ["--tmpfs", "/var/tmp", "--tmpfs", "/run"]
    # After the private /tmp and /run: a source tree or venv may live under them (a clone in /tmp).
    argv += _ro_binds(_code_dirs())
    for path in hidden:
        argv += ["--tmpfs", str(path)]
    for path in readonly:
        argv += ["--ro-bind", str(path), str(path)]
    for path in dict.fromkeys([run_dir, *writable]):
        argv += ["--bind", str(path), str(path)]
    argv += ["--chdir", str(workdir or run_dir)]
    return argv


def relay_argv(port: int | None, command: list[str]) -> list[str]:
    """What runs inside the sandbox: the relay, which starts ``command`` (None: no API to carry)."""
    where = "-" if port is None else str(port)
    return [sys.executable, "-I", "-S", str(RELAY), SANDBOX_API_SOCKET, where, "--", *command]


class ApiRelay:
    """The outer end: a Unix socket bound into one sandbox, carried to the API."""

    def __init__(self, path: Path, port: int) -> None:
        self.path = path
        self.port = port
        self._server: asyncio.AbstractServer | None = None
        self._open = 0

    async def start(self, uid: int | None) -> None:
        """Listen on :attr:`path`, usable only by ``uid`` (None: our own user)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._carry, path=str(self.path))
        os.chmod(self.path, 0o600)
        if uid is not None:
            os.chown(self.path, uid, -1)

    async def close(self) -> None:
        """Stop listening; connections still open end with the run's processes."""
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= MAX_RELAYED:
            writer.close()
            return
        self._open += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError as exc:
            log.warning("run's API connection could not reach port %d: %s", self.port, exc)
            self._open -= 1
            writer.close()
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._open -= 1


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
