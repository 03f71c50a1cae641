"""RTCP sender reports (RFC 3550 section 6.4.1) and the CNAME that goes with them.

A sender report pairs the device's wall clock (as NTP time) with the RTP
timestamp of the same instant, so a receiver can tell when each frame was
captured: that gives it the latency and, over a long run, the drift between
the device's sound clock and its own.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTCP_VERSION = 2
RTCP_HEADER = struct.Struct("!BBH")
RTCP_HEADER_SIZE = RTCP_HEADER.size  # 4 bytes
SENDER_INFO = struct.Struct("!IIIIII")  # SSRC, NTP seconds, NTP fraction, RTP ts, packets, octets
SR_SIZE = RTCP_HEADER_SIZE + SENDER_INFO.size  # 28 bytes without report blocks
REPORT_BLOCK_SIZE = 24
PT_SENDER_REPORT = 200
PT_SDES = 202
PT_BYE = 203
SDES_CNAME = 1
NTP_EPOCH_OFFSET = 2208988800
"""Seconds from 1900-01-01 (NTP's epoch) to 1970-01-01 (Unix time's)."""


def unix_to_ntp(seconds: float) -> int:
    """A 64-bit NTP timestamp (32.32 fixed point) for a Unix time."""
    return round((seconds + NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def ntp_to_unix(ntp: int) -> float:
    """The Unix time of a 64-bit NTP timestamp."""
    return ntp / (1 << 32) - NTP_EPOCH_OFFSET


@dataclass(frozen=True, slots=True)
class SenderReport:
    """The sender information of an RTCP SR packet (report blocks are ignored)."""

    ssrc: int
    ntp_time: int
    """64-bit NTP timestamp of the device's wall clock."""
    rtp_timestamp: int
    """RTP timestamp of the frame captured at ``ntp_time``."""
    packet_count: int
    octet_count: int

    @property
    def unix_time(self) -> float:
        return ntp_to_unix(self.ntp_time)

    @classmethod
    def parse(cls, data: bytes) -> SenderReport:
        """Find and decode the SR in a compound RTCP packet; ValueError naming the field."""
        offset = 0
        while offset + RTCP_HEADER_SIZE <= len(data):
            first, packet_type, words = RTCP_HEADER.unpack_from(data, offset)
            if first >> 6 != RTCP_VERSION:
                raise ValueError(f"RTCP version {first >> 6} is not supported; expected {RTCP_VERSION}")
            size = 4 * (words + 1)
            if offset + size > len(data):
                raise ValueError(f"RTCP length {words} words runs past the datagram end")
            if packet_type == PT_SENDER_REPORT:
                if size < SR_SIZE:
                    raise ValueError(f"RTCP sender report length {size} is under {SR_SIZE} bytes")
                ssrc, hi, lo, ts, packets, octets = SENDER_INFO.unpack_from(data, offset + RTCP_HEADER_SIZE)
                return cls(ssrc, (hi << 32) | lo, ts, packets, octets)
            offset += size
        raise ValueError(f"RTCP datagram of {len(data)} bytes holds no sender report")

    def serialize(self, cname: str = "") -> bytes:
        """The SR, followed by an SDES CNAME chunk when ``cname`` is given."""
        header = RTCP_HEADER.pack(RTCP_VERSION << 6, PT_SENDER_REPORT, SR_SIZE // 4 - 1)
        info = SENDER_INFO.pack(
            self.ssrc,
            self.ntp_time >> 32,
            self.ntp_time & 0xFFFFFFFF,
            self.rtp_timestamp & 0xFFFFFFFF,
            self.packet_count & 0xFFFFFFFF,
            self.octet_count & 0xFFFFFFFF,
        )
        return header + info + (_sdes_cname(self.ssrc, cname) if cname else b"")


def _sdes_cname(ssrc: int, cname: str) -> bytes:
    text = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc, SDES_CNAME, len(text)) + text + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    header = RTCP_HEADER.pack((RTCP_VERSION << 6) | 1, PT_SDES, (len(chunk) + 4) // 4 - 1)
    return header + chunk


@dataclass(frozen=True, slots=True)
class Bye:
    """An RTCP BYE (RFC 3550 section 6.6): these sources have ended, and why."""

    ssrcs: tuple[int, ...]
    reason: str = ""

    @classmethod
    def find(cls, data: bytes) -> Bye | None:
        """The BYE in a compound RTCP packet, or None; ValueError naming a bad field."""
        offset = 0
        while offset + RTCP_HEADER_SIZE <= len(data):
            first, packet_type, words = RTCP_HEADER.unpack_from(data, offset)
            size = 4 * (words + 1)
            if offset + size > len(data):
                raise ValueError(f"RTCP length {words} words runs past the datagram end")
            if packet_type == PT_BYE:
                count = first & 0x1F
                end = offset + RTCP_HEADER_SIZE + 4 * count
                if end > offset + size:
                    raise ValueError(f"RTCP BYE of {size} bytes cannot hold {count} sources")
                ssrcs = struct.unpack_from(f"!{count}I", data, offset + RTCP_HEADER_SIZE)
                reason = ""
                if end < offset + size:
                    length = data[end]
                    reason = data[end + 1 : min(end + 1 + length, offset + size)].decode("utf-8", "replace")
                return cls(tuple(ssrcs), reason)
            offset += size
        return None

    def serialize(self) -> bytes:
        """The BYE packet, the reason padded to a 32-bit boundary."""
        body = b"".join(struct.pack("!I", s) for s in self.ssrcs)
        if self.reason:
            text = self.reason.encode()[:255]
            body += bytes([len(text)]) + text
            body += b"\x00" * (-len(body) % 4)
        header = RTCP_HEADER.pack((RTCP_VERSION << 6) | len(self.ssrcs), PT_BYE, len(body) // 4)
        return header + body
