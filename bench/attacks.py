"""What each attack of a hostile LAN peer costs: the service's memory, a real
user's answer time, and the audio blocks a running script loses.

Runs a real ``appliance serve --source sim`` held to systemd's 1024 open
files, a script-like audio client in a process of its own (it counts gaps in
the block sequence numbers and the device's ``loss`` reports), and a "real
user" who asks for the login page twice a second from an address of their
own. Each phase runs one attack from many loopback addresses:

- idle: no attack, the peer every other phase is compared with;
- slowloris: 1,100 half-sent requests held open (50 in smoke mode);
- big bodies: four ``POST /login`` announcing 95 MiB and sending as fast as they can;
- login flood: wrong passwords from rotating addresses, four at a time;
- rebinding: requests for ``/setup`` naming another host (the figure is what they get).

Prints figures only; never passes or fails on a time.
``python -m bench attacks``
"""

from __future__ import annotations

import contextlib
import functools
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bench import count, span
from tests.conftest_web import running_server
from tests.hostile_http import Client, half_sent, peer, rss_mib
from tests.server import ApplianceProcess

PHASE_S = span(8.0, smoke=1.0)
SLOWLORIS = count(1100, smoke=50)
USER_EVERY_S = 0.5
SYSTEMD_NOFILE = 1024

AUDIO_PROBE = r"""
import asyncio, json, sys
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from browserinterface import protocol as P

async def main(url, token):
    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": "Bearer " + token}))
    await ws.write_message(json.dumps({"type": "hello", "protocol": 1, "role": "script"}))
    await ws.write_message(json.dumps({"type": "audio", "on": True}))
    got = lost = 0
    last = None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async def report():
        nonlocal got, lost
        while await reader.readline():
            print(got, lost, flush=True)
            got = lost = 0
    task = asyncio.ensure_future(report())
    while not task.done():
        msg = await ws.read_message()
        if msg is None:
            break
        if isinstance(msg, bytes):
            seq = P.AUDIO_HEADER.unpack_from(msg)[4]
            if last is not None and seq > last + 1:
                lost += seq - last - 1
            last = seq
            got += 1
        elif json.loads(msg).get("type") == "loss":
            lost += json.loads(msg)["blocks"]

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@dataclass
class Figures:
    name: str
    rss_mib: list[float] = field(default_factory=list)
    answers_ms: list[float] = field(default_factory=list)
    user_failures: int = 0
    blocks: int = 0
    lost: int = 0
    log_lines: int = 0
    note: str = ""

    def row(self) -> str:
        answers = sorted(self.answers_ms)
        median = f"{statistics.median(answers):7.0f}" if answers else "      -"
        worst = f"{answers[-1]:7.0f}" if answers else "      -"
        share = 100 * self.lost / max(1, self.blocks + self.lost)
        return (
            f"{self.name:<12} {max(self.rss_mib, default=0):7.0f} {median} {worst} {self.user_failures:5d} "
            f"{self.blocks:6d} {self.lost:5d} {share:5.1f}% {self.log_lines:7d}  {self.note}"
        )


HEADER = (
    f"{'attack':<12} {'RSS MiB':>7} {'user ms':>7} {'worst':>7} {'fail':>5} "
    f"{'blocks':>6} {'lost':>5} {'lost%':>6} {'log +':>7}"
)


class AudioProbe:
    """The running script: a separate process reading audio and counting losses."""

    def __init__(self, srv: ApplianceProcess) -> None:
        url = f"ws://{srv.device}/api/v1/ws"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", AUDIO_PROBE, url, srv.token("bench-probe")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def counts(self) -> tuple[int, int]:
        """Blocks received and lost since the last call."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        got, lost = self.proc.stdout.readline().split()
        return int(got), int(lost)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _user_loop(port: int, stop: threading.Event, figures: Figures) -> None:
    n = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            status = (
                Client(port, source=f"127.0.200.{1 + n % 200}").request("GET", "/login", timeout=5).status
            )
            if status == 200:
                figures.answers_ms.append(1000 * (time.monotonic() - started))
            else:
                figures.user_failures += 1
        except OSError:
            figures.user_failures += 1
        n += 1
        stop.wait(max(0.0, USER_EVERY_S - (time.monotonic() - started)))


