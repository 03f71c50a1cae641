"""The names and addresses the device answers to, for the Host check.

A web page can rebind its own DNS name to the device's address; the
browser then treats the device as that page's origin and lets its scripts
read the answers. Such requests still carry the page's name in ``Host``, so
the device answers only requests whose ``Host`` is one of its own names or
addresses: ``localhost``, loopback addresses, its host name, its mDNS name
(``name.local``), names the admin added, the address the request arrived on
and any address of its interfaces.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Iterable

import ifaddr

log = logging.getLogger(__name__)

ADDRESS_REFRESH_S = 5.0
"""An address not known yet re-reads the interfaces at most this often (DHCP may change them)."""


def split_host(host: str) -> str:
    """The name or address of a ``Host`` header, without port, brackets or trailing dot, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _as_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def interface_addresses() -> set[str]:
    """Every address of every interface of this host, as text."""
    found: set[str] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            value = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            address = _as_address(value)
            if address is not None:
                found.add(str(address))
    return found


class DeviceNames:
    """Decides whether a ``Host`` header names this device."""

    def __init__(self, host_names: Iterable[str] = (), allowed: Iterable[str] = ()) -> None:
        self._names: set[str] = {"localhost"}
        self._addresses: set[str] = set()
        self._read_at = float("-inf")
        self.add(socket.gethostname(), *host_names)
        self._names.update(h for h in map(split_host, allowed) if h)

    def add(self, *host_names: str) -> None:
        """Also answer to these host names and their mDNS forms (``name.local``)."""
        for name in host_names:
            host = split_host(name)
            if host:
                self._names.add(host)
                self._names.add(host.split(".")[0] + ".local")

    @property
    def names(self) -> frozenset[str]:
        """The names answered to (not the addresses)."""
        return frozenset(self._names)

    def allows(self, host_header: str, local_address: str | None = None) -> bool:
        """True when ``host_header`` names this device; ``local_address`` is where the request arrived."""
        host = split_host(host_header)
        address = _as_address(host)
        if address is None:
            return host in self._names
        if address.is_loopback:
            return True
        local = _as_address(local_address) if local_address else None
        if local is not None and local == address:
            return True
        text = str(address)
        if text not in self._addresses and time.monotonic() - self._read_at > ADDRESS_REFRESH_S:
            self._refresh()
        return text in self._addresses

    def _refresh(self) -> None:
        self._read_at = time.monotonic()
        try:
            self._addresses = interface_addresses()
        except OSError as exc:
            log.warning("cannot list the interface addresses: %s", exc)
