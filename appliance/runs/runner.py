"""Script runs started from the editor: the set of runs and how one starts.

:class:`RunManager` lives on the service's event loop.  ``start`` checks the
script's name, writes the user's code unchanged to a fresh directory (so
traceback line numbers are the editor's) and hands it to a
:class:`~appliance.runs.launcher.Launcher`; each started script is a
:class:`~appliance.runs.run.Run`.  A run started with a ``project`` works in
that project's folder (helpers import, data files open by relative name); one
started with ``files`` (``appliance run DIR``) gets them as a project of its
own inside its run directory.  Each run's record, console log and output
folder go to the :class:`~appliance.runs.history.RunHistory`, which survives
restarts; run directories themselves are scratch, kept in bounded numbers."""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import logging
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError
from appliance.runs.history import RunHistory
from appliance.runs.launchbase import Launcher, LaunchError, LaunchSpec
from appliance.runs.run import Run, RunInfo
from appliance.storage import atomic_write_bytes
from appliance.workspace.names import BadName, check_relpath, check_segment

__all__ = ["BASE_ENV", "Run", "RunError", "RunInfo", "RunManager", "script_name"]

log = logging.getLogger(__name__)

MAX_CODE_BYTES = 1 << 20
MAX_RUNNING = 8
#: Ended runs listed; older ones are forgotten.
KEEP_ENDED = 16
#: Ended runs whose directories (files the script wrote) are kept on the card.
KEEP_DIRS = 4
#: Files a run may bring along (``appliance run DIR``): count and bytes in all.
MAX_RUN_FILES = 2000
#: 5 MiB is 6.7 MiB as base64, inside the WebSocket's 8 MiB message limit.
MAX_RUN_FILES_BYTES = 5 << 20
#: The matplotlib backend of runs: figures become image tabs.
MPL_BACKEND = "module://appliance.runs.mplbackend"

OUTPUT_DIR = "output"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_RUN_ID = re.compile(r"^[0-9a-f]{12}$")

#: Environment of every run; the service adds its own (BI_DEVICE, BI_TOKEN, ...).
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONUNBUFFERED": "1",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    # OpenBLAS reserves a buffer per thread at import; one thread keeps
    # `import numpy` far below the address-space limit on a 4-core Pi.
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    # glibc reserves 64 MiB of address space per thread arena: without a cap
    # a script with a dozen threads cannot start them under a 256 MiB limit.
    "MALLOC_ARENA_MAX": "2",
}


class RunError(ApplianceError, ValueError):
    """A run request that cannot be served (bad name, too many runs, unknown run)."""

    code = "run_failed"


def script_name(name: str) -> str:
    """The file name a script runs under: ``name`` checked, with ``.py`` added if missing."""
    if not _NAME.match(name):
        raise RunError(
            f"script name {name!r} is not allowed; use 1 to 64 letters, digits, "
            "'_', '-' or '.', not starting with '.' (no '/', spaces or other characters)"
        )
    return name if name.endswith(".py") else f"{name}.py"


