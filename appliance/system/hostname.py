"""Claiming a unique host name over mDNS: probing, tie-breaking, defending (RFC 6762 sections 8-9).

python-zeroconf probes the names of services but answers for a host name
(the SRV target, ``NAME.local``) without probing it first, so devices flashed
from one image and powered together would all answer as the same name.
:class:`HostClaim` does the host name's part, on its own socket bound to the
mDNS port next to zeroconf's (every socket on the port gets each multicast
datagram) and with zeroconf's packet classes:

- **probe**: three queries for ``NAME.local`` (type ANY) carrying the A
  records we propose in the authority section, 250 ms apart; a response
  holding an address record for the name that is not ours means it is taken.
- **tie-break** (section 8.2): another host probing for the same name at the
  same time sends its own proposal; both compare the record sets
  (class, type, rdata, sorted) and the lexicographically earlier one waits a
  second and probes again, by which time the winner answers for the name.
- **defend and watch** (section 9): once claimed, queries for the name are
  answered with our records, and a response from another host claiming the
  name later (two networks joined) is reported to ``on_conflict``.

The chosen name is kept in the data directory (:func:`load_chosen`,
:func:`save_chosen`) so a device renamed once keeps its name after a reboot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from zeroconf._dns import DNSAddress, DNSQuestion
from zeroconf._protocol.incoming import DNSIncoming
from zeroconf._protocol.outgoing import DNSOutgoing
from zeroconf.const import (
    _CLASS_IN,
    _DNS_HOST_TTL,
    _FLAGS_AA,
    _FLAGS_QR_QUERY,
    _FLAGS_QR_RESPONSE,
    _MDNS_ADDR,
    _MDNS_PORT,
    _TYPE_A,
    _TYPE_AAAA,
    _TYPE_ANY,
)

from appliance.storage import atomic_write_text
from appliance.system.ratelog import RateLimitedLog

log = logging.getLogger(__name__)
_bad_input = RateLimitedLog(log)

# Timing constants (RFC 6762 section 8.1), in one place so tests can shorten them.
PROBE_WAIT_MS = 250
"""Longest random wait before the first probe, so devices powered together spread out."""
PROBE_INTERVAL_MS = 250
"""Between probes, and after the last one before the name is ours."""
PROBE_COUNT = 3
TIEBREAK_DEFER_S = 1.0
"""How long the loser of a simultaneous probe waits before probing again (section 8.2)."""
MAX_TIEBREAK_LOSSES = 10
"""Lost this often in a row: treat the name as taken and move on to the next one."""
MAX_DATAGRAM = 9000
"""Largest mDNS datagram read (RFC 6762 section 17)."""

STATE_FILE = "hostname.json"
"""In the data directory: the name asked for and the name the device settled on."""

# What a datagram from the LAN may raise while being decoded; caught in one place.
_DECODE_ERRORS = (ValueError, IndexError, UnicodeDecodeError, OSError)

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

RecordKey = tuple[int, int, bytes]
"""(class, type, rdata) of one record: what section 8.2 compares."""


@dataclass(slots=True)
class _Probe:
    """One name being probed for and how that is going."""

    fqdn: str
    ours: list[RecordKey]
    outcome: asyncio.Future[str]
    """Set to ``"lost"`` (tie-break) or the other host's addresses (taken)."""


