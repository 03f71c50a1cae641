"""Announcing the device on the LAN over mDNS (python-zeroconf; no avahi on the device).

Two services point at the web port: ``_http._tcp`` (``path=/``, for browsers
and DNS-SD tools) and ``_micarray._tcp`` with TXT records for ``rtai
discover`` (id, model, channels, rates, API port, WebSocket path, version).
The device answers A queries for ``<hostname>.local`` (the services' SRV
target).

The host name itself is probed for before it is used (RFC 6762 sections
8-9, :mod:`appliance.system.hostname`): a name another device answers for,
or wins in a simultaneous probe, is not taken; the announcer tries
``name-2``, ``name-3``... and logs the one it chose, keeps it in the data
directory for the next start, tells ``on_name`` (the page shows it) and puts
it in TXT (``host``). A device that later hears another answer for its name
(two networks joined) probes again and renames if it must. Network addresses
that change or arrive late (Wi-Fi joining after boot, DHCP renewing) are
found by polling the interfaces every :data:`INTERFACE_POLL_S`; on a change
everything is re-registered on fresh sockets. ``close()`` says goodbye.

Wiring, as ``appliance.service.Service`` uses it::

    announcer = Announcer(socket.gethostname(), http_port, device_txt(...))
    await announcer.start()       # after HTTP listens
    await announcer.update({...}) # after a configuration change
    await announcer.close()       # on shutdown: goodbye packets
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import ifaddr
from zeroconf import Error as ZeroconfError
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from appliance.system.hostname import HostClaim, load_chosen, save_chosen
from appliance.system.supervisor import log_failure
from rtai.discover import HTTP_SERVICE_TYPE, SERVICE_TYPE
from rtai.txt import (
    TXT_API_PORT,
    TXT_CHANNELS,
    TXT_HOST,
    TXT_ID,
    TXT_MODEL,
    TXT_PROTOCOL,
    TXT_RATE,
    TXT_RATES,
    TXT_VERSION,
    TXT_WS_PATH,
)

log = logging.getLogger(__name__)

# Timing constants, in one place so tests can shorten them.
INTERFACE_POLL_S = 5.0
"""Seconds between looks at the network interfaces for new or lost addresses."""
MAX_RENAMES = 50
"""Give up after ``name-2`` .. ``name-50`` are all taken."""
RETRY_AFTER_FAILURE_S = 60.0
"""Seconds before announcing again after a failure with unchanged addresses."""

_NOT_IN_LABEL = re.compile(r"[^a-z0-9-]+")


class AnnounceError(RuntimeError):
    """The device could not be announced (bad name, every rename taken)."""


def normalize_hostname(hostname: str) -> str:
    """A DNS label to announce: ``Lab_Pi.local`` -> ``lab-pi``.

    A host name may hold characters an mDNS name should not (``_``, spaces,
    accents); they become ``-`` rather than stop the announcement. Raises
    AnnounceError only when nothing usable is left.
    """
    label = hostname.strip().rstrip(".").lower().removesuffix(".local").split(".")[0]
    label = _NOT_IN_LABEL.sub("-", label).strip("-")[:63].rstrip("-")
    if not label:
        raise AnnounceError(
            f"host name {hostname!r} cannot be announced; use letters, digits and "
            "inner hyphens, like 'micarray' or 'lab-array-2'"
        )
    return label


def device_txt(
    *,
    device_id: str,
    model: str,
    channels: int,
    rate: int,
    rates: list[int],
    api_port: int,
    ws_path: str,
    version: str,
    protocol: str = "",
) -> dict[str, str]:
    """The ``_micarray._tcp`` TXT record from the device's facts."""
    txt = {
        TXT_ID: device_id,
        TXT_MODEL: model,
        TXT_CHANNELS: str(channels),
        TXT_RATE: str(rate),
        TXT_RATES: ",".join(str(r) for r in rates),
        TXT_API_PORT: str(api_port),
        TXT_WS_PATH: ws_path,
        TXT_VERSION: version,
    }
    if protocol:
        txt[TXT_PROTOCOL] = protocol
    return txt


def current_addresses() -> tuple[str, ...]:
    """The IPv4 addresses worth announcing: every interface's but loopback's."""
    found = {
        str(ip.ip)
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if ip.is_IPv4 and not str(ip.ip).startswith("127.")
    }
    return tuple(sorted(found))


