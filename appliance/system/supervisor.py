"""Every background task of the service, owned: named, kept, awaited at stop, and never failing unseen.

The rule (docs/internals.md, "Background tasks"):

- ``restart``: a loop the device cannot do without for long (periodic
  status, levels, the systemd status reporter).  A failure is logged with
  its traceback and the task starts again after a pause; failing more than
  RESTART_LIMIT times within RESTART_WINDOW_S it is treated as ``fatal``.
- ``fatal``: a task whose failure leaves the device wrong.  The failure is
  logged with its traceback and the service stops with status 1, so systemd
  (``Restart=on-failure``) starts it anew.
- ``once``: work for one request (starting or stopping a run).  A failure
  is logged with its traceback; the request's own error path answers the
  client.

A task that ends by cancellation (the service stopping) is not a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

log = logging.getLogger(__name__)

Policy = Literal["restart", "fatal", "once"]
RESTART_LIMIT = 5
RESTART_WINDOW_S = 60.0
RESTART_PAUSE_S = 1.0


class Supervisor:
    """The owner of the service's tasks; ``on_fatal(reason)`` is asked to stop the service."""

    def __init__(self, on_fatal: Callable[[str], None]) -> None:
        self._on_fatal = on_fatal
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures: dict[str, list[float]] = {}
        self._stopping = False

    def spawn(self, name: str, work: Callable[[], Awaitable[None]], policy: Policy) -> asyncio.Task[None]:
        """Run ``work()`` as task ``name`` under ``policy`` (``work`` is called again on a restart)."""
        task = asyncio.get_running_loop().create_task(self._guard(name, work, policy), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guard(self, name: str, work: Callable[[], Awaitable[None]], policy: Policy) -> None:
        while True:
            try:
                await work()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("background task %s failed", name, exc_info=exc)
                if policy == "once" or self._stopping:
                    return
                if policy == "fatal" or self._too_many(name):
                    self._on_fatal(f"background task {name} failed: {exc!r}")
                    return
            await asyncio.sleep(RESTART_PAUSE_S)
            log.warning("background task %s restarted", name)

    def _too_many(self, name: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._failures.get(name, []) if now - t < RESTART_WINDOW_S]
        recent.append(now)
        self._failures[name] = recent
        return len(recent) > RESTART_LIMIT

    @property
    def running(self) -> list[str]:
        """The names of the tasks still running."""
        return sorted(t.get_name() for t in self._tasks if not t.done())

    async def stop(self) -> None:
        """Cancel every task and wait until each has ended."""
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def log_failure(task: asyncio.Task[object]) -> None:
    """Done callback for a task owned elsewhere (a session's, a stream's): a failure is logged, never lost."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("task %s failed", task.get_name(), exc_info=exc)
