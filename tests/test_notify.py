"""systemd notification over a real AF_UNIX datagram socket as NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.system import notify
from appliance.system.notify import (
    Notifier,
    ServiceState,
    WatchdogFeeder,
    describe_status,
)


class NotifySocket:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def receive(self, timeout_s: float = 5.0) -> str:
        """The next datagram, waiting up to ``timeout_s``."""
        self.sock.settimeout(timeout_s)
        return self.sock.recv(4096).decode()

    def drain(self) -> list[str]:
        """Every datagram already queued, without waiting."""
        self.sock.setblocking(False)
        out = []
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return out
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock.path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


@pytest.mark.parametrize("sender", ["systemd-python", "built-in"])
def test_ready_status_watchdog_stopping_arrive_in_order(notify_socket: NotifySocket, sender: str) -> None:
    n = Notifier(None if sender == "systemd-python" else notify._socket_send)
    assert n.enabled
    assert n.ready()
    assert n.status("capturing from sim at 16000 Hz, 4 channels")
    assert n.watchdog()
    assert n.stopping()
    got = [notify_socket.receive() for _ in range(4)]
    assert got == [
        "READY=1",
        "STATUS=capturing from sim at 16000 Hz, 4 channels",
        "WATCHDOG=1",
        "STOPPING=1",
    ]


def test_default_sender_is_systemd_python_when_installed() -> None:
    assert notify.default_sender() is notify._systemd_send


def test_abstract_socket_address(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"micarray-test-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert Notifier(notify._socket_send).ready()
        sock.settimeout(5)
        assert sock.recv(100) == b"READY=1"


def test_repeated_status_is_sent_once(notify_socket: NotifySocket) -> None:
    n = Notifier()
    assert n.status("idle")
    assert not n.status("idle")
    assert n.status("busy\nnow")
    assert [notify_socket.receive(), notify_socket.receive()] == ["STATUS=idle", "STATUS=busy now"]
    assert notify_socket.drain() == []


def test_everything_is_a_no_op_without_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    n = Notifier()
    assert not n.enabled
    assert not n.ready()
    assert not n.status("x")
    assert not n.watchdog()
    assert not n.stopping()
    assert n.watchdog_interval() is None
    feeder = WatchdogFeeder(n)
    assert feeder.tick_s is None

    async def run() -> None:
        feeder.start()  # no watchdog: no task
        feeder.note_block()
        await feeder.stop()

    asyncio.run(run())
    assert feeder.pings == 0


def test_unreachable_socket_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert not Notifier(notify._socket_send).ready()
    assert "cannot notify systemd at" in caplog.text


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("10000000", None, 10.0),
        ("250000", "self", 0.25),
        ("10000000", "1", None),
        ("0", None, None),
        ("ten", None, None),
        (None, None, None),
    ],
)
def test_watchdog_interval(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None, expected: float | None
) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(os.getpid()) if value == "self" else value)
    assert Notifier().watchdog_interval() == expected


def test_feeder_pings_only_when_blocks_arrived(notify_socket: NotifySocket) -> None:
    feeder = WatchdogFeeder(Notifier(), interval_s=10.0)
    assert feeder.tick_s == 5.0
    assert not feeder.check()
    feeder.note_block()
    feeder.note_block()
    assert feeder.check()
    assert not feeder.check()
    assert notify_socket.drain() == ["WATCHDOG=1"]
    assert (feeder.pings, feeder.missed_ticks) == (1, 1)


async def _wait_for(predicate: Callable[[], bool], deadline_s: float = 10.0) -> None:
    end = time.monotonic() + deadline_s
    while not predicate():
        assert time.monotonic() < end, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


def test_watchdog_stops_when_blocks_stall(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks flow: WATCHDOG=1 arrives; capture stalls: the pings stop."""
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # 0.1 s, ticks every 0.05 s
    n = Notifier()
    feeder = WatchdogFeeder(n)
    flowing = asyncio.Event()

    async def capture() -> None:
        # Stands in for the capture thread handing blocks to the loop.
        while flowing.is_set():
            feeder.note_block()
            await asyncio.sleep(0.005)

    async def run() -> list[str]:
        n.ready()
        feeder.start()
        flowing.set()
        producer = asyncio.create_task(capture())
        await _wait_for(lambda: feeder.pings >= 3)
        flowing.clear()  # the stall
        await producer
        await _wait_for(lambda: feeder.missed_ticks >= 1)
        before_stall = notify_socket.drain()
        await _wait_for(lambda: feeder.missed_ticks >= 4)
        after_stall = notify_socket.drain()
        await feeder.stop()
        return [*before_stall, "--stall--", *after_stall]

    got = asyncio.run(run())
    stall = got.index("--stall--")
    assert got[0] == "READY=1"
    assert got[1:stall].count("WATCHDOG=1") >= 3
    assert got[stall + 1 :] == []
    assert feeder.pings >= 3


def test_status_in_words() -> None:
    text = describe_status(ServiceState("alsa:hw:1", 48000, 6, runs=1, listeners=2, clients=0))
    assert text == (
        "capturing from alsa:hw:1 at 48000 Hz, 6 channels; 1 script running, 2 RTP listeners, 0 clients"
    )
    assert describe_status(ServiceState("sim", 16000, 1)).startswith(
        "capturing from sim at 16000 Hz, 1 channel;"
    )


def test_missing_device_is_not_a_stall(notify_socket: NotifySocket) -> None:
    """While the capture waits for an unplugged device the service stays up and says so."""
    feeder = WatchdogFeeder(Notifier(), interval_s=10.0)
    feeder.set_capture_waiting(True)
    assert feeder.check()
    assert feeder.check()
    feeder.set_capture_waiting(False)  # supposed to run again: blocks are required
    assert not feeder.check()
    feeder.note_block()
    assert feeder.check()
    assert notify_socket.drain() == ["WATCHDOG=1"] * 3


def test_status_while_waiting_for_the_device() -> None:
    state = ServiceState("alsa:hw:1", 48000, 6, capture="waiting for the capture device: unplugged")
    assert describe_status(state) == (
        "waiting for the capture device: unplugged; 0 scripts running, 0 RTP listeners, 0 clients"
    )
