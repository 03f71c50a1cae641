"""``appliance serve`` under a stand-in systemd: READY, STATUS, WATCHDOG, a stall, STOPPING.

The service runs in a subprocess with a real AF_UNIX datagram socket as
NOTIFY_SOCKET. Its simulator's fault switches are thrown by signals: SIGUSR1
``stall()``, SIGUSR2 ``disappear()`` (a few lines of wrapper below hand the
simulator to the service and keep a handle on it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.netns import stop, wait_for_line
from tests.server import REPO, free_port

WATCHDOG_USEC = 400_000  # ticks every 0.2 s

SERVE = r"""
import signal, sys
from appliance import daemon
from appliance.capture.sources.simulator import SimulatedArray
sim = SimulatedArray()
daemon.make_source = lambda spec, preset=None: sim
signal.signal(signal.SIGUSR1, lambda *_: sim.stall())
signal.signal(signal.SIGUSR2, lambda *_: sim.disappear())
from appliance.cli import main
sys.exit(main(sys.argv[1:]))
"""


class NotifyInbox:
    """The datagram socket systemd would listen on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.received: list[str] = []

    def until(self, done: Callable[[list[str]], bool], deadline_s: float = 90.0) -> list[str]:
        """Receive until ``done(received)`` holds; returns everything so far."""
        end = time.monotonic() + deadline_s
        while not done(self.received):
            remaining = end - time.monotonic()
            assert remaining > 0, f"condition not met; received {self.received}"
            self.sock.settimeout(remaining)
            self.received.append(self.sock.recv(4096).decode())
        return self.received

    def drain(self) -> list[str]:
        """What is queued now, without waiting."""
        self.sock.setblocking(False)
        try:
            while True:
                self.received.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return self.received
        finally:
            self.sock.setblocking(True)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], NotifyInbox]]:
    inbox = NotifyInbox(tmp_path / "notify")
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(inbox.path),
        "WATCHDOG_USEC": str(WATCHDOG_USEC),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("WATCHDOG_PID", None)
    env.pop("JOURNAL_STREAM", None)
    argv = [
        sys.executable, "-c", SERVE, "serve", "--source", "sim", "--http-port", str(free_port()),
        "--bind", "127.0.0.1", "--data-dir", str(tmp_path / "data"), "--no-mdns",
        "--log-level", "DEBUG",
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield proc, inbox
    finally:
        stop(proc)
        inbox.sock.close()


def test_ready_status_watchdog_then_stall_then_stopping(
    served: tuple[subprocess.Popen[str], NotifyInbox],
) -> None:
    proc, inbox = served
    got = inbox.until(lambda r: "READY=1" in r)
    assert got == ["READY=1"], "nothing may be announced before READY"
    inbox.until(lambda r: r.count("WATCHDOG=1") >= 3 and any(m.startswith("STATUS=") for m in r))
    status = next(m for m in inbox.received if m.startswith("STATUS="))
    assert status.startswith("STATUS=capturing from sim")
    assert "Hz" in status and "channels" in status

    os.kill(proc.pid, signal.SIGUSR1)  # the capture stalls
    wait_for_line(proc, "no audio block since the last watchdog tick", deadline_s=90)
    before = len(inbox.drain())
    wait_for_line(proc, "watchdog tick 4 without audio blocks", deadline_s=90)
    after = inbox.drain()[before:]
    assert "WATCHDOG=1" not in after, after

    os.kill(proc.pid, signal.SIGTERM)
    assert inbox.until(lambda r: "STOPPING=1" in r)[-1] == "STOPPING=1"
    assert proc.wait(90) == 0


def test_unplugged_device_keeps_the_watchdog_fed_and_says_so(
    served: tuple[subprocess.Popen[str], NotifyInbox],
) -> None:
    """A missing microphone is reported, not cured by restart loops."""
    proc, inbox = served
    inbox.until(lambda r: r.count("WATCHDOG=1") >= 1)
    os.kill(proc.pid, signal.SIGUSR2)  # the array is unplugged
    waiting = "STATUS=waiting for the capture device"
    got = inbox.until(lambda r: any(m.startswith(waiting) for m in r))
    at = next(i for i, m in enumerate(got) if m.startswith(waiting))
    inbox.until(lambda r: r[at + 1 :].count("WATCHDOG=1") >= 3)
    assert "unplugged" in got[at]
