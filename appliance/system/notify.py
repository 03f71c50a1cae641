"""Telling systemd how the service is doing: READY, STATUS, WATCHDOG, STOPPING.

Everything here is a no-op when the service was not started by systemd
(``NOTIFY_SOCKET`` unset), so ``appliance serve`` behaves the same in a
terminal, in tests and under systemd.

The messages go through systemd-python's ``systemd.daemon.notify`` (the
``device`` extra). A laptop or a checkout without that extra still runs: the
import is lazy and a minimal sender of the same datagram protocol stands in.

Wiring, as ``appliance.service.Service`` uses it::

    notifier = Notifier()
    feeder = WatchdogFeeder(notifier)      # pets WATCHDOG only while blocks flow
    ...capture open, HTTP listening...
    notifier.ready()
    feeder.start()                         # on the loop
    notifier.status(describe_status(...))  # whenever something changes
    feeder.note_block()                    # per block, on the loop
    ...
    notifier.stopping(); await feeder.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.system.supervisor import log_failure

log = logging.getLogger(__name__)

#: How many pings systemd gets per watchdog period (it restarts the service
#: after one whole period without one; two per period leaves room for jitter).
PINGS_PER_WATCHDOG_PERIOD = 2

Sender = Callable[[str], bool]


def _socket_send(message: str) -> bool:
    """Send one notification datagram to ``$NOTIFY_SOCKET`` (the sd_notify protocol)."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):
        # An abstract socket: the leading '@' stands for a NUL byte.
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(message.encode(), path)
        except OSError as exc:
            log.warning("cannot notify systemd at %s: %s", path, exc)
            return False
    return True


def _systemd_send(message: str) -> bool:
    from systemd import daemon  # noqa: PLC0415 (optional device extra)

    return bool(daemon.notify(message))


def default_sender() -> Sender:
    """systemd-python's ``notify`` when installed, else the built-in datagram sender."""
    try:
        import systemd.daemon  # noqa: F401, PLC0415 (optional device extra)
    except ImportError:
        log.debug("systemd-python is not installed; using the built-in notify sender")
        return _socket_send
    return _systemd_send


class Notifier:
    """Sends state changes to systemd; does nothing when ``NOTIFY_SOCKET`` is unset."""

    def __init__(self, send: Sender | None = None) -> None:
        self._send = send
        self._last_status: str | None = None

    @property
    def enabled(self) -> bool:
        """True when the service manager listens (``NOTIFY_SOCKET`` is set)."""
        return bool(os.environ.get("NOTIFY_SOCKET"))

    def _notify(self, message: str) -> bool:
        if not self.enabled:
            return False
        if self._send is None:
            self._send = default_sender()
        return self._send(message)

    def ready(self) -> bool:
        """Say the service is up: call only once capture is open and HTTP listens."""
        log.debug("notify READY")
        return self._notify("READY=1")

    def status(self, text: str) -> bool:
        """Set the one-line status that ``systemctl status`` shows; repeats are skipped."""
        if text == self._last_status:
            return False
        self._last_status = text
        return self._notify("STATUS=" + text.replace("\n", " "))

    def watchdog(self) -> bool:
        """Pet the watchdog once."""
        return self._notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """Say the service is shutting down on purpose."""
        log.debug("notify STOPPING")
        return self._notify("STOPPING=1")

    def watchdog_interval(self) -> float | None:
        """The watchdog period in seconds from ``WATCHDOG_USEC``, or None when there is none.

        Like ``sd_watchdog_enabled``: a ``WATCHDOG_PID`` naming another process
        means the watchdog is not ours.
        """
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        if pid and pid != str(os.getpid()):
            return None
        if not usec.isdigit() or int(usec) == 0:
            return None
        return int(usec) / 1_000_000


class WatchdogFeeder:
    """Pets systemd's watchdog only while captured blocks keep arriving.

    ``note_block()`` is called on the loop for every block; a periodic task
    sends ``WATCHDOG=1`` only when at least one block arrived since its last
    tick. A stalled capture therefore stops the pings and systemd restarts the
    service after ``WatchdogSec``.
    """

    def __init__(self, notifier: Notifier, interval_s: float | None = None) -> None:
        self._notifier = notifier
        period = interval_s if interval_s is not None else notifier.watchdog_interval()
        self._tick_s = None if period is None else period / PINGS_PER_WATCHDOG_PERIOD
        self._blocks_since_tick = 0
        self._waiting = False
        self._task: asyncio.Task[None] | None = None
        self.pings = 0
        self.missed_ticks = 0

    @property
    def tick_s(self) -> float | None:
        """Seconds between checks, or None when there is no watchdog."""
        return self._tick_s

    def note_block(self) -> None:
        """Record that a block arrived (cheap: called per block on the loop)."""
        self._blocks_since_tick += 1

    def set_capture_waiting(self, waiting: bool) -> None:
        """Excuse the lack of blocks while the capture reports its device missing.

        A missing or unplugged microphone is a state the capture thread knows
        about and probes for (shown in the web app); restarting the service
        would not bring it back. Only a capture that is supposed to run and
        delivers nothing is a stall.
        """
        if waiting != self._waiting:
            log.info("watchdog: capture %s", "waits for its device" if waiting else "runs again")
        self._waiting = waiting

    def check(self) -> bool:
        """One tick: ping when blocks arrived since the last tick (or the capture waits)."""
        if self._waiting:
            self._blocks_since_tick = 0
            self.missed_ticks = 0
            self.pings += 1
            self._notifier.watchdog()
            return True
        if self._blocks_since_tick == 0:
            self.missed_ticks += 1
            if self.missed_ticks == 1:
                log.warning("no audio block since the last watchdog tick; not petting the watchdog")
            else:
                log.debug("watchdog tick %d without audio blocks", self.missed_ticks)
            return False
        if self.missed_ticks:
            log.info("audio blocks flow again after %d silent watchdog ticks", self.missed_ticks)
        self._blocks_since_tick = 0
        self.missed_ticks = 0
        self.pings += 1
        self._notifier.watchdog()
        return True

    def start(self) -> None:
        """Start ticking on the running loop; does nothing without a watchdog."""
        if self._tick_s is None or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(self._tick_s), name="watchdog")
        self._task.add_done_callback(log_failure)

    async def _run(self, tick_s: float) -> None:
        next_at = time.monotonic()
        while True:
            next_at += tick_s
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            self.check()

    async def stop(self) -> None:
        """Stop ticking and wait for the task to end."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True, slots=True)
class ServiceState:
    """What ``STATUS=`` reports, in words."""

    source: str
    rate: int
    channels: int
    runs: int = 0
    listeners: int = 0
    clients: int = 0
    capture: str = ""
    """When not capturing: what the capture does instead, e.g. ``waiting for the capture device: ...``."""


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def describe_status(state: ServiceState) -> str:
    """The one-line status: ``capturing from alsa:hw:1 at 48000 Hz, 6 channels; 1 script running, ...``."""
    parts = [
        _count(state.runs, "script running", "scripts running"),
        _count(state.listeners, "RTP listener", "RTP listeners"),
        _count(state.clients, "client", "clients"),
    ]
    head = state.capture or (
        f"capturing from {state.source} at {state.rate} Hz, " + _count(state.channels, "channel", "channels")
    )
    return head + "; " + ", ".join(parts)