def check_run_files(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files a run brings along, every name and the totals checked."""
    if len(files) > MAX_RUN_FILES:
        raise RunError(f"the run brings {len(files)} files; at most {MAX_RUN_FILES}")
    total = sum(len(data) for data in files.values())
    if total > MAX_RUN_FILES_BYTES:
        raise RunError(f"the run's files take {total} bytes; at most {MAX_RUN_FILES_BYTES} bytes in all")
    try:
        return {check_relpath(path, "file path"): data for path, data in files.items()}
    except BadName as exc:
        raise RunError(str(exc)) from None


def _code_bytes(code: str) -> bytes:
    data = code.encode("utf-8", "surrogatepass")
    if len(data) > MAX_CODE_BYTES:
        raise RunError(f"script is {len(data)} bytes; the limit is {MAX_CODE_BYTES} bytes")
    return data


class RunManager:
    """Every script run of the device: start, stop, list, console tails."""

    def __init__(
        self,
        run_root: Path,
        launcher: Launcher,
        env_for_run: Callable[[str, str], dict[str, str]],
        on_event: Callable[[dict[str, Any]], None],
        *,
        on_end: Callable[[str], None] | None = None,
        max_running: int = MAX_RUNNING,
        history: RunHistory | None = None,
        projects_root: Path | None = None,
    ) -> None:
        self.run_root = run_root
        self.launcher = launcher
        self._env_for_run = env_for_run
        self._on_event = on_event
        self._on_end = on_end
        self._max_running = max_running
        self._runs: dict[str, Run] = {}
        self.history = history
        self.projects_root = projects_root
        self._past: dict[str, RunInfo] = {}
        # 0711: the run user may enter its own directory but not list others.
        # Set explicitly: the service's umask (0027 under systemd) would drop o+x.
        # A root that already allows that is left alone: under systemd it is
        # 2711 with the run group, and the sandbox could not set that bit again.
        run_root.mkdir(parents=True, exist_ok=True)
        st = run_root.stat()
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o711 != 0o711:
            run_root.chmod(0o711)
        self._remove_stale()
        if history is not None:
            self._past = {info.id: info for info in history.load()}

    def _remove_stale(self) -> None:
        # Only names this class makes, so a wrong run_root cannot lose other files.
        for entry in self.run_root.iterdir():
            if _RUN_ID.match(entry.name) and entry.is_dir() and not entry.is_symlink():
                if self.history is not None and (self.history.folder(entry.name) / "run.json").exists():
                    # A run cut by a crash or power cut: what it had written is kept.
                    self.history.keep_outputs(entry.name, entry / OUTPUT_DIR)
                shutil.rmtree(entry)
            elif entry.suffix == ".env" and _RUN_ID.match(entry.stem):
                entry.unlink()

    def _emit(self, event: dict[str, Any]) -> None:
        try:
            self._on_event(event)
        except Exception:
            # A broken listener must not stop the pumps: the child would block.
            log.exception("run event handler failed for %s", event.get("type"))

    def _project_dir(self, project: str | None, run_dir: Path, files: dict[str, bytes] | None) -> Path | None:
        if files is not None:
            return run_dir / "project"
        if project is None:
            return None
        if self.projects_root is None:
            raise RunError("this device keeps no projects")
        try:
            folder = self.projects_root / check_segment(project, "project name")
        except BadName as exc:
            raise RunError(str(exc)) from None
        if not folder.is_dir() or folder.is_symlink():
            raise RunError(f"no project named {project!r}")
        return folder

    async def start(
        self,
        name: str,
        code: str,
        origin: str = "editor",
        *,
        project: str | None = None,
        files: dict[str, bytes] | None = None,
    ) -> RunInfo:
        """Write ``code`` to a fresh run directory as ``name`` and start it (``origin``: who asked).

        ``project``: the saved project whose folder is the working directory;
        ``files``: a folder brought along (relative path to bytes) instead.
        """
        script = script_name(name)
        data = _code_bytes(code)
        if files is not None:
            files = check_run_files(files)
        running = sum(not run.ended for run in self._runs.values())
        if running >= self._max_running:
            raise RunError(f"{running} scripts are already running; stop one first")
        run_id = secrets.token_hex(6)
        run_dir = self.run_root / run_id
        project_dir = self._project_dir(project, run_dir, files)
        spec = LaunchSpec(run_id, script, run_dir, {}, project_dir, run_dir / OUTPUT_DIR)
        spec = dataclasses.replace(spec, env=self._env(spec))
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._make_dir, spec, data, files)
            launched = await self.launcher.spawn(spec)
        except (OSError, LaunchError) as exc:
            await loop.run_in_executor(None, shutil.rmtree, run_dir, True)
            raise RunError(f"could not start {script}: {exc}") from exc
        pid = launched.proc.pid
        info = RunInfo(run_id, script, "running", self.launcher.user_name, pid, time.time(), origin=origin)
        if self.history is not None:
            await loop.run_in_executor(None, self.history.save, info)
        run = Run(info, spec, launched, launcher=self.launcher, emit=self._emit_for(run_id))
        self._runs[run_id] = run
        log.info("run %s: %s started as %s, pid %d", run_id, script, info.user, pid)
        self._emit({"type": "run_started", "run": info.to_json()})
        run.task = asyncio.create_task(run.supervise(self._after_end), name=f"run-{run_id}")
        return info

    def _env(self, spec: LaunchSpec) -> dict[str, str]:
        env = {**BASE_ENV, "HOME": str(spec.run_dir), "MPLBACKEND": MPL_BACKEND}
        assert spec.output_dir is not None
        env["BI_OUTPUT_DIR"] = str(spec.output_dir)
        if spec.project_dir is not None:
            # The script file sits in the run directory (so tracebacks carry
            # the editor's lines); its project's modules import from here.
            env["BI_PROJECT_DIR"] = str(spec.project_dir)
            env["PYTHONPATH"] = str(spec.project_dir)
        return {**env, **self._env_for_run(spec.run_id, spec.script)}

    def _emit_for(self, run_id: str) -> Callable[[dict[str, Any]], None]:
        def emit(event: dict[str, Any]) -> None:
            if self.history is not None and event["type"] in ("run_output", "run_dropped"):
                try:
                    self.history.console_line(run_id, event)
                except OSError as exc:
                    log.warning("run %s: console log not written: %s", run_id, exc)
            self._emit(event)

        return emit

    def _make_dir(self, spec: LaunchSpec, data: bytes, files: dict[str, bytes] | None) -> None:
        # 0770 (less the service's umask): under the run template the group's setgid
        # folders must be made group-writable, as no chmod may keep their setgid bit.
        spec.run_dir.mkdir(mode=0o770)
        # Through storage so that a full disk is told in words (DiskFullError).
        atomic_write_bytes(spec.run_dir / spec.script, data)
        assert spec.output_dir is not None
        spec.output_dir.mkdir(mode=0o770)
        if files is not None and spec.project_dir is not None:
            spec.project_dir.mkdir(mode=0o755)
            for rel, body in files.items():
                target = spec.project_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(body)
        self.launcher.prepare(spec)

    async def _after_end(self, run: Run) -> None:
        info = run.info()
        log.info("run %s: %s %s (%s)", info.id, info.name, info.state, info.reason)
        loop = asyncio.get_running_loop()
        if self.history is not None:
            await loop.run_in_executor(None, self._keep, run)
            files = await loop.run_in_executor(None, self.history.files, info.id)
            self._emit({"type": "run_kept", "run": info.id, "files": files})
        if self._on_end is not None:
            self._on_end(info.id)
        ended = [r for r in self._runs.values() if r.ended]
        for old in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self._runs[old.spec.run_id]
            if self.history is not None:
                self._past[old.spec.run_id] = old.info()
        stale = [r for r in ended[: max(0, len(ended) - KEEP_DIRS)] if not r.dir_removed]
        for old in stale:
            old.dir_removed = True
            await loop.run_in_executor(None, shutil.rmtree, old.spec.run_dir, True)

    def _keep(self, run: Run) -> None:
        # Blocking file I/O, in an executor: record, console, outputs, quota.
        assert self.history is not None and run.spec.output_dir is not None
        info = run.info()
        try:
            self.history.close_console(info.id)
            self.history.save(info)
            self.history.keep_outputs(info.id, run.spec.output_dir)
        except OSError as exc:
            # A full card: the run has ended all the same; say what was not kept.
            log.error("run %s: its record or output files could not be kept: %s", info.id, exc)
        self.trim_history()

    def trim_history(self) -> builtins.list[str]:
        """Apply the history quota: oldest ended runs go first, a running one never."""
        if self.history is None:
            return []
        ended = [info.id for info in self.list() if info.state != "running"]
        removed = self.history.trim(ended)
        for run_id in removed:
            self._past.pop(run_id, None)
            self._runs.pop(run_id, None)
        return removed

    def forget(self, run_id: str) -> None:
        """Delete an ended run's record, console and output files (the user asked)."""
        run = self._runs.get(run_id)
        if run is not None and not run.ended:
            raise RunError(f"run {run_id} is still running; stop it first")
        if run is None and run_id not in self._past:
            raise RunError(f"no run {run_id!r}; it never existed or was deleted")
        self._runs.pop(run_id, None)
        self._past.pop(run_id, None)
        if self.history is not None:
            self.history.delete(run_id)

    def list(self) -> builtins.list[RunInfo]:
        """Every known run (those of earlier starts of the service too), oldest first."""
        live = [run.info() for run in self._runs.values()]
        past = [info for run_id, info in self._past.items() if run_id not in self._runs]
        return sorted(past + live, key=lambda info: info.started)

    def info(self, run_id: str) -> RunInfo | None:
        """The record of one run, live or from the history."""
        run = self._runs.get(run_id)
        return run.info() if run is not None else self._past.get(run_id)

    def source(self, run_id: str) -> str:
        """The code a run was started with, as long as its directory is kept; raises RunError."""
        run = self._known(run_id)
        if run.dir_removed:
            raise RunError(f"the source of run {run_id} is no longer kept; only recent runs keep theirs")
        try:
            return (run.spec.run_dir / run.spec.script).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise RunError(f"the source of run {run_id} cannot be read: {exc.strerror}") from None

    def get(self, run_id: str) -> Run | None:
        """The run with this id, None when there is none (or it was forgotten)."""
        return self._runs.get(run_id)

    def _known(self, run_id: str) -> Run:
        run = self._runs.get(run_id)
        if run is None:
            raise RunError(f"no run {run_id!r}; it never existed or ended long ago")
        return run

    async def stop(self, run_id: str) -> RunInfo:
        """Stop one run; returns once all its processes are gone."""
        return await self._known(run_id).stop()

    async def wait(self, run_id: str) -> RunInfo:
        """Wait for one run to end on its own."""
        return await self._known(run_id).wait()

    async def stop_all(self) -> None:
        """Stop every run (service shutdown) and wait until all are tidied up."""
        runs = list(self._runs.values())
        await asyncio.gather(*(run.stop() for run in runs))
