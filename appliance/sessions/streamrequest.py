"""What a stream request may ask for, checked where it enters (``StreamManager.subscribe``).

A listener names a port, channels and a datagram size; the address is never
its choice (the caller passes the authenticated peer's).  Each check raises
:class:`StreamError` saying what was wrong and what is allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from appliance.errors import ApplianceError
from rtai.rtp import MIN_MAX_PAYLOAD, RTP_HEADER_SIZE, SAMPLE_BYTES

MAX_CHANNEL_MAP = 256


class StreamError(ApplianceError):
    """A stream request the device refuses; the message says why and what is allowed."""

    code = "stream_refused"


class StreamNotOpen(StreamError):
    """A renew or stop names a stream that expired or never existed; subscribe again."""

    code = "stream_not_open"


def unicast_address(peer_ip: str) -> str:
    """The peer's address as a stream destination (IPv4-mapped IPv6 unwrapped)."""
    try:
        address = ipaddress.ip_address(peer_ip)
    except ValueError:
        raise StreamError(f"peer address {peer_ip!r} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_multicast or address.is_unspecified or str(address) == "255.255.255.255":
        raise StreamError(f"peer address {address} cannot receive a unicast stream")
    return str(address)


def check_port(port: Any) -> int:
    """An RTP port, with room for RTCP on the next one."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65534:
        raise StreamError(f"port {port!r} is not allowed; use 1 to 65534 (RTCP goes to port + 1)")
    return port


def check_channels(channels: Any, available: int) -> tuple[int, ...]:
    """0-based device channels to send, each once; () for all of them."""
    if channels is None:
        return ()
    if not isinstance(channels, list) or not 1 <= len(channels) <= MAX_CHANNEL_MAP:
        raise StreamError(f"channels {channels!r} must be a list of 1 to {MAX_CHANNEL_MAP} channel numbers")
    for c in channels:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < available:
            raise StreamError(f"channel {c!r} does not exist; this device has channels 0 to {available - 1}")
    if len(set(channels)) != len(channels):
        raise StreamError(f"channels {channels} names a channel twice")
    return tuple(channels)


def check_payload(max_payload: Any, channels: int, limit: int) -> int:
    """A datagram size (``limit``, the device's, when None) that carries one frame at least."""
    if max_payload is None:
        max_payload = limit
    low = max(MIN_MAX_PAYLOAD, RTP_HEADER_SIZE + SAMPLE_BYTES * channels)
    if isinstance(max_payload, bool) or not isinstance(max_payload, int) or not low <= max_payload <= limit:
        raise StreamError(
            f"max_payload {max_payload!r} is not allowed; use {low} to {limit} bytes for {channels} channels"
        )
    return max_payload


def family(address: str) -> int:
    """The socket family that reaches ``address``."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET
