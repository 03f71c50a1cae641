"""Fetching the device's audio ring: its file descriptor, over a Unix socket, with a key.

A script on the device says ``ring: true`` in its hello; the welcome then
names a Unix socket and a key (``docs/protocol.md``, "The audio ring").  The
script sends the key as one line and gets back one JSON line with the ring's
sealed ``memfd`` attached (``SCM_RIGHTS``), or ``{"error": ...}`` in words.
Set ``BI_RING=0`` to have audio over the WebSocket even on the device.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any

from browserinterface import ring as R
from browserinterface._locate import Target

SOCKET_TIMEOUT_S = 2.0
#: Tries while the device has captured no block yet, and the wait between them.
RETRIES, RETRY_S = 20, 0.1
MAX_ANSWER = 4096
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def wants_ring(target: Target) -> bool:
    """Whether to ask for the ring: the device is this machine, which can map it."""
    if os.environ.get("BI_RING", "1") == "0" or not R.available():
        return False
    return target.local or target.address.host in LOOPBACK


def _fetch_once(offer: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(SOCKET_TIMEOUT_S)
        sock.connect(offer["socket"])
        sock.sendall(offer["key"].encode("ascii") + b"\n")
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_ANSWER, 1)
    fd = fds[0] if fds else None
    try:
        answer = json.loads(data)
        if not isinstance(answer, dict):
            raise ValueError("the ring socket's answer is not a JSON object")
    except ValueError:
        if fd is not None:
            os.close(fd)
        raise
    return answer, fd


async def fetch_ring(offer: dict[str, Any]) -> R.RingReader:
    """Map the ring the welcome offered; raises OSError or ValueError saying why not."""
    for _ in range(RETRIES):
        answer, fd = _fetch_once(offer)
        if fd is not None and answer.get("ok"):
            return R.RingReader(fd)
        if fd is not None:
            os.close(fd)
        if not answer.get("retry"):
            raise R.RingError(str(answer.get("error", "the device sent no ring")))
        await asyncio.sleep(RETRY_S)
    raise R.RingError("the device has captured nothing yet")
