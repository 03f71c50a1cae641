"""Announcing the standing streams with SAP (RFC 2974) so receivers find them.

Every :data:`ANNOUNCE_INTERVAL_S` each announced stream's SDP goes to the
SAP group of its scope (``rtai.sap.sap_group``), once out of each interface
address. A changed description (new SSRC and version after a configuration
change) gets a new message hash, as the RFC asks, and is sent at once; a
stream that stops gets a deletion packet. Packets carry a TTL of 1: the
local network only, like the streams themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import socket

from rtai.sap import SAP_PORT, SapPacket, sap_group
from rtai.sdp import MULTICAST_TTL, StreamDescription

log = logging.getLogger(__name__)

ANNOUNCE_INTERVAL_S = 5.0
"""Seconds between announcements (tests shorten it). VLC and PipeWire forget a session after minutes."""


class SapAnnouncer:
    """Keeps a set of stream descriptions announced until closed."""

    def __init__(self, addresses: tuple[str, ...] = ()) -> None:
        self.addresses = addresses
        """Interface addresses to announce from; empty: let the routing table choose."""
        self._sessions: dict[str, SapPacket] = {}
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, MULTICAST_TTL)
        self._sock.setblocking(False)
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    def start(self) -> None:
        """Announce every interval from now on."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sap")

    def announce(self, name: str, desc: StreamDescription) -> None:
        """Announce (or re-announce, changed) stream ``name`` now and every interval."""
        origin = self._origin(desc.address)
        full = dataclasses.replace(desc, origin=origin)
        sdp = full.to_sdp()
        digest = hashlib.sha256(f"{name}\n{sdp}".encode()).digest()
        packet = SapPacket(int.from_bytes(digest[:2], "big"), origin, sdp)
        self._sessions[name] = packet
        self._send(packet, desc.address)

    def withdraw(self, name: str, address: str) -> None:
        """Send the deletion of stream ``name`` and stop announcing it."""
        packet = self._sessions.pop(name, None)
        if packet is not None:
            self._send(dataclasses.replace(packet, deletion=True), address)

    async def close(self) -> None:
        """Delete every announced session and close the socket."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for name, packet in list(self._sessions.items()):
            self.withdraw(name, _session_address(packet))
        self._sock.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(ANNOUNCE_INTERVAL_S)
            for packet in list(self._sessions.values()):
                self._send(packet, _session_address(packet))

    def _send(self, packet: SapPacket, session_address: str) -> None:
        data = packet.serialize()
        group = sap_group(session_address)
        for address in self.addresses or ("",):
            try:
                if address:
                    self._sock.setsockopt(
                        socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address)
                    )
                self._sock.sendto(data, (group, SAP_PORT))
                self.sent += 1
            except OSError as exc:  # no route yet (network not up): the next interval tries again
                log.debug("SAP announcement to %s from %s: %s", group, address or "default", exc)

    def _origin(self, session_address: str) -> str:
        """This device's address towards the SAP group: the announcement's origin."""
        if self.addresses:
            return self.addresses[0]
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((sap_group(session_address), SAP_PORT))
            return str(probe.getsockname()[0])
        except OSError:
            return "0.0.0.0"
        finally:
            probe.close()


def _session_address(packet: SapPacket) -> str:
    for line in packet.sdp.splitlines():
        if line.startswith("c=IN IP4 "):
            return line.split()[2].split("/")[0]
    return "0.0.0.0"