class HostClaim:
    """Probes for, then defends, one host name on the addresses given."""

    def __init__(
        self, addresses: Sequence[str], on_conflict: Callable[[str, str], None] | None = None
    ) -> None:
        self.addresses = tuple(addresses)
        self.on_conflict = on_conflict
        """Called with (name, other host's addresses) when a claimed name is answered by another."""
        self.claimed: str | None = None
        """The name held (without ``.local``), once a probe found it free."""
        self._ours = sorted((_CLASS_IN, _TYPE_A, socket.inet_aton(a)) for a in self.addresses)
        self._probe: _Probe | None = None
        self._sock = _open_socket(self.addresses)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._readable)

    def close(self) -> None:
        """Stop listening (the zeroconf announcer says goodbye for the records)."""
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        self.claimed = None

    async def probe(self, name: str) -> str | None:
        """Probe for ``name``; None when it is free (and now claimed), else who answers for it."""
        self.claimed = None
        for _ in range(MAX_TIEBREAK_LOSSES):
            outcome = await self._probe_once(name)
            if outcome is None:
                self.claimed = name
                return None
            if outcome != "lost":
                return outcome
            log.info("another device probes for %s.local at the same time and wins; waiting", name)
            await asyncio.sleep(TIEBREAK_DEFER_S)
        return "devices that keep probing for it"

    async def _probe_once(self, name: str) -> str | None:
        probe = _Probe(f"{name}.local.", self._ours, self._loop.create_future())
        self._probe = probe
        try:
            await asyncio.sleep(random.uniform(0, PROBE_WAIT_MS) / 1000)
            for _ in range(PROBE_COUNT):
                self._send(self._probe_packet(probe.fqdn))
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(probe.outcome), PROBE_INTERVAL_MS / 1000)
            return None
        finally:
            self._probe = None

    # -- packets ------------------------------------------------------------

    def _records(self, fqdn: str, *, unique: bool) -> list[DNSAddress]:
        cls = _CLASS_IN | (0x8000 if unique else 0)  # the cache-flush bit of section 10.2
        return [DNSAddress(fqdn, _TYPE_A, cls, _DNS_HOST_TTL, socket.inet_aton(a)) for a in self.addresses]

    def _probe_packet(self, fqdn: str) -> DNSOutgoing:
        out = DNSOutgoing(_FLAGS_QR_QUERY)
        out.add_question(DNSQuestion(fqdn, _TYPE_ANY, _CLASS_IN))
        for record in self._records(fqdn, unique=False):
            # add_authorative_answer() is typed for pointers (what zeroconf probes
            # with); the list it fills writes any record.
            out.authorities.append(record)  # type: ignore[arg-type]
        return out

    def _defence_packet(self, fqdn: str) -> DNSOutgoing:
        out = DNSOutgoing(_FLAGS_QR_RESPONSE | _FLAGS_AA)
        for record in self._records(fqdn, unique=True):
            out.add_answer_at_time(record, 0)
        return out

    def _send(self, out: DNSOutgoing) -> None:
        # One copy out of each interface: the LAN of each address hears it.
        for address in self.addresses:
            try:
                self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
                for packet in out.packets():
                    self._sock.sendto(packet, (_MDNS_ADDR, _MDNS_PORT))
            except OSError as exc:
                log.debug("mDNS packet on %s not sent: %s", address, exc)

    def _readable(self) -> None:
        for _ in range(64):  # bounded: a flood cannot keep the loop here
            try:
                data, (ip, port, *_) = self._sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("mDNS socket: %s", exc)
                return
            try:
                msg = DNSIncoming(data, (ip, port))
            except _DECODE_ERRORS as exc:
                _bad_input.warning(ip, "mDNS datagram not understood: %s", exc)
                continue
            if msg.valid:
                self._handle(msg, ip)

    def _handle(self, msg: DNSIncoming, ip: str) -> None:
        if msg.is_query():
            self._handle_query(msg)
        else:
            self._handle_response(msg, ip)

    def _handle_query(self, msg: DNSIncoming) -> None:
        probe = self._probe
        if probe is not None and msg.is_probe() and not probe.outcome.done():
            theirs = sorted(_key(r) for r in msg.answers() if r.name.lower() == probe.fqdn)
            # Equal sets are our own probe looped back (or a host with our very records).
            if theirs and theirs != probe.ours and probe.ours < theirs:
                probe.outcome.set_result("lost")
        if self.claimed is not None:
            fqdn = f"{self.claimed}.local."
            if any(q.name.lower() == fqdn and q.type in (_TYPE_A, _TYPE_ANY) for q in msg.questions):
                self._send(self._defence_packet(fqdn))

    def _handle_response(self, msg: DNSIncoming, ip: str) -> None:
        for record in msg.answers():
            other = _other_address(record, self.addresses)
            if other is None:
                continue
            name = record.name.lower()
            probe = self._probe
            if probe is not None and name == probe.fqdn and not probe.outcome.done():
                probe.outcome.set_result(other)
            elif self.claimed is not None and name == f"{self.claimed}.local.":
                log.warning("%s (%s) answers for %s.local too", ip, other, self.claimed)
                if self.on_conflict is not None:
                    self.on_conflict(self.claimed, other)
                return


def _key(record: object) -> RecordKey:
    if isinstance(record, DNSAddress):
        return (record.class_, record.type, record.address)
    return (getattr(record, "class_", 0), getattr(record, "type", 0), b"")


def _other_address(record: object, ours: Sequence[str]) -> str | None:
    """The address of a live A/AAAA record that is not one of ours, else None."""
    if not isinstance(record, DNSAddress) or record.ttl == 0 or record.type not in (_TYPE_A, _TYPE_AAAA):
        return None
    family = socket.AF_INET if record.type == _TYPE_A else socket.AF_INET6
    try:
        address = socket.inet_ntop(family, record.address)
    except (ValueError, OSError):
        return None
    return None if address in ours else address


def _open_socket(addresses: Sequence[str]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        sock.bind(("", _MDNS_PORT))
        for address in addresses:
            group = socket.inet_aton(_MDNS_ADDR) + socket.inet_aton(address)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def load_chosen(data_dir: Path | None, requested: str) -> str:
    """The name this device settled on earlier for ``requested``; ``requested`` when none."""
    if data_dir is None:
        return requested
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return requested
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", data_dir / STATE_FILE, exc)
        return requested
    if not isinstance(state, dict) or state.get("requested") != requested:
        return requested  # the admin asked for another name since
    chosen = state.get("name")
    if not isinstance(chosen, str) or not _LABEL.fullmatch(chosen):
        return requested  # the admin asked for another name since
    return chosen


def save_chosen(data_dir: Path | None, requested: str, name: str) -> None:
    """Keep ``name`` as the device's name for ``requested`` across restarts."""
    if data_dir is None:
        return
    try:
        atomic_write_text(data_dir / STATE_FILE, json.dumps({"requested": requested, "name": name}) + "\n")
    except OSError as exc:
        log.warning("could not keep the host name %s in %s: %s", name, data_dir / STATE_FILE, exc)
