"""Standing streams: RTP the admin configured, running with no listener renewing them.

Each has a name, a destination (a multicast group, or a unicast host the
admin typed, by name or address) with a port, and the channels to send. They
are kept in ``standing.json`` in the data directory (Settings writes it; so
does the boot file's ``STREAM=`` line on first boot), start with the service,
survive restarts, and are announced with SAP (``appliance.sessions.sap``).

A unicast destination is only ever one the admin typed: nothing a network
peer sends can add or change one. A host name is resolved when the stream
starts; one that does not resolve is logged and tried again every
:data:`RESOLVE_RETRY_S`.

The text form (boot file, Settings) is ``NAME ADDRESS:PORT [CHANNELS]``, for
example ``lab 239.255.7.1:5004 1-4,7``; channels count from 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.sessions.sap import SapAnnouncer
from appliance.sessions.standing_config import (
    FILE_NAME,
    MAX_CHANNELS,
    MAX_STANDING,
    StandingError,
    StandingStream,
    add_from_boot,
    check_all,
    load,
    parse_standing,
    save,
)
from appliance.sessions.streaming import StreamError, StreamManager
from rtai.sdp import StreamDescription

__all__ = [
    "FILE_NAME",
    "MAX_CHANNELS",
    "MAX_STANDING",
    "StandingError",
    "StandingStream",
    "StandingStreams",
    "add_from_boot",
    "check_all",
    "load",
    "parse_standing",
    "save",
]

log = logging.getLogger(__name__)

RESOLVE_RETRY_S = 30.0


class StandingStreams:
    """Runs the configured standing streams on the stream manager and announces them."""

    def __init__(
        self, manager: StreamManager, data_dir: Path, hostname: Callable[[], str], sap: SapAnnouncer
    ) -> None:
        self.manager = manager
        self.data_dir = data_dir
        self.hostname = hostname
        self.sap = sap
        self.streams: list[StandingStream] = []
        self.problems: dict[str, str] = {}
        """Streams that could not start, and why (a name that does not resolve)."""
        self._retry: asyncio.Task[None] | None = None
        manager.on_standing_change = self._changed

    async def start(self) -> None:
        """Start what ``standing.json`` holds and begin announcing."""
        self.sap.start()
        await self.apply(load(self.data_dir))

    async def apply(self, streams: list[StandingStream]) -> None:
        """Replace the running standing streams with ``streams``."""
        for old in self.streams:
            self._stop(old)
        self.streams = list(streams)
        self.problems.clear()
        for stream in self.streams:
            await self._start(stream)
        if self.problems and self._retry is None:
            self._retry = asyncio.get_running_loop().create_task(self._retry_later())

    async def configure(self, streams: list[StandingStream]) -> None:
        """Save ``streams`` for later starts and run them now (Settings)."""
        save(self.data_dir, streams)
        await self.apply(streams)

    async def close(self) -> None:
        """Stop announcing (SAP deletions); the manager's close ends the streams with RTCP BYE."""
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
        await self.sap.close()

    async def _start(self, stream: StandingStream) -> None:
        try:
            address = stream.host if _is_ip(stream.host) else await _resolve(stream.host)
            desc = self.manager.add_standing(stream.name, address, stream.port, list(stream.channels) or None)
        except (OSError, StreamError) as exc:
            self.problems[stream.name] = f"{stream.text()}: {exc}"
            log.warning("standing stream %s does not run: %s", stream.text(), exc)
            return
        self._announce(stream.name, desc)

    def _stop(self, stream: StandingStream) -> None:
        desc = self.manager.standing_description(stream.name)
        self.manager.remove_standing(stream.name)
        if desc is not None:
            self.sap.withdraw(stream.name, desc["address"])

    def _changed(self, name: str, desc: dict[str, Any]) -> None:
        self._announce(name, desc)

    def _announce(self, name: str, desc: dict[str, Any]) -> None:
        described = StreamDescription.from_json({**desc, "name": f"{name} on {self.hostname()}"})
        self.sap.announce(name, described)

    async def _retry_later(self) -> None:
        try:
            while self.problems:
                await asyncio.sleep(RESOLVE_RETRY_S)
                for stream in [s for s in self.streams if s.name in self.problems]:
                    del self.problems[stream.name]
                    await self._start(stream)
        finally:
            self._retry = None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(host: str) -> str:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, None, family=socket.AF_INET, type=socket.SOCK_DGRAM
    )
    if not infos:
        raise OSError(f"{host} has no IPv4 address")
    return str(infos[0][4][0])
