"""Script runs started from the editor: each one a confined process with a live console.

:class:`RunManager` lives on the service's event loop.  ``start`` writes the
user's code unchanged to a fresh directory (so traceback line numbers are the
editor's) and hands it to a :class:`~appliance.launcher.Launcher`.  Output is
read line by line, rate-limited per run, sent as events and kept in a bounded
tail for a browser that reloads.  ``stop`` escalates SIGINT, SIGTERM, SIGKILL
on the whole process group.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import re
import secrets
import shutil
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from appliance import runoutput
from appliance.errors import ApplianceError
from appliance.launcher import Launcher, LaunchError, LaunchSpec
from appliance.tracebacks import UserFileLines

log = logging.getLogger(__name__)

# Timing, in seconds.  Stop: SIGINT, wait, SIGTERM, wait, SIGKILL, wait; the
# three add up to well under the 2 s in which a stopped run must be gone.
INT_GRACE_S = 0.6
TERM_GRACE_S = 0.5
KILL_WAIT_S = 0.5
#: How often a stopping run is checked for remaining processes.
GONE_POLL_S = 0.02
#: At most one ``run_dropped`` event per run per this interval.
DROP_REPORT_S = 1.0
#: Pause between reads while a run is over its output budget, so a flood
#: costs the loop little and the writer blocks on a full pipe instead.
DROP_PAUSE_S = 0.05
#: How often a run whose pipes are held open is checked for having exited.
EXIT_POLL_S = 0.25
#: Time for output already in the pipes to be read after the run ended.
DRAIN_S = 1.0

READ_CHUNK = 65536
#: Console events kept per run for a browser that reloads.
TAIL_EVENTS = 500
TAIL_BYTES = 256 * 1024
#: Last stderr lines searched for signs of running out of memory.
STDERR_CHECK_LINES = 8
MAX_CODE_BYTES = 1 << 20
MAX_RUNNING = 8
#: Ended runs listed; older ones are forgotten.
KEEP_ENDED = 16
#: Ended runs whose directories (files the script wrote) are kept on the card.
KEEP_DIRS = 4

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_RUN_ID = re.compile(r"^[0-9a-f]{12}$")
_OUT_OF_MEMORY = re.compile(r"MemoryError|Cannot allocate memory|out of memory|bad_alloc")

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


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What the console shows about one run."""

    id: str
    name: str
    state: str
    """``running``, then ``finished`` (exit 0), ``failed`` or ``stopped`` (by Stop)."""
    user: str
    pid: int
    started: float
    """Wall-clock start, seconds since the epoch."""
    ended: float | None = None
    exit_code: int | None = None
    """The exit status; None when a signal ended the process."""
    signal: str | None = None
    """The signal that ended the process, e.g. ``SIGKILL``."""
    reason: str = ""
    """Why it ended, in words: ``stopped by user``, ``exited with status 1``, ..."""
    dropped_lines: int = 0

    def to_json(self) -> dict[str, Any]:
        """The JSON form sent in events and lists."""
        return dataclasses.asdict(self)


