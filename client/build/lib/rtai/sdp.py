"""Stream descriptions: the JSON the device sends and the SDP text for other tools.

The device describes each stream it sends (``stream`` in the ``ack`` of a
``stream_start`` message, and in ``stream_changed``); the same description
renders as an SDP file (RFC 4566) with which ffmpeg or GStreamer receive the
stream without any code of ours.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any

from rtai.rtp import DEFAULT_MAX_PAYLOAD, DEFAULT_PAYLOAD_TYPE

ENCODING = "L16"
MULTICAST_TTL = 1
"""Hops a multicast stream may cross: the local network only."""


@dataclass(frozen=True, slots=True)
class StreamDescription:
    """What a receiver needs to know about one RTP stream."""

    id: str
    """The device's name for the stream (for renew and stop)."""
    ssrc: int
    """RTP synchronisation source; changes with every new description."""
    rate: int
    """Frames per second, also the RTP clock rate."""
    channels: int
    """Channels in each frame on the wire."""
    address: str
    """Where the packets go: the listener's address or a multicast group."""
    port: int
    """UDP port of RTP; RTCP uses ``port + 1``."""
    payload_type: int = DEFAULT_PAYLOAD_TYPE
    channel_map: tuple[int, ...] = ()
    """0-based device channels carried, in order (empty: all of them)."""
    max_payload: int = DEFAULT_MAX_PAYLOAD
    """Largest datagram the device sends, in bytes."""
    origin: str = "0.0.0.0"
    """The sending device's address, for the SDP ``o=`` line."""
    name: str = "microphone array"
    version: int = 1
    """Bumped when the description changes (new rate, channels or SSRC)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rtcp_port(self) -> int:
        return self.port + 1

    @property
    def multicast(self) -> bool:
        return ipaddress.ip_address(self.address).is_multicast

    def to_json(self) -> dict[str, Any]:
        """The JSON form sent over the control connection, SDP text included."""
        out = asdict(self)
        out.pop("extra")
        out["channel_map"] = list(self.channel_map)
        out["encoding"] = ENCODING
        out["rtcp_port"] = self.rtcp_port
        out["sdp"] = self.to_sdp()
        return out

    @classmethod
    def from_json(cls, msg: Any) -> StreamDescription:
        """Read a description sent by a device; ValueError naming the bad field."""
        if not isinstance(msg, dict):
            raise ValueError(f"stream description must be an object, not {type(msg).__name__}")
        try:
            return cls(
                id=str(msg["id"]),
                ssrc=_int(msg, "ssrc", 0, 0xFFFFFFFF),
                rate=_int(msg, "rate", 1, 10_000_000),
                channels=_int(msg, "channels", 1, 4096),
                address=str(ipaddress.ip_address(msg["address"])),
                port=_int(msg, "port", 1, 65535),
                payload_type=_int(msg, "payload_type", 0, 127),
                channel_map=tuple(int(c) for c in msg.get("channel_map", ())),
                max_payload=_int(msg, "max_payload", 14, 65507),
                origin=str(msg.get("origin", "0.0.0.0")),
                name=str(msg.get("name", "microphone array")),
                version=int(msg.get("version", 1)),
            )
        except KeyError as exc:
            raise ValueError(f"stream description lacks {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ValueError(f"stream description has a wrong value: {exc}") from None

    def to_sdp(self) -> str:
        """An SDP file describing the stream as received at ``address``:``port``."""
        family = "IP6" if ":" in self.address else "IP4"
        origin_family = "IP6" if ":" in self.origin else "IP4"
        conn = self.address
        if self.multicast and family == "IP4":
            conn = f"{self.address}/{MULTICAST_TTL}"
        lines = [
            "v=0",
            f"o=- {self.ssrc} {self.version} IN {origin_family} {self.origin}",
            f"s={self.name}",
            f"c=IN {family} {conn}",
            "t=0 0",
            f"m=audio {self.port} RTP/AVP {self.payload_type}",
            f"a=rtpmap:{self.payload_type} {ENCODING}/{self.rate}/{self.channels}",
            "a=recvonly",
        ]
        return "\r\n".join(lines) + "\r\n"


def _int(msg: dict[str, Any], key: str, low: int, high: int) -> int:
    value = msg[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"stream description {key} {value!r} is not a whole number {low}-{high}")
    return value


def parse_sdp(text: str) -> StreamDescription:
    """Read the audio stream of an SDP file (L16 only); ValueError naming what is missing."""
    address = port = payload_type = rate = channels = None
    origin, name = "0.0.0.0", "microphone array"
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("c=IN "):
            address = line.split()[2].split("/")[0]
        elif line.startswith("o="):
            origin = line.split()[-1]
        elif line.startswith("s="):
            name = line[2:]
        elif line.startswith("m=audio "):
            parts = line.split()
            port, payload_type = int(parts[1]), int(parts[3])
        elif line.startswith("a=rtpmap:"):
            _, encoding = line[len("a=rtpmap:") :].split(None, 1)
            fields = encoding.split("/")
            if fields[0].upper() != ENCODING:
                raise ValueError(f"SDP encoding {fields[0]!r} is not supported; only {ENCODING}")
            rate = int(fields[1])
            channels = int(fields[2]) if len(fields) > 2 else 1
    for key, value in (("c=", address), ("m=audio", port), ("a=rtpmap", rate)):
        if value is None:
            raise ValueError(f"SDP has no {key} line for the audio stream")
    assert address is not None and port is not None and rate is not None
    return StreamDescription(
        id="sdp",
        ssrc=0,
        rate=rate,
        channels=channels or 1,
        address=address,
        port=port,
        payload_type=payload_type if payload_type is not None else DEFAULT_PAYLOAD_TYPE,
        origin=origin,
        name=name,
    )
