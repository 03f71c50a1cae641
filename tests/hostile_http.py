"""Raw HTTP from chosen loopback addresses, for the attack tests.

Every address of 127.0.0.0/8 is this machine's own, so a test can play many
LAN peers (one per address) without sending a packet anywhere else.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import ssl
import urllib.parse
from dataclasses import dataclass, field


def peer(n: int) -> str:
    """The ``n``-th fake peer address (127.0.1.1, 127.0.1.2, ...), never 127.0.0.1."""
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return ""


@dataclass
class Client:
    """One peer: its own source address and cookie jar (the XSRF cookie is all it needs)."""

    port: int
    source: str = "127.0.0.1"
    host: str | None = None
    tls: ssl.SSLContext | None = None
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 20.0,
    ) -> Reply:
        conn: http.client.HTTPConnection
        if self.tls is not None:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=timeout, source_address=(self.source, 0), context=self.tls
            )
        else:
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=timeout, source_address=(self.source, 0)
            )
        hdrs = {"Host": self.host or f"127.0.0.1:{self.port}", **(headers or {})}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            # Refused before its body was read (the point of a limit): the answer is there.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            reply = Reply(resp.status, dict(resp.getheaders()), data)
        finally:
            conn.close()
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                match = re.match(r"([^=;]+)=([^;]*)", value)
                if match:
                    self.cookies[match.group(1)] = match.group(2)
        return reply

    def form(self, path: str, fields: dict[str, str]) -> Reply:
        """POST a form with the XSRF token (a random one, sent as cookie and field alike)."""
        token = self.cookies.setdefault("_xsrf", os.urandom(16).hex())
        body = urllib.parse.urlencode({**fields, "_xsrf": token}).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})


def half_sent(port: int, source: str, host: str = "127.0.0.1", timeout: float = 2.0) -> socket.socket:
    """A connection that sent a request line and one header, and never the blank line."""
    sock = socket.socket()
    sock.settimeout(timeout)  # a server that stopped accepting leaves connect() hanging
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n".encode())
    sock.settimeout(None)  # blocking again, so MSG_DONTWAIT peeks answer at once
    return sock


def closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def open_files(pid: int) -> int:
    """How many file descriptors a process holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mib(pid: int) -> float:
    """A process's resident memory in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")