class Announcer:
    """Keeps the device announced while the service runs."""

    def __init__(
        self,
        hostname: str,
        http_port: int,
        txt: Mapping[str, str],
        *,
        data_dir: Path | None = None,
        on_name: Callable[[str], None] | None = None,
    ) -> None:
        self.requested_hostname = normalize_hostname(hostname)
        self._data_dir = data_dir
        self.hostname = load_chosen(data_dir, self.requested_hostname)
        """The name in use (``name-2`` after a conflict), without ``.local``."""
        self.on_name = on_name
        """Told the name whenever the device settles on one."""
        self.http_port = http_port
        self._txt = dict(txt)
        self._claim: HostClaim | None = None
        self._reclaim: asyncio.Task[None] | None = None
        self._zc: AsyncZeroconf | None = None
        self._infos: list[AsyncServiceInfo] = []
        self._addresses: tuple[str, ...] = ()
        self._poller: asyncio.Task[None] | None = None
        self._seen: tuple[str, ...] = ()
        self._retry_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses currently announced (empty while the device has none)."""
        return self._addresses

    @property
    def instance_names(self) -> list[str]:
        """Full names of the registered services (after any rename)."""
        return [info.name for info in self._infos]

    async def start(self) -> None:
        """Announce now if the device has an address, and keep watching the interfaces.

        Never raises for network trouble: a device that cannot announce is
        still usable by address, so failures are logged and retried.
        """
        await self._try_sync(current_addresses())
        if not self._seen:
            log.info("no network address yet; will announce %s.local when one arrives", self.hostname)
        self._poller = asyncio.get_running_loop().create_task(self._poll(), name="mdns address poller")
        self._poller.add_done_callback(log_failure)

    async def update(self, txt: Mapping[str, str]) -> None:
        """Replace TXT values (merged into the current ones) and re-announce them."""
        self._txt.update(txt)
        async with self._lock:
            if self._zc is None:
                return
            for i, old in enumerate(self._infos):
                new = self._service_info(old.type, old.name, self._addresses)
                await (await self._zc.async_update_service(new))
                self._infos[i] = new

    async def close(self) -> None:
        """Stop watching and say goodbye (records with TTL 0)."""
        for task in (self._poller, self._reclaim):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._poller = self._reclaim = None
        async with self._lock:
            await self._withdraw()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(INTERFACE_POLL_S)
            addresses = current_addresses()
            if addresses != self._seen:
                log.info(
                    "network addresses changed from %s to %s; announcing again",
                    ", ".join(self._seen) or "none",
                    ", ".join(addresses) or "none",
                )
                await self._try_sync(addresses)
            elif self._retry_at is not None and time.monotonic() >= self._retry_at:
                await self._try_sync(addresses)

    async def _try_sync(self, addresses: tuple[str, ...]) -> None:
        self._seen = addresses
        try:
            await self._sync(addresses)
        except (OSError, AnnounceError, ZeroconfError) as exc:
            self._retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S
            log.warning(
                "announcing %s.local on %s failed (%s); trying again in %.0f s",
                self.hostname,
                ", ".join(addresses),
                exc,
                RETRY_AFTER_FAILURE_S,
            )
        else:
            self._retry_at = None

    async def _sync(self, addresses: tuple[str, ...]) -> None:
        async with self._lock:
            await self._withdraw()
            if addresses:
                await self._register(addresses)

    async def _withdraw(self) -> None:
        zc, self._zc = self._zc, None
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.close()
        self._infos = []
        self._addresses = ()
        if zc is not None:
            await zc.async_unregister_all_services()
            await zc.async_close()

    async def _register(self, addresses: tuple[str, ...]) -> None:
        # Fresh sockets each time: zeroconf joins the multicast group on the
        # interfaces that exist when it starts, so a late Wi-Fi needs new ones.
        zc = AsyncZeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)
        self._zc = zc
        self._claim = HostClaim(addresses, self._conflict)
        self.hostname = await self._claim_hostname(self._claim)
        self._txt[TXT_HOST] = f"{self.hostname}.local"
        save_chosen(self._data_dir, self.requested_hostname, self.hostname)
        if self.on_name is not None:
            self.on_name(self.hostname)
        self._addresses = addresses
        infos = [
            self._service_info(t, f"{self.hostname}.{t}", addresses)
            for t in (SERVICE_TYPE, HTTP_SERVICE_TYPE)
        ]
        # Both probes run at once: each takes about a second.
        broadcasts = await asyncio.gather(
            *(zc.async_register_service(info, allow_name_change=True) for info in infos)
        )
        # Let the first announcements go out before any update: interleaved,
        # a late old record would overwrite the new one in browsers' caches.
        await asyncio.gather(*broadcasts)
        for info in infos:
            wanted = f"{self.hostname}.{info.type}"
            if info.name != wanted:
                log.warning("service name %s is taken on this network; using %s", wanted, info.name)
        self._infos = infos
        log.info("announced %s.local (%s) on port %d", self.hostname, ", ".join(addresses), self.http_port)

    async def _claim_hostname(self, claim: HostClaim) -> str:
        """The kept name, else the first of ``name``, ``name-2``, ... that no other device holds."""
        base = self.requested_hostname
        candidates = [self.hostname] if self.hostname != base else []
        candidates += [base] + [f"{base}-{n}" for n in range(2, MAX_RENAMES + 1)]
        for name in dict.fromkeys(candidates):
            owner = await claim.probe(name)
            if owner is None:
                if name != base:
                    log.warning(
                        "host name %s.local is taken on this network; announcing as %s.local",
                        base,
                        name,
                    )
                return name
            log.info("%s.local is answered by %s; trying another name", name, owner)
        raise AnnounceError(
            f"host names {base}.local to {base}-{MAX_RENAMES}.local are all taken on this network"
        )

    def _conflict(self, name: str, other: str) -> None:
        """Another device answers for our name (section 9): probe again, rename if it holds it."""
        if self._reclaim is not None and not self._reclaim.done():
            return
        log.warning("%s also answers for %s.local; probing for the name again", other, name)
        self._reclaim = asyncio.get_running_loop().create_task(self._try_sync(self._seen))

    def _service_info(self, service_type: str, name: str, addresses: tuple[str, ...]) -> AsyncServiceInfo:
        txt = self._txt if service_type == SERVICE_TYPE else {"path": "/"}
        return AsyncServiceInfo(
            service_type,
            name,
            port=self.http_port,
            properties=txt,
            server=f"{self.hostname}.local.",
            parsed_addresses=list(addresses),
        )