@contextlib.contextmanager
def _slowloris(port: int, stop: threading.Event, figures: Figures) -> Iterator[None]:
    held: list[socket.socket] = []
    stalls = 0
    for i in range(SLOWLORIS):
        try:
            held.append(half_sent(port, peer(i % 100), timeout=0.5))
        except OSError:
            stalls += 1
            if stalls > 10:
                break
    figures.note = f"{len(held)} connected"
    try:
        yield
    finally:
        for sock in held:
            sock.close()


def _big_body(port: int, stop: threading.Event, i: int) -> None:
    with contextlib.suppress(OSError), socket.socket() as sock:
        sock.bind((peer(300 + i), 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        head = f"POST /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {95 << 20}\r\n\r\n"
        sock.sendall(head.encode())
        chunk = bytes(1 << 20)
        for _ in range(95):
            if stop.is_set():
                break
            sock.sendall(chunk)
        stop.wait()


def _guesser(port: int, stop: threading.Event, i: int, tally: list[int]) -> None:
    n = 0
    while not stop.is_set():
        with contextlib.suppress(OSError):
            status = Client(port, source=peer(1000 + 4 * n + i)).form("/login", {"password": "guess"}).status
            tally.append(status)
        n += 1


def _rebind(port: int, figures: Figures) -> None:
    replies = [Client(port, host="rebind.example").request("GET", "/setup").status for _ in range(5)]
    figures.note = f"answers to a rebound name: {sorted(set(replies))}"


Attack = Callable[[threading.Event, Figures], contextlib.AbstractContextManager[None]]


def _phase(srv: ApplianceProcess, probe: AudioProbe, name: str, attack: Attack) -> Figures:
    assert srv.proc is not None
    figures = Figures(name)
    lines = srv.log().count("\n")
    stop = threading.Event()
    user = threading.Thread(target=_user_loop, args=(srv.port, stop, figures))
    with attack(stop, figures):
        probe.counts()  # count from the moment the attack is under way
        user.start()
        end = time.monotonic() + PHASE_S
        while time.monotonic() < end:
            figures.rss_mib.append(rss_mib(srv.proc.pid))
            time.sleep(0.25)
        figures.blocks, figures.lost = probe.counts()
        stop.set()
    user.join()
    figures.log_lines = srv.log().count("\n") - lines
    return figures


@contextlib.contextmanager
def _threads(targets: list[Callable[[], None]], stop: threading.Event) -> Iterator[None]:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(10)


def main() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    with running_server(password=True) as srv:
        assert srv.proc is not None
        resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (SYSTEMD_NOFILE, SYSTEMD_NOFILE))
        probe = AudioProbe(srv)
        try:
            time.sleep(span(2.0, smoke=1.0))  # the probe connects and audio flows
            tally: list[int] = []
            port = srv.port

            def big_bodies(stop: threading.Event, _f: Figures) -> contextlib.AbstractContextManager[None]:
                return _threads([functools.partial(_big_body, port, stop, i) for i in range(4)], stop)

            def login_flood(stop: threading.Event, _f: Figures) -> contextlib.AbstractContextManager[None]:
                return _threads([functools.partial(_guesser, port, stop, i, tally) for i in range(4)], stop)

            phases: list[tuple[str, Attack]] = [
                ("idle", lambda _stop, _f: contextlib.nullcontext()),
                ("slowloris", lambda stop, f: _slowloris(port, stop, f)),
                ("big bodies", big_bodies),
                ("login flood", login_flood),
            ]
            print(f"{PHASE_S:.0f} s per phase, a real user every {USER_EVERY_S} s", flush=True)
            print(HEADER, flush=True)
            for name, attack in phases:
                figures = _phase(srv, probe, name, attack)
                if name == "login flood":
                    figures.note = (
                        f"{tally.count(403)} passwords checked, {tally.count(429)} refused "
                        f"({tally.count(403) / PHASE_S:.1f} checks/s)"
                    )
                print(figures.row(), flush=True)
            rebind = Figures("rebinding")
            _rebind(srv.port, rebind)
            print(f"{'rebinding':<12} {rebind.note}", flush=True)
        finally:
            probe.close()


if __name__ == "__main__":
    main()
