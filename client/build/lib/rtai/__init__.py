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

from rtai.jitterbuffer import ReceivedBlock
from rtai.receiver import Receiver
from rtai.rtcp import SenderReport
from rtai.rtp import RtpPacket
from rtai.sdp import StreamDescription, parse_sdp
from rtai.sender import RtpSender
from rtai.stats import ReceiverStats

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
