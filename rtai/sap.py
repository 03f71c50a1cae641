"""SAP (RFC 2974): SDP announcements on a well-known multicast group.

A device announces each standing stream (``appliance.sessions.sap``) and
receivers on the LAN discover it with no address typed: VLC's SAP discovery,
PipeWire's RTP-SAP module, ``rtai sap`` and ``rtai listen sap:NAME``. One
packet is a small header (version 1, the announcement or deletion flag, a
16-bit message hash that changes with the session's description, the
originating address), the payload type ``application/sdp`` and the SDP text.

Datagrams are untrusted: :meth:`SapPacket.parse` raises ValueError naming
the field, and callers log and drop such a packet.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

SAP_PORT = 9875
SAP_GROUP_GLOBAL = "224.2.127.254"
"""Where sessions of global scope are announced (RFC 2974 section 3)."""
SAP_GROUP_ADMIN = "239.255.255.255"
"""Where sessions in the administratively scoped 239.255.0.0/16 are announced (the highest address)."""
SAP_VERSION = 1
PAYLOAD_TYPE = b"application/sdp"
MAX_SAP_BYTES = 65507
_HEADER = struct.Struct("!BBH")
_FLAG_IPV6 = 0x10
_FLAG_DELETE = 0x04
_FLAG_ENCRYPTED = 0x02
_FLAG_COMPRESSED = 0x01


def sap_group(session_address: str) -> str:
    """The SAP group on which a session at ``session_address`` is announced."""
    address = ipaddress.ip_address(session_address)
    if address in ipaddress.ip_network("239.255.0.0/16"):
        return SAP_GROUP_ADMIN
    return SAP_GROUP_GLOBAL


@dataclass(frozen=True, slots=True)
class SapPacket:
    """One SAP announcement (or deletion) carrying an SDP description."""

    msg_hash: int
    origin: str
    """The announcing host's address."""
    sdp: str
    deletion: bool = False

    @classmethod
    def parse(cls, data: bytes) -> SapPacket:
        """Decode one datagram; ValueError naming the field that is wrong."""
        if len(data) > MAX_SAP_BYTES:
            raise ValueError(f"SAP datagram of {len(data)} bytes is over {MAX_SAP_BYTES}")
        if len(data) < _HEADER.size + 4:
            raise ValueError(f"SAP datagram of {len(data)} bytes is shorter than its header")
        flags, auth_words, msg_hash = _HEADER.unpack_from(data)
        if flags >> 5 != SAP_VERSION:
            raise ValueError(f"SAP version {flags >> 5} is not supported; expected {SAP_VERSION}")
        if flags & (_FLAG_ENCRYPTED | _FLAG_COMPRESSED):
            raise ValueError("encrypted or compressed SAP payloads are not supported")
        size = 16 if flags & _FLAG_IPV6 else 4
        offset = _HEADER.size + size + 4 * auth_words
        if offset > len(data):
            raise ValueError("SAP authentication data runs past the datagram end")
        family = socket.AF_INET6 if size == 16 else socket.AF_INET
        origin = socket.inet_ntop(family, data[_HEADER.size : _HEADER.size + size])
        payload = data[offset:]
        if not payload.startswith(b"v=0"):
            kind, nul, payload = payload.partition(b"\x00")
            if not nul or kind.strip().lower() != PAYLOAD_TYPE:
                raise ValueError(f"SAP payload type {kind[:40]!r} is not {PAYLOAD_TYPE.decode()}")
        try:
            sdp = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"SAP payload is not UTF-8 text: {exc}") from None
        return cls(msg_hash, origin, sdp, bool(flags & _FLAG_DELETE))

    def serialize(self) -> bytes:
        """The datagram (IPv4 origin, no authentication, payload type given)."""
        flags = (SAP_VERSION << 5) | (_FLAG_DELETE if self.deletion else 0)
        header = _HEADER.pack(flags, 0, self.msg_hash & 0xFFFF) + socket.inet_aton(self.origin)
        return header + PAYLOAD_TYPE + b"\x00" + self.sdp.encode()


def open_listener(groups: tuple[str, ...] = (SAP_GROUP_GLOBAL, SAP_GROUP_ADMIN)) -> socket.socket:
    """A non-blocking socket that hears SAP announcements on ``groups``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("", SAP_PORT))
        for group in groups:
            sock.setsockopt(
                socket.IPPROTO_IP,
                socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton(group) + socket.inet_aton("0.0.0.0"),
            )
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
