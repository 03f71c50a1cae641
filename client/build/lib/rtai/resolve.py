"""Turning what a user types (``micarray.local``, ``10.0.0.7:8080``, ``lab-pi``) into an address.

``rtai listen``, ``rtai sdp`` and friends call :func:`resolve_host` once at
start-up: ``.local`` names are answered over mDNS by the device itself (no
avahi needed on the laptop), IP literals pass through, and other names go to
the system resolver. UDP sockets need an address, not a name, hence
:func:`resolve_ip`.
"""

from __future__ import annotations

import ipaddress
import socket

from browserinterface.device import (
    DEFAULT_PORT,
    DeviceAddress,
    DeviceNameError,
    DeviceNotFound,
    parse_device,
    resolve_device,
)
from browserinterface.localname import is_local_name, resolve_local

__all__ = [
    "DeviceAddress",
    "DeviceNameError",
    "DeviceNotFound",
    "resolve_host",
    "resolve_ip",
]


def resolve_ip(host: str, timeout_s: float | None = None) -> str:
    """An IP address for ``host``: a literal as is, ``.local`` over mDNS, others by DNS."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if is_local_name(host):
        return resolve_local(host, timeout_s)
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise DeviceNotFound(
            f"host {host!r} cannot be resolved ({exc.strerror}); use an address, "
            "a name.local or a name your DNS knows"
        ) from exc
    return str(infos[0][4][0])


def resolve_host(
    spec: str, default_port: int = DEFAULT_PORT, timeout_s: float | None = None
) -> DeviceAddress:
    """``spec`` parsed and its host turned into an IP address (``name`` keeps what was typed)."""
    address = resolve_device(spec, default_port, timeout_s)
    if address.name:
        return address
    parsed = parse_device(spec, default_port)
    return DeviceAddress(resolve_ip(parsed.host, timeout_s), parsed.port, name=parsed.host)