class Run:
    """One running or ended script: its process, console and end."""

    def __init__(
        self,
        info: RunInfo,
        spec: LaunchSpec,
        proc: asyncio.subprocess.Process,
        launcher: Launcher,
        emit: Callable[[dict[str, Any]], None],
    ) -> None:
        self.spec = spec
        self._info = info
        self._proc = proc
        self._launcher = launcher
        self._emit = emit
        self._lines = UserFileLines(spec.run_dir, spec.script)
        self._budget = runoutput.OutputBudget(runoutput.LINES_PER_S, runoutput.BYTES_PER_S, runoutput.BURST_S)
        self._tail: deque[tuple[dict[str, Any], int]] = deque()
        self._tail_bytes = 0
        self._stderr_last: deque[str] = deque(maxlen=STDERR_CHECK_LINES)
        self._pending_drops = 0
        self._last_drop_report = float("-inf")
        self._drop_timer: asyncio.TimerHandle | None = None
        self._throttled = False
        self._stop_requested = False
        self._stopper: asyncio.Future[bool] | None = None
        self.dir_removed = False
        self.task: asyncio.Task[None] | None = None

    @property
    def ended(self) -> bool:
        """Whether the run has ended and its ``run_ended`` event was sent."""
        return self._info.state != "running"

    def info(self) -> RunInfo:
        """A snapshot of the run's state."""
        return self._info

    def output_tail(self) -> list[dict[str, Any]]:
        """The last console events (``run_output``, ``run_dropped``) in order."""
        return [event for event, _ in self._tail]

    async def wait(self) -> RunInfo:
        """Wait until the run has ended and been tidied up."""
        if self.task is not None:
            await asyncio.shield(self.task)
        return self._info

    async def stop(self) -> RunInfo:
        """Stop the run: SIGINT, SIGTERM, SIGKILL to all its processes until none is left."""
        if self._proc.returncode is None and not self.ended:
            self._stop_requested = True
            if self._stopper is None:
                sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
                self._stopper = asyncio.ensure_future(self._escalate(sigs))
            await asyncio.shield(self._stopper)
        return await self.wait()

    async def _escalate(self, sigs: Iterable[signal.Signals]) -> bool:
        grace = {signal.SIGINT: INT_GRACE_S, signal.SIGTERM: TERM_GRACE_S}
        for sig in sigs:
            await self._launcher.signal(self.spec, self._proc, sig)
            if await self._gone_within(grace.get(sig, KILL_WAIT_S)):
                return True
        log.warning("run %s: processes left after SIGKILL", self._info.id)
        return False

    async def _gone_within(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._launcher.alive(self.spec, self._proc):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(GONE_POLL_S)
        return True

    # -- output ---------------------------------------------------------------

    async def _pump(self, reader: asyncio.StreamReader | None, stream: str) -> None:
        if reader is None:
            return
        splitter = runoutput.LineSplitter(runoutput.MAX_LINE_BYTES)
        while data := await reader.read(READ_CHUNK):
            self._handle(stream, splitter.feed(data))
            if self._throttled:
                await asyncio.sleep(DROP_PAUSE_S)
        self._handle(stream, splitter.flush())

    def _handle(self, stream: str, lines: list[str]) -> None:
        dropped = 0
        for text in lines:
            if stream == "stderr":
                self._stderr_last.append(text)
            if not self._budget.take(len(text) + 1):
                dropped += 1
                continue
            event: dict[str, Any] = {
                "type": "run_output",
                "run": self._info.id,
                "stream": stream,
                "text": text,
            }
            line = self._lines.line_of(text)
            if line is not None:
                event["line"] = line
            self._record(event, len(text))
        self._throttled = dropped > 0
        if dropped:
            self._pending_drops += dropped
            self._info = dataclasses.replace(self._info, dropped_lines=self._info.dropped_lines + dropped)
            if self._drop_timer is None:
                loop = asyncio.get_running_loop()
                delay = max(0.0, self._last_drop_report + DROP_REPORT_S - loop.time())
                self._drop_timer = loop.call_later(delay, self._report_drops)

    def _report_drops(self) -> None:
        self._drop_timer = None
        if self._pending_drops:
            self._last_drop_report = asyncio.get_running_loop().time()
            lines, self._pending_drops = self._pending_drops, 0
            self._record({"type": "run_dropped", "run": self._info.id, "lines": lines}, 0)

    def _record(self, event: dict[str, Any], size: int) -> None:
        size += 64  # the event's fixed part, roughly
        self._tail.append((event, size))
        self._tail_bytes += size
        while len(self._tail) > TAIL_EVENTS or self._tail_bytes > TAIL_BYTES:
            self._tail_bytes -= self._tail.popleft()[1]
        self._emit(event)

    # -- end ------------------------------------------------------------------

    async def supervise(self, after_end: Callable[[Run], Awaitable[None]]) -> None:
        """Read output until the run ends, clean up, send ``run_ended``."""
        proc = self._proc
        pumps = asyncio.gather(self._pump(proc.stdout, "stdout"), self._pump(proc.stderr, "stderr"))
        exited = asyncio.ensure_future(proc.wait())
        try:
            while proc.returncode is None:
                waiting: set[asyncio.Future[Any]] = {exited} if pumps.done() else {pumps, exited}
                await asyncio.wait(waiting, timeout=EXIT_POLL_S, return_when=asyncio.FIRST_COMPLETED)
            # Nothing of a run outlives it: children left in its group go too.
            if self._stopper is not None:
                await asyncio.shield(self._stopper)
            elif self._launcher.alive(self.spec, proc):
                await self._escalate((signal.SIGTERM, signal.SIGKILL))
            await self._drain(pumps)
            returncode, reason = await self._launcher.finish(self.spec, proc.returncode)
            self._end(returncode, reason)
        finally:
            exited.cancel()
            if not self.ended:
                self._end(proc.returncode if proc.returncode is not None else -9, None)
            await after_end(self)

    async def _drain(self, pumps: asyncio.Future[Any]) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(pumps), DRAIN_S)
        except TimeoutError:
            # A process that left the group (setsid) still holds the pipe.
            log.warning("run %s: output still open after the run ended", self._info.id)
            pumps.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumps

    def _end(self, returncode: int, override: str | None) -> None:
        if self._drop_timer is not None:
            self._drop_timer.cancel()
        self._report_drops()
        sig_name = None
        if returncode < 0:
            try:
                sig_name = signal.Signals(-returncode).name
            except ValueError:
                sig_name = f"signal {-returncode}"
        memory = override
        if memory is None and returncode != 0 and self._out_of_memory():
            memory = f"memory limit of {self._launcher.limits.memory_mib} MiB reached"
        if self._stop_requested:
            state, reason = "stopped", "stopped by user"
        elif returncode == 0:
            state, reason = "finished", "exited with status 0"
        elif memory is not None:
            state, reason = "failed", memory
        elif sig_name is not None:
            state, reason = "failed", f"killed by {sig_name}"
        else:
            state, reason = "failed", f"exited with status {returncode}"
        self._info = dataclasses.replace(
            self._info,
            state=state,
            ended=time.time(),
            exit_code=returncode if returncode >= 0 else None,
            signal=sig_name,
            reason=reason,
        )
        self._emit({"type": "run_ended", "run": self._info.to_json()})

    def _out_of_memory(self) -> bool:
        return any(_OUT_OF_MEMORY.search(line) for line in self._stderr_last)


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
        run_root.mkdir(mode=0o711, parents=True, exist_ok=True)
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
            proc = await self.launcher.spawn(spec)
        except (OSError, LaunchError) as exc:
            await loop.run_in_executor(None, shutil.rmtree, run_dir, True)
            raise RunError(f"could not start {script}: {exc}") from exc
        info = RunInfo(run_id, script, "running", self.launcher.user_name, proc.pid, time.time())
        run = Run(info, spec, proc, self.launcher, self._emit)
        self._runs[run_id] = run
        log.info("run %s: %s started as %s, pid %d", run_id, script, info.user, proc.pid)
        self._emit({"type": "run_started", "run": info.to_json()})
        run.task = asyncio.create_task(run.supervise(self._after_end), name=f"run-{run_id}")
        return info

    def _make_dir(self, spec: LaunchSpec, data: bytes) -> None:
        spec.run_dir.mkdir(mode=0o755)
        (spec.run_dir / spec.script).write_bytes(data)
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
