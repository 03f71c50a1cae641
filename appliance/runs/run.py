"""One script run: its process, its rate-limited console, its end.

A :class:`Run` reads the child's pipes line by line, sends each line as an
event (with the editor line for traceback frames in the user's file), keeps a
bounded tail for a browser that reloads, escalates SIGINT, SIGTERM, SIGKILL
on Stop, and sends ``run_ended`` with a reason in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from appliance.runs import runoutput
from appliance.runs.launchbase import Launched, Launcher, LaunchSpec
from appliance.runs.tracebacks import UserFileLines

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
#: Time for output already in the pipes to be read after the run ended.
DRAIN_S = 1.0

READ_CHUNK = 65536
#: Console events kept per run for a browser that reloads.
TAIL_EVENTS = 500
TAIL_BYTES = 256 * 1024
#: Last stderr lines searched for signs of running out of memory.
STDERR_CHECK_LINES = 8
_OUT_OF_MEMORY = re.compile(r"MemoryError|Cannot allocate memory|out of memory|bad_alloc")


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
    origin: str = "editor"
    """Where it was started: ``editor`` (the web app) or ``terminal`` (``appliance run``)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form sent in events and lists."""
        return dataclasses.asdict(self)


class Run:
    """One running or ended script: its process, console and end."""

    def __init__(
        self,
        info: RunInfo,
        spec: LaunchSpec,
        launched: Launched,
        *,
        launcher: Launcher,
        emit: Callable[[dict[str, Any]], None],
    ) -> None:
        self.spec = spec
        self._info = info
        self._proc = launched.proc
        self._outputs = launched.outputs
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

    async def _pump(self, stream: str) -> None:
        reader = self._outputs[stream].reader
        splitter = runoutput.LineSplitter(runoutput.MAX_LINE_BYTES)
        while data := await reader.read(READ_CHUNK):
            if self._throttled and not self._budget.has_room():
                # Count a flood in bulk; only the last stderr lines are looked at.
                keep = STDERR_CHECK_LINES if stream == "stderr" else 0
                dropped, last = splitter.discard(data, keep)
                self._count_drops(dropped)
                self._handle(stream, last)
                self._throttled = True
            else:
                self._handle(stream, splitter.feed(data))
            if self._throttled:
                await asyncio.sleep(DROP_PAUSE_S)
        self._handle(stream, splitter.flush())

    def _handle(self, stream: str, lines: list[str]) -> None:
        if stream == "stderr":
            self._stderr_last.extend(lines[-STDERR_CHECK_LINES:])
        sent = 0
        for text in lines:
            if not self._budget.take(len(text) + 1):
                break  # the rest of this batch is over budget too
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
            sent += 1
        self._count_drops(len(lines) - sent)

    def _count_drops(self, dropped: int) -> None:
        self._throttled = dropped > 0
        if not dropped:
            return
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
        pumps = asyncio.gather(*(self._pump(stream) for stream in self._outputs))
        try:
            # The output pipes are not asyncio's, so this returns at the exit
            # even while some other process still holds them.
            await proc.wait()
            # Nothing of a run outlives it: children left in its group go too.
            if self._stopper is not None:
                await asyncio.shield(self._stopper)
            elif self._launcher.alive(self.spec, proc):
                await self._escalate((signal.SIGTERM, signal.SIGKILL))
            await self._drain(pumps)
            returncode, reason = await self._launcher.finish(self.spec, proc)
            self._end(returncode, reason)
        finally:
            for output in self._outputs.values():
                output.close()
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
            if sig_name == "SIGKILL":
                # Not us (no Stop): on a device that is nearly always the kernel.
                reason += ", probably by the kernel because memory ran out"
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
