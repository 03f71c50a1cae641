"""Script runs started from the editor: the set of runs and how one starts.

:class:`RunManager` lives on the service's event loop.  ``start`` checks the
script's name, writes the user's code unchanged to a fresh directory (so
traceback line numbers are the editor's) and hands it to a
:class:`~appliance.runs.launcher.Launcher`; each started script is a
:class:`~appliance.runs.run.Run`.  Ended runs and their directories are kept in
bounded numbers so the console survives a reload and the card does not fill."""

from __future__ import annotations

import asyncio
import builtins
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
from appliance.runs.launchbase import Launcher, LaunchError, LaunchSpec
from appliance.runs.run import Run, RunInfo
from appliance.storage import atomic_write_bytes

__all__ = ["BASE_ENV", "Run", "RunError", "RunInfo", "RunManager", "script_name"]

log = logging.getLogger(__name__)

MAX_CODE_BYTES = 1 << 20
MAX_RUNNING = 8
#: Ended runs listed; older ones are forgotten.
KEEP_ENDED = 16
#: Ended runs whose directories (files the script wrote) are kept on the card.
KEEP_DIRS = 4

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
    ) -> None:
        self.run_root = run_root
        self.launcher = launcher
        self._env_for_run = env_for_run
        self._on_event = on_event
        self._on_end = on_end
        self._max_running = max_running
        self._runs: dict[str, Run] = {}
        # 0711: the run user may enter its own directory but not list others.
        # Set explicitly: the service's umask (0027 under systemd) would drop o+x.
        # A root that already allows that is left alone: under systemd it is
        # 2711 with the run group, and the sandbox could not set that bit again.
        run_root.mkdir(parents=True, exist_ok=True)
        st = run_root.stat()
        if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) & 0o711 != 0o711:
            run_root.chmod(0o711)
        self._remove_stale()

    def _remove_stale(self) -> None:
        # Only names this class makes, so a wrong run_root cannot lose other files.
        for entry in self.run_root.iterdir():
            if _RUN_ID.match(entry.name) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry.suffix == ".env" and _RUN_ID.match(entry.stem):
                entry.unlink()

    def _emit(self, event: dict[str, Any]) -> None:
        try:
            self._on_event(event)
        except Exception:
            # A broken listener must not stop the pumps: the child would block.
            log.exception("run event handler failed for %s", event.get("type"))

    async def start(self, name: str, code: str) -> RunInfo:
        """Write ``code`` to a fresh run directory as ``name`` and start it."""
        script = script_name(name)
        data = _code_bytes(code)
        running = sum(not run.ended for run in self._runs.values())
        if running >= self._max_running:
            raise RunError(f"{running} scripts are already running; stop one first")
        run_id = secrets.token_hex(6)
        run_dir = self.run_root / run_id
        env = {**BASE_ENV, "HOME": str(run_dir), **self._env_for_run(run_id, script)}
        spec = LaunchSpec(run_id, script, run_dir, env)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._make_dir, spec, data)
            launched = await self.launcher.spawn(spec)
        except (OSError, LaunchError) as exc:
            await loop.run_in_executor(None, shutil.rmtree, run_dir, True)
            raise RunError(f"could not start {script}: {exc}") from exc
        pid = launched.proc.pid
        info = RunInfo(run_id, script, "running", self.launcher.user_name, pid, time.time())
        run = Run(info, spec, launched, launcher=self.launcher, emit=self._emit)
        self._runs[run_id] = run
        log.info("run %s: %s started as %s, pid %d", run_id, script, info.user, pid)
        self._emit({"type": "run_started", "run": info.to_json()})
        run.task = asyncio.create_task(run.supervise(self._after_end), name=f"run-{run_id}")
        return info

    def _make_dir(self, spec: LaunchSpec, data: bytes) -> None:
        spec.run_dir.mkdir(mode=0o755)
        # Through storage so that a full disk is told in words (DiskFullError).
        atomic_write_bytes(spec.run_dir / spec.script, data)
        self.launcher.prepare(spec)

    async def _after_end(self, run: Run) -> None:
        info = run.info()
        log.info("run %s: %s %s (%s)", info.id, info.name, info.state, info.reason)
        if self._on_end is not None:
            self._on_end(info.id)
        ended = [r for r in self._runs.values() if r.ended]
        for old in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self._runs[old.spec.run_id]
        stale = [r for r in ended[: max(0, len(ended) - KEEP_DIRS)] if not r.dir_removed]
        loop = asyncio.get_running_loop()
        for old in stale:
            old.dir_removed = True
            await loop.run_in_executor(None, shutil.rmtree, old.spec.run_dir, True)

    def list(self) -> builtins.list[RunInfo]:
        """Every known run, oldest first."""
        return [run.info() for run in self._runs.values()]

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
