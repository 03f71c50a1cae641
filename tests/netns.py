"""Test hosts in network namespaces: a LAN that exists only for one test.

Each host is a namespace with ``lo`` and ``eth0``; ``eth0`` is one end of a
veth pair. Two hosts are joined directly (:func:`veth_pair`), more through a
bridge in a namespace of its own (:func:`lan`). Nothing is created in the
root namespace, so no test traffic can leave the machine, and everything is
removed when the context exits, processes first.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUBNET = "10.231.0"
#: Namespaces are named ``mtns-<pid>-<n>-h<i>``: the pid tells whether their owner still runs.
NS_PREFIX = "mtns-"
PREFIX_LEN = 24
_counter = itertools.count()


def available() -> bool:
    """True when this process may create namespaces (root and ``ip`` present)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


requires_netns = pytest.mark.skipif(not available(), reason="needs root and ip netns")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass
class Host:
    """One namespace on the test LAN."""

    ns: str
    address: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def run(self, argv: Sequence[str], timeout: float = 60, **kw: object) -> str:
        """Run a command inside the namespace to completion; returns its stdout."""
        proc = subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kw,  # type: ignore[call-overload]
        )
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} in {self.ns} exited {proc.returncode}:\n{proc.stderr}")
        return str(proc.stdout)

    def spawn(self, argv: Sequence[str], **kw: object) -> subprocess.Popen[str]:
        """Start a long-running command inside the namespace; stopped when the LAN goes."""
        proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", self.ns, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            **kw,
        )
        self.procs.append(proc)
        return proc

    def add_address(self) -> None:
        """Give ``eth0`` its address (for hosts made with ``address_now=False``)."""
        _ip("-n", self.ns, "addr", "add", f"{self.address}/{PREFIX_LEN}", "dev", "eth0")
        _ip("-n", self.ns, "route", "add", "224.0.0.0/4", "dev", "eth0")

    def change_address(self, new: str) -> None:
        """Move ``eth0`` to another address (a new DHCP lease: the old one goes first)."""
        _ip("-n", self.ns, "addr", "del", f"{self.address}/{PREFIX_LEN}", "dev", "eth0")
        self.address = new
        _ip("-n", self.ns, "addr", "add", f"{new}/{PREFIX_LEN}", "dev", "eth0")
        _ip("-n", self.ns, "route", "replace", "224.0.0.0/4", "dev", "eth0")

    def stop_all(self) -> None:
        """Interrupt, then kill, every process spawned here."""
        for proc in self.procs:
            stop(proc)
        self.procs.clear()


def stop(proc: subprocess.Popen[str], grace_s: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL after ``grace_s``; always reaps."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace_s)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            _pending.pop(pipe.fileno(), None)
            pipe.close()


def sweep_stale() -> None:
    """Delete test namespaces left by a test process that was killed before its cleanup."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(rf"{NS_PREFIX}(\d+)-\d+-(h\d+|br)", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def _host_ns(prefix: str, index: int) -> tuple[str, str]:
    return f"{prefix}-h{index}", f"{SUBNET}.{index + 1}"


def _bring_up(ns: str, address: str | None) -> None:
    _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", ns, "link", "set", "eth0", "multicast", "on", "up")
    if address is not None:
        _ip("-n", ns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", "eth0")
        _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")


@contextlib.contextmanager
def lan(n_hosts: int, address_now: Sequence[bool] | None = None) -> Iterator[list[Host]]:
    """``n_hosts`` namespaces on one Ethernet segment (a bridge); host i has 10.231.0.(i+1).

    ``address_now[i] = False`` leaves host i without an address until
    ``Host.add_address()`` (a network that comes up late).
    """
    sweep_stale()
    prefix = f"{NS_PREFIX}{os.getpid()}-{next(_counter)}"
    flags = list(address_now) if address_now is not None else [True] * n_hosts
    hosts: list[Host] = []
    made: list[str] = []
    try:
        bridge_ns = f"{prefix}-br"
        if n_hosts > 2:
            _ip("netns", "add", bridge_ns)
            made.append(bridge_ns)
            _ip("-n", bridge_ns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
            _ip("-n", bridge_ns, "link", "set", "br0", "up")
        for i in range(n_hosts):
            ns, address = _host_ns(prefix, i)
            _ip("netns", "add", ns)
            made.append(ns)
            hosts.append(Host(ns, address))
        if n_hosts == 2:
            a, b = hosts
            _ip("-n", a.ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
                "netns", b.ns)  # fmt: skip
        else:
            for i, host in enumerate(hosts):
                port = f"p{i}"
                _ip("-n", host.ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                    "netns", bridge_ns)  # fmt: skip
                _ip("-n", bridge_ns, "link", "set", port, "master", "br0", "up")
        for host, now in zip(hosts, flags, strict=True):
            _bring_up(host.ns, host.address if now else None)
        yield hosts
    finally:
        for host in hosts:
            host.stop_all()
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@contextlib.contextmanager
def veth_pair() -> Iterator[tuple[Host, Host]]:
    """Two namespaces joined by one veth pair: 10.231.0.1 and 10.231.0.2."""
    with lan(2) as (a, b):
        yield a, b


def wait_for_line(proc: subprocess.Popen[str], needle: str, deadline_s: float = 20.0) -> str:
    """Read ``proc``'s stderr until a line contains ``needle``; returns that line.

    Reads the raw descriptor with ``select`` so a silent process cannot
    outlive the deadline.
    """
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    buffers = _pending.setdefault(fd, [b""])
    end = time.monotonic() + deadline_s
    seen: list[str] = []
    while True:
        while b"\n" in buffers[0]:
            raw, buffers[0] = buffers[0].split(b"\n", 1)
            line = raw.decode(errors="replace")
            seen.append(line)
            if needle in line:
                return line
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no line with {needle!r} in {deadline_s} s:\n" + "\n".join(seen))
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"process ended before {needle!r}:\n" + "\n".join(seen))
            buffers[0] += chunk


# Bytes read past the last returned line, per descriptor.
_pending: dict[int, list[bytes]] = {}
