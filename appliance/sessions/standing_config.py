"""Standing streams as the admin configures them: their text form, checks and file.

Kept apart from the running side (:mod:`appliance.sessions.standing`) so the
boot file's reader checks a ``STREAM=`` line without loading the streaming
stack.  The text form (boot file, Settings) is ``NAME ADDRESS:PORT
[CHANNELS]``, for example ``lab 239.255.7.1:5004 1-4,7``; channels count
from 1.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance.storage import atomic_write_text

log = logging.getLogger(__name__)

FILE_NAME = "standing.json"
MAX_STANDING = 8
MAX_CHANNELS = 256
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
