"""Real-time audio from the microphone array over UDP, as standard RTP/L16.

Receive a stream the device sends to this machine::

    import rtai
    with rtai.Receiver(port=5004, rate=48000, channels=8) as rx:
        for block in rx:                 # rtai.ReceivedBlock
            print(block.timestamp, block.data.shape, rx.stats.lost)

or let :func:`rtai.client.connect` subscribe over the device's API and keep
the subscription alive.  The wire format is RTP (RFC 3550) with L16 payload
(RFC 3551), described by SDP, so ffmpeg and GStreamer receive it too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loaded on first use: the device's boot reads rtai.sap and rtai.sdp, which
# need none of numpy, the receiver or the sender.
_WHERE = {
    "ReceivedBlock": "rtai.jitterbuffer",
    "Receiver": "rtai.receiver",
    "SenderReport": "rtai.rtcp",
    "RtpPacket": "rtai.rtp",
    "StreamDescription": "rtai.sdp",
    "parse_sdp": "rtai.sdp",
    "RtpSender": "rtai.sender",
    "ReceiverStats": "rtai.stats",
}

if TYPE_CHECKING:
    from rtai.jitterbuffer import ReceivedBlock
    from rtai.receiver import Receiver
    from rtai.rtcp import SenderReport
    from rtai.rtp import RtpPacket
    from rtai.sdp import StreamDescription, parse_sdp
    from rtai.sender import RtpSender
    from rtai.stats import ReceiverStats


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'rtai' has no attribute {name!r}")


__all__ = [
    "ReceivedBlock",
    "Receiver",
    "ReceiverStats",
    "RtpPacket",
    "RtpSender",
    "SenderReport",
    "StreamDescription",
    "parse_sdp",
]
