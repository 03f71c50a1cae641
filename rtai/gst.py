"""A GStreamer pipeline that receives a stream with every channel in order, bit for bit.

``rtpL16depay`` gives 4, 5, 6 and 8 channel streams the surround layouts of
RFC 3551 and reorders the samples into GStreamer's own order (8 channels come
out as 0,1,2,3,6,7,4,5). A microphone array has no surround layout, so the
pipeline tells the depayloader the stream is mono (it then only strips the
RTP headers, and every packet holds whole frames) and lets ``rawaudioparse``
read the bytes as the real channel count, unpositioned. ``audioconvert`` is
left out: it fails at 64 channels. The socket buffer is sized for a quarter
of a second of audio, which 48 channels at 48 kHz need where the default
drops packets (the kernel caps it at ``net.core.rmem_max``). The file is
written unbuffered: it holds what arrived, at any moment.

The output is the stream as on the wire, big-endian 16-bit interleaved
(``s16be``); :func:`convert_hint` says how to make a WAV of it.
"""

from __future__ import annotations

from rtai.sdp import ENCODING, StreamDescription

JITTER_LATENCY_MS = 50
"""How long rtpjitterbuffer holds packets to put reordered ones back in order."""
BUFFER_SECONDS = 0.25
MIN_BUFFER_BYTES = 1 << 20


def buffer_bytes(desc: StreamDescription) -> int:
    """Receive buffer for ``BUFFER_SECONDS`` of the stream (at least 1 MiB)."""
    return max(MIN_BUFFER_BYTES, int(desc.rate * desc.channels * 2 * BUFFER_SECONDS))


def gst_pipeline(desc: StreamDescription, location: str = "rec.raw") -> list[str]:
    """``gst-launch-1.0`` arguments that record ``desc``'s stream into ``location``."""
    caps = (
        f"application/x-rtp,media=audio,clock-rate={desc.rate},encoding-name={ENCODING},"
        f"channels=1,payload={desc.payload_type}"
    )
    bind = desc.address if desc.multicast else ("::" if ":" in desc.address else "0.0.0.0")
    return [
        "gst-launch-1.0", "-e",
        "udpsrc", f"address={bind}", f"port={desc.port}", f"buffer-size={buffer_bytes(desc)}", f"caps={caps}",
        "!", "rtpjitterbuffer", f"latency={JITTER_LATENCY_MS}",
        "!", "rtpL16depay",
        "!", "rawaudioparse", "use-sink-caps=false", "format=pcm", "pcm-format=s16be",
        f"sample-rate={desc.rate}", f"num-channels={desc.channels}",
        "!", "filesink", "buffer-mode=unbuffered", f"location={location}",
    ]  # fmt: skip


def convert_hint(desc: StreamDescription, location: str = "rec.raw") -> str:
    """How to turn the pipeline's raw output into a WAV file."""
    return (
        f"ffmpeg -f s16be -ar {desc.rate} -ac {desc.channels} -i {location} rec.wav "
        f"(or sox -t raw -r {desc.rate} -e signed -b 16 -B -c {desc.channels} {location} rec.wav)"
    )
