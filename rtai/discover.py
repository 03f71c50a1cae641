"""Finding devices on the LAN over mDNS: ``rtai discover [--timeout S] [--json]``.

Every device announces ``_micarray._tcp`` (this module owns the wire names:
the service type and its TXT keys; the device's announcer imports them) and
``_http._tcp`` for browsers. :func:`discover` browses the first for a while
and returns one :class:`DeviceRecord` per device that answered.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from rtai.txt import (
    TXT_API_PORT,
    TXT_CHANNELS,
    TXT_ID,
    TXT_MODEL,
    TXT_PROTOCOL,
    TXT_RATE,
    TXT_RATES,
    TXT_VERSION,
    TXT_WS_PATH,
)

log = logging.getLogger(__name__)

SERVICE_TYPE = "_micarray._tcp.local."
HTTP_SERVICE_TYPE = "_http._tcp.local."


DEFAULT_TIMEOUT_S = 3.0
#: How long one device gets to answer the SRV/TXT/A questions once seen.
RESOLVE_TIMEOUT_MS = 2000

# Everything a malformed TXT record can raise while decoding; caught in one place.
_TXT_ERRORS = (ValueError, UnicodeDecodeError)


class DiscoveryError(RuntimeError):
    """mDNS could not be used at all (no usable network interface, socket refused)."""


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One device as it announces itself."""

    name: str
    """The instance name, e.g. ``micarray`` (or ``micarray-2`` after a rename)."""
    hostname: str
    """The mDNS host name, e.g. ``micarray.local``."""
    addresses: list[str]
    port: int
    """The web and API port (SRV)."""
    device_id: str = ""
    model: str = ""
    channels: int | None = None
    rate: int | None = None
    rates: list[int] = field(default_factory=list)
    api_port: int | None = None
    ws_path: str = ""
    version: str = ""
    protocol: str = ""

    @property
    def url(self) -> str:
        """The web UI's address, by name."""
        suffix = "" if self.port == 80 else f":{self.port}"
        return f"http://{self.hostname}{suffix}/"

    def to_json(self) -> dict[str, object]:
        """A plain dict for ``--json``, with the URL."""
        return {**asdict(self), "url": self.url}


def _int_or_none(text: str) -> int | None:
    return int(text) if text.strip() else None


def parse_txt(properties: Mapping[bytes, bytes | None]) -> dict[str, str]:
    """Decode TXT properties from the network; undecodable entries are dropped."""
    out: dict[str, str] = {}
    for key, value in properties.items():
        try:
            out[key.decode("ascii")] = (value or b"").decode("utf-8")
        except _TXT_ERRORS:
            log.debug("dropping an undecodable TXT entry %r", key)
    return out


def record_from_info(info: AsyncServiceInfo) -> DeviceRecord | None:
    """Build a record from a resolved ``_micarray._tcp`` service, or None when it is unusable."""
    if info.port is None or info.server is None:
        return None
    txt = parse_txt(info.properties)
    name = info.name.removesuffix("." + info.type)
    try:
        rates = [int(r) for r in txt.get(TXT_RATES, "").split(",") if r.strip()]
        return DeviceRecord(
            name=name,
            hostname=info.server.rstrip("."),
            addresses=info.parsed_scoped_addresses(IPVersion.V4Only),
            port=info.port,
            device_id=txt.get(TXT_ID, ""),
            model=txt.get(TXT_MODEL, ""),
            channels=_int_or_none(txt.get(TXT_CHANNELS, "")),
            rate=_int_or_none(txt.get(TXT_RATE, "")),
            rates=rates,
            api_port=_int_or_none(txt.get(TXT_API_PORT, "")),
            ws_path=txt.get(TXT_WS_PATH, ""),
            version=txt.get(TXT_VERSION, ""),
            protocol=txt.get(TXT_PROTOCOL, ""),
        )
    except _TXT_ERRORS as exc:
        log.warning("device %s announces a malformed TXT record (%s); ignoring it", name, exc)
        return None


class _Collector:
    """Resolves each service the browser reports; runs on the loop."""

    def __init__(self, zc: AsyncZeroconf) -> None:
        self._zc = zc
        self.records: dict[str, DeviceRecord] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            self.records.pop(name, None)
            return
        task = asyncio.get_running_loop().create_task(self._resolve(service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, service_type: str, name: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(self._zc.zeroconf, RESOLVE_TIMEOUT_MS):
            log.debug("%s did not answer in %d ms", name, RESOLVE_TIMEOUT_MS)
            return
        record = record_from_info(info)
        if record is not None:
            self.records[name] = record

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def async_discover(timeout: float = DEFAULT_TIMEOUT_S) -> list[DeviceRecord]:
    """Browse for ``timeout`` seconds and return the devices found, sorted by name."""
    if timeout <= 0:
        raise ValueError(f"timeout {timeout} is not positive; use a number of seconds like 3")
    try:
        zc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    except OSError as exc:
        raise DiscoveryError(f"cannot open mDNS sockets: {exc}") from exc
    collector = _Collector(zc)
    browser = AsyncServiceBrowser(zc.zeroconf, [SERVICE_TYPE], handlers=[collector.on_change])
    try:
        await asyncio.sleep(timeout)
    finally:
        await browser.async_cancel()
        await collector.cancel()
        await zc.async_close()
    return sorted(collector.records.values(), key=lambda r: (r.name, r.hostname))


def discover(timeout: float = DEFAULT_TIMEOUT_S) -> list[DeviceRecord]:
    """Blocking form of :func:`async_discover`, for scripts, notebooks and the CLI.

    Inside a running event loop (a Jupyter kernel runs one) it browses on a
    thread of its own, since that loop cannot be run again from within.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(async_discover(timeout))
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rtai-discover") as pool:
        return pool.submit(asyncio.run, async_discover(timeout)).result()


def format_table(records: Sequence[DeviceRecord]) -> str:
    """One line per device: name, web address, model, channels, rates, version."""
    if not records:
        return "no devices found"
    rows = [("NAME", "WEB", "MODEL", "CH", "RATES", "VERSION")]
    for r in records:
        rates = ",".join(str(x) for x in r.rates)
        channels = "" if r.channels is None else str(r.channels)
        rows.append((r.name, r.url, r.model, channels, rates, r.version))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def add_discover_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``discover`` on the ``rtai`` CLI; the handler is in ``func``."""
    parser = subparsers.add_parser(
        "discover", help="list the devices on the LAN", description=__doc__.splitlines()[0]
    )
    _add_arguments(parser)
    parser.set_defaults(func=run_discover)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds to listen for answers (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list")


def run_discover(args: argparse.Namespace) -> int:
    """Run ``rtai discover`` with parsed arguments; returns the exit status."""
    try:
        records = discover(args.timeout)
    except (ValueError, DiscoveryError) as exc:
        print(f"rtai discover: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.to_json() for r in records], indent=2))
    else:
        print(format_table(records))
    return 0


def main_discover(argv: Sequence[str] | None = None) -> int:
    """``rtai discover`` as a stand-alone entry point (``python -m rtai.discover``)."""
    parser = argparse.ArgumentParser(prog="rtai discover", description=__doc__.splitlines()[0])
    _add_arguments(parser)
    return run_discover(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main_discover())
