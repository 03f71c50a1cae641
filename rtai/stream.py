"""One received stream's format checks in front of its jitter buffer.

Every datagram, whatever it holds, ends in exactly one counter: received,
duplicates or late (via the jitter buffer), malformed, or foreign.
"""

from __future__ import annotations

import logging
import struct
import time

import numpy as np

from rtai.jitterbuffer import JitterBuffer
from rtai.rtcp import Bye, SenderReport
from rtai.rtp import L16_DTYPE, RTP_HEADER_SIZE, SAMPLE_BYTES, RtpPacket
from rtai.stats import ReceiverStats

log = logging.getLogger(__name__)

DECODE_ERRORS = (ValueError, struct.error, IndexError)
"""What decoding an untrusted datagram may raise; anything else is a bug."""
FAST_HEADER = struct.Struct("!xBHII")
PLAIN_FIRST_BYTE = 0x80
"""Version 2, no padding, no extension, no CSRC: what every sender of L16 sends."""
WARN_INTERVAL_S = 10.0
"""A rejected datagram is logged as a warning at most this often; otherwise at debug."""


class StreamState:
    """Format, SSRC and source of the expected stream, and its jitter buffer."""

    def __init__(
        self,
        rate: int,
        channels: int,
        ssrc: int | None,
        *,
        payload_type: int,
        latency_s: float,
        stats: ReceiverStats,
        source: str | None = None,
    ) -> None:
        self.rate = rate
        self.channels = channels
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.source = source
        self.frame_bytes = SAMPLE_BYTES * channels
        self.stats = stats
        self.buffer = JitterBuffer(rate, channels, latency_s=latency_s, stats=stats)
        self.ended: str | None = None
        """The sender's RTCP BYE reason once it ended this stream (e.g. its configuration changed)."""
        self._warned = -WARN_INTERVAL_S

    def handle(self, data: bytes, source: str | None, rtcp: bool, arrival: float) -> None:
        """Count and, when it is ours, use one datagram."""
        if self.source is not None and source is not None and source != self.source:
            self._reject("foreign", f"datagram from {source}; expecting {self.source}")
            return
        try:
            if rtcp:
                self._handle_rtcp(data)
            else:
                self._handle_rtp(data, arrival)
        except DECODE_ERRORS as exc:
            self._reject("malformed", f"{'RTCP' if rtcp else 'RTP'} datagram from {source}: {exc}")

    def _handle_rtcp(self, data: bytes) -> None:
        bye = Bye.find(data)
        if bye is not None and self.ssrc in bye.ssrcs and self.ended is None:
            self.ended = bye.reason or "no reason given"
            log.warning("the device ended this stream (%s); waiting for its new description", self.ended)
        report = SenderReport.parse(data)
        if self.ssrc is not None and report.ssrc != self.ssrc:
            self._reject("foreign", f"sender report of SSRC {report.ssrc:#010x}")
            return
        self.buffer.set_sender_report(report.rtp_timestamp, report.unix_time)

    def _handle_rtp(self, data: bytes, arrival: float) -> None:
        if len(data) > RTP_HEADER_SIZE and data[0] == PLAIN_FIRST_BYTE:
            # The common case (no CSRC, extension or padding) without building
            # a packet object: this runs thousands of times a second.
            second, seq, ts, ssrc = FAST_HEADER.unpack_from(data)
            payload_type, payload = second & 0x7F, memoryview(data)[RTP_HEADER_SIZE:]
        else:
            packet = RtpPacket.parse(data)
            payload_type, seq, ts, ssrc = (
                packet.payload_type, packet.sequence_number, packet.timestamp, packet.ssrc,
            )  # fmt: skip
            payload = memoryview(packet.payload)
            if 72 <= payload_type <= 76:
                raise ValueError(f"RTP payload type {payload_type} is an RTCP packet type")
        if payload_type != self.payload_type:
            self._reject("foreign", f"payload type {payload_type}; expecting {self.payload_type}")
            return
        if self.ssrc is None:
            self.ssrc = ssrc
        elif ssrc != self.ssrc:
            if self.ended is not None:  # the new stream, before its description: already said
                self.stats.foreign += 1
                return
            self._reject("foreign", f"SSRC {ssrc:#010x}; expecting {self.ssrc:#010x}")
            return
        if len(payload) % self.frame_bytes or not payload:
            raise ValueError(
                f"L16 payload length {len(payload)} is not a whole number of {self.channels}-channel frames"
            )
        samples = np.frombuffer(payload, dtype=L16_DTYPE).reshape(-1, self.channels)
        self.buffer.insert(seq, ts, samples, arrival)

    def _reject(self, counter: str, why: str) -> None:
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        now = time.monotonic()
        if now - self._warned >= WARN_INTERVAL_S:
            self._warned = now
            log.warning(
                "ignoring %s %s (further ones in the next %.0f s at debug level)",
                counter,
                why,
                WARN_INTERVAL_S,
            )
        else:
            log.debug("ignoring %s %s", counter, why)
