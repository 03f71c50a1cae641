"""Resolving ``name.local`` over mDNS, so ``bi_board_ip = "micarray.local"`` works anywhere.

The laptop needs no avahi or nss-mdns: the question goes out with
python-zeroconf and the device's own responder answers it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from zeroconf import IPVersion, Zeroconf
from zeroconf._services.info import AddressResolverIPv4  # public as zeroconf.AddressResolverIPv4
from zeroconf.asyncio import AsyncZeroconf

from browserinterface.device import is_local_name

__all__ = ["LocalNameNotFound", "is_local_name", "resolve_local"]

#: Seconds to wait for a device to answer for its name.
RESOLVE_TIMEOUT_S = 3.0


class LocalNameNotFound(LookupError):
    """No device answered for a ``.local`` name in time."""


def _fqdn(host: str) -> str:
    return host.lower().rstrip(".") + "."


def _not_found(host: str, timeout_s: float) -> LocalNameNotFound:
    return LocalNameNotFound(
        f"no device answered for {host.rstrip('.')} over mDNS within {timeout_s:g} s; "
        "check that it is powered and on this network (`rtai discover` lists the devices here)"
    )


def resolve_local(host: str, timeout_s: float | None = None) -> str:
    """The IPv4 address that answers for ``host`` (``name.local``); blocking.

    Works from plain code and from inside a running event loop (``appliance
    run``): zeroconf's blocking request refuses to run on a loop's thread, so
    there it runs on a short-lived thread of its own.
    """
    timeout = RESOLVE_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _resolve_blocking(host, timeout)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mdns-resolve") as pool:
        return pool.submit(_resolve_blocking, host, timeout).result()


def _resolve_blocking(host: str, timeout: float) -> str:
    resolver = AddressResolverIPv4(_fqdn(host))
    zc = Zeroconf(ip_version=IPVersion.V4Only)
    try:
        found = resolver.request(zc, int(timeout * 1000))
    finally:
        zc.close()
    addresses = resolver.parsed_addresses(IPVersion.V4Only)
    if not found or not addresses:
        raise _not_found(host, timeout)
    return addresses[0]


async def async_resolve_local(host: str, timeout_s: float | None = None) -> str:
    """The IPv4 address that answers for ``host``, from a running event loop."""
    timeout = RESOLVE_TIMEOUT_S if timeout_s is None else timeout_s
    resolver = AddressResolverIPv4(_fqdn(host))
    azc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    try:
        found = await resolver.async_request(azc.zeroconf, int(timeout * 1000))
    finally:
        await azc.async_close()
    addresses = resolver.parsed_addresses(IPVersion.V4Only)
    if not found or not addresses:
        raise _not_found(host, timeout)
    return addresses[0]
