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
import json
import logging
import re
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from appliance.sessions.sap import SapAnnouncer
from appliance.sessions.streaming import StreamError, StreamManager
from appliance.storage import atomic_write_text
from rtai.sdp import StreamDescription

log = logging.getLogger(__name__)

FILE_NAME = "standing.json"
MAX_STANDING = 8
MAX_CHANNELS = 256
RESOLVE_RETRY_S = 30.0
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_HOST = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class StandingError(ValueError):
    """A standing stream setting the device does not accept; the message says what is allowed."""


@dataclass(frozen=True, slots=True)
class StandingStream:
    """One standing stream as the admin configured it."""

    name: str
    """Lower-case letters, digits and inner hyphens, up to 32 (the SAP session is ``NAME on HOST``)."""
    host: str
    """A multicast group, or the unicast host name or address the admin typed."""
    port: int
    """UDP port for RTP (RTCP goes to port + 1)."""
    channels: tuple[int, ...] = ()
    """0-based device channels; empty: all of them."""

    @property
    def multicast(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_multicast
        except ValueError:
            return False

    def text(self) -> str:
        """The ``NAME ADDRESS:PORT [CHANNELS]`` form (channels counted from 1)."""
        out = f"{self.name} {self.host}:{self.port}"
        return out + (" " + ",".join(str(c + 1) for c in self.channels) if self.channels else "")


def parse_standing(text: str) -> StandingStream:
    """Read ``NAME ADDRESS:PORT [CHANNELS]``; StandingError naming what is wrong."""
    parts = text.split()
    if len(parts) not in (2, 3):
        raise StandingError(
            f"{text[:80]!r} is not 'NAME ADDRESS:PORT [CHANNELS]', e.g. 'lab 239.255.7.1:5004 1-4'"
        )
    name, where = parts[0].lower(), parts[1]
    if not _NAME.match(name):
        raise StandingError(f"stream name {parts[0]!r}: use 1 to 32 letters, digits and inner hyphens")
    host, sep, port_text = where.rpartition(":")
    if not sep or not port_text.isdigit() or not 1 <= int(port_text) <= 65534:
        raise StandingError(f"{where!r} needs a port from 1 to 65534 after ':', e.g. 239.255.7.1:5004")
    return StandingStream(
        name, _check_host(host.lower()), int(port_text), _channels(parts[2] if len(parts) == 3 else "")
    )


def _check_host(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _HOST.match(host):
            raise StandingError(f"{host!r} is neither an IP address nor a host name") from None
        return host
    if address.version != 4 or address.is_unspecified or str(address) == "255.255.255.255":
        raise StandingError(
            f"{host} cannot receive a stream; give a multicast group or a host's IPv4 address"
        )
    if address.is_multicast and address in ipaddress.ip_network("224.0.0.0/24"):
        raise StandingError(f"{host} is reserved for local network control; use a group in 239.255.0.0/16")
    return host


def _channels(text: str) -> tuple[int, ...]:
    out: list[int] = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()) or int(low) < 1 or int(high or low) < int(low):
            raise StandingError(
                f"channels {text!r}: {part!r} is not a channel or range counted from 1, like 1-4,7"
            )
        out.extend(range(int(low) - 1, int(high or low)))
    if len(out) > MAX_CHANNELS or len(set(out)) != len(out):
        raise StandingError(f"channels {text!r} name a channel twice or more than {MAX_CHANNELS} channels")
    return tuple(out)


def load(data_dir: Path) -> list[StandingStream]:
    """The configured standing streams (none when the file is missing or unreadable, logged)."""
    path = data_dir / FILE_NAME
    try:
        raw = json.loads(path.read_text())
        streams = [StandingStream(s["name"], s["host"], int(s["port"]), tuple(s["channels"])) for s in raw]
        return check_all(streams)
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return []


def save(data_dir: Path, streams: list[StandingStream]) -> None:
    """Keep ``streams`` (checked) for this and later starts."""
    check_all(streams)
    atomic_write_text(data_dir / FILE_NAME, json.dumps([asdict(s) for s in streams], indent=1) + "\n")


def add_from_boot(data_dir: Path, lines: list[str]) -> None:
    """Add the boot file's ``STREAM=`` lines to the saved streams (a name given again is replaced)."""
    new = [parse_standing(line) for line in lines]
    kept = [s for s in load(data_dir) if s.name not in {n.name for n in new}]
    try:
        save(data_dir, kept + new)
    except StandingError as exc:
        raise OSError(str(exc)) from None  # firstboot reports it against the line
    log.info("standing streams from the boot file: %s", ", ".join(s.text() for s in new))


def check_all(streams: list[StandingStream]) -> list[StandingStream]:
    """The list, if its names are distinct and it is not too long; else StandingError."""
    if len(streams) > MAX_STANDING:
        raise StandingError(
            f"{len(streams)} standing streams are too many; the device sends at most {MAX_STANDING}"
        )
    names = [s.name for s in streams]
    if len(set(names)) != len(names):
        raise StandingError(f"stream names must differ: {', '.join(names)}")
    return [parse_standing(s.text()) for s in streams]  # the same checks as typed text


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
