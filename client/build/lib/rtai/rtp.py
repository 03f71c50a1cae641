"""RTP version 2 packets (RFC 3550) carrying L16 audio (RFC 3551).

L16 is big-endian signed 16-bit, channels interleaved frame by frame; the
RTP timestamp counts frames at the stream's rate.  A block of audio is split
over as many packets as needed so that no datagram exceeds ``max_payload``
bytes of UDP payload (1472 on a 1500-byte Ethernet MTU).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

RTP_VERSION = 2
RTP_HEADER = struct.Struct("!BBHII")
RTP_HEADER_SIZE = RTP_HEADER.size  # 12 bytes without CSRCs or extension
CSRC_SIZE = 4
EXTENSION_HEADER_SIZE = 4
DEFAULT_PAYLOAD_TYPE = 96
"""The first dynamic payload type; the SDP binds it to L16 at the stream's rate."""
DEFAULT_MAX_PAYLOAD = 1472
"""UDP payload bytes that fit a 1500-byte MTU after the IPv4 and UDP headers."""
MIN_MAX_PAYLOAD = RTP_HEADER_SIZE + 2
MAX_UDP_PAYLOAD = 65507
SAMPLE_BYTES = 2
L16_DTYPE = np.dtype(">i2")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet; ``payload`` excludes padding, CSRCs and header extension."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Decode one datagram; raises ValueError naming the field that is wrong."""
        if len(data) < RTP_HEADER_SIZE:
            raise ValueError(
                f"RTP packet length {len(data)} is shorter than the {RTP_HEADER_SIZE}-byte header"
            )
        first, second, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise ValueError(f"RTP version {version} is not supported; expected {RTP_VERSION}")
        payload_type = second & 0x7F
        if 72 <= payload_type <= 76:
            # RFC 5761: these values on the RTP port are RTCP (SR/RR/SDES/BYE/APP).
            raise ValueError(f"RTP payload type {payload_type} is an RTCP packet type")
        offset = RTP_HEADER_SIZE + CSRC_SIZE * (first & 0x0F)
        end = len(data)
        if offset > end:
            raise ValueError(f"RTP CSRC count {first & 0x0F} runs past the packet end")
        csrc = struct.unpack_from(f"!{first & 0x0F}I", data, RTP_HEADER_SIZE)
        if first & 0x10:
            if offset + EXTENSION_HEADER_SIZE > end:
                raise ValueError("RTP extension header runs past the packet end")
            words = struct.unpack_from("!H", data, offset + 2)[0]
            offset += EXTENSION_HEADER_SIZE + 4 * words
            if offset > end:
                raise ValueError(f"RTP extension length {words} words runs past the packet end")
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or offset + padding > end:
                raise ValueError(f"RTP padding length {padding} is invalid for this packet")
            end -= padding
        return cls(payload_type, seq, ts, ssrc, bytes(data[offset:end]), bool(second & 0x80), csrc)

    def serialize(self) -> bytes:
        """The packet's bytes (no padding, no extension)."""
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"RTP payload type {self.payload_type} is out of range 0 to 127")
        if len(self.csrc) > 15:
            raise ValueError(f"RTP CSRC count {len(self.csrc)} exceeds 15")
        first = (RTP_VERSION << 6) | len(self.csrc)
        second = (0x80 if self.marker else 0) | self.payload_type
        header = RTP_HEADER.pack(
            first, second, self.sequence_number & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc
        )
        csrc = struct.pack(f"!{len(self.csrc)}I", *self.csrc)
        return header + csrc + self.payload


def frames_per_packet(channels: int, max_payload: int = DEFAULT_MAX_PAYLOAD) -> int:
    """How many whole frames fit in one datagram of at most ``max_payload`` bytes."""
    if channels < 1:
        raise ValueError(f"channels {channels} must be at least 1")
    frames = (max_payload - RTP_HEADER_SIZE) // (SAMPLE_BYTES * channels)
    if frames < 1:
        raise ValueError(
            f"max_payload {max_payload} cannot carry one frame of {channels} channels; "
            f"use at least {RTP_HEADER_SIZE + SAMPLE_BYTES * channels}"
        )
    return frames


def packet_bounds(frames: int, per_packet: int) -> list[int]:
    """Frame offsets splitting ``frames`` into the fewest, nearly equal packets.

    Sizes differ by at most one frame and the smaller packets come first, so
    the datagrams form at most two runs of equal size (which the kernel can
    send in one call each with UDP segmentation offload).
    """
    count = -(-frames // per_packet)
    if not count:
        return [0]
    small, larger = divmod(frames, count)
    bounds = [0]
    for i in range(count):
        bounds.append(bounds[-1] + small + (1 if i >= count - larger else 0))
    return bounds


def encode_l16(data: NDArray[np.int16]) -> bytes:
    """Interleaved big-endian int16 bytes of a ``(frames, channels)`` array."""
    return np.ascontiguousarray(data, dtype=L16_DTYPE).tobytes()


def decode_l16(payload: bytes | memoryview, channels: int) -> NDArray[np.int16]:
    """A ``(frames, channels)`` int16 array from an L16 payload; ValueError if ragged."""
    if len(payload) % (SAMPLE_BYTES * channels):
        raise ValueError(
            f"L16 payload length {len(payload)} is not a whole number of {channels}-channel frames"
        )
    samples = np.frombuffer(payload, dtype=L16_DTYPE)
    return samples.astype(np.int16).reshape(-1, channels)
