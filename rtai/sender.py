"""The sending side of one RTP stream: blocks in, datagrams out.

No I/O here: ``packetize`` returns the datagrams of one block and the caller
sends them (the device through an asyncio transport, the intercom through a
plain socket), so both share exactly the same packets.

Fan-out: the payload of a block depends only on the channels a stream
carries, not on the stream, so a device sending one block to many listeners
encodes it once per distinct channel selection (``encode_payload``, keyed by
``encoding_key``) and each stream adds only its 12-byte headers
(``packetize_parts``), which the sender passes to the kernel as separate
buffers beside the shared payload: no copy per listener.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from rtai.rtcp import Bye, SenderReport, unix_to_ntp
from rtai.rtp import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_PAYLOAD_TYPE,
    L16_DTYPE,
    RTP_HEADER,
    RTP_VERSION,
    frames_per_packet,
    packet_bounds,
)

SR_INTERVAL_S = 1.0
"""Seconds between RTCP sender reports (RFC 3550 suggests 5 s; receivers here
want their latency figure sooner, and one small report a second costs nothing)."""


class RtpSender:
    """Sequence numbers, timestamps and packetisation of one stream."""

    def __init__(
        self,
        rate: int,
        channels: int,
        *,
        channel_map: Sequence[int] | None = None,
        payload_type: int = DEFAULT_PAYLOAD_TYPE,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        ssrc: int | None = None,
        cname: str = "",
    ) -> None:
        self.rate = rate
        self.device_channels = channels
        """Channels of the blocks handed to ``packetize``."""
        self.channel_map = tuple(channel_map) if channel_map else ()
        self.channels = len(self.channel_map) or channels
        self.payload_type = payload_type
        self.max_payload = max_payload
        self.per_packet = frames_per_packet(self.channels, max_payload)
        self.ssrc = secrets.randbits(32) if ssrc is None else ssrc
        self.cname = cname
        # Random starting points, as RFC 3550 asks, so streams cannot be confused.
        self.seq = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self.packets = 0
        self.octets = 0
        self._first = True
        self._last_report = -SR_INTERVAL_S
        self._report_ts = 0
        self._report_time = 0.0
        self._index = np.asarray(self.channel_map, dtype=np.intp) if self.channel_map else None

    def packetize(self, data: NDArray[np.int16]) -> list[bytes]:
        """The datagrams carrying ``data`` (frames x device channels), in order."""
        return [header + part for header, part in self.packetize_parts(self.encode_payload(data))]

    @property
    def encoding_key(self) -> tuple[int, tuple[int, ...], int]:
        """Streams with equal keys carry byte-identical payloads for the same block."""
        return (self.device_channels, self.channel_map, self.per_packet)

    def encode_payload(self, data: NDArray[np.int16]) -> memoryview:
        """The L16 bytes this stream carries for ``data`` (frames x device channels)."""
        if self._index is not None:
            data = data[:, self._index]
        # One copy (the byte swap), viewed as bytes: ``tobytes`` would make a second.
        return np.ascontiguousarray(data, dtype=L16_DTYPE).data.cast("B")

    def packetize_parts(self, payload: memoryview) -> list[tuple[bytes, memoryview]]:
        """(RTP header, payload slice) of each datagram of one block's ``encode_payload``."""
        stride = 2 * self.channels
        frames = len(payload) // stride
        if frames == 0:
            return []
        bounds = packet_bounds(frames, self.per_packet)
        out: list[tuple[bytes, memoryview]] = []
        pack = RTP_HEADER.pack
        first_byte = RTP_VERSION << 6
        seq, ts, ssrc, pt = self.seq, self.timestamp, self.ssrc, self.payload_type
        for i in range(len(bounds) - 1):
            start, end = bounds[i], bounds[i + 1]
            second = pt | 0x80 if self._first else pt
            self._first = False
            header = pack(first_byte, second, seq, (ts + start) & 0xFFFFFFFF, ssrc)
            out.append((header, payload[start * stride : end * stride]))
            seq = (seq + 1) & 0xFFFF
        self.seq = seq
        self.timestamp = (ts + frames) & 0xFFFFFFFF
        self.packets += len(out)
        self.octets += len(payload)
        self._report_ts = (ts + frames - 1) & 0xFFFFFFFF
        return out

    def mark_captured(self, capture_time: float) -> None:
        """Record that the last frame packetised was captured at ``capture_time`` (Unix s)."""
        self._report_time = capture_time

    def report_due(self, now: float) -> bool:
        """True when a sender report should go out (the first one and then every second)."""
        return now - self._last_report >= SR_INTERVAL_S

    def sender_report(self, now: float) -> bytes:
        """An RTCP SR pairing the capture time of the last frame sent with its timestamp."""
        self._last_report = now
        report = SenderReport(
            self.ssrc,
            unix_to_ntp(self._report_time),
            self._report_ts,
            self.packets,
            self.octets,
        )
        return report.serialize(self.cname)

    def bye(self, now: float, reason: str) -> bytes:
        """A last report and an RTCP BYE: this SSRC ends (RFC 3550 section 6.6), ``reason`` in words."""
        return self.sender_report(now) + Bye((self.ssrc,), reason).serialize()
