"""Naming a device: ``host``, ``name.local`` or ``host:port`` of its web port."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = 80


class DeviceNameError(ValueError):
    """A device name that cannot be understood."""


class DeviceNotFound(DeviceNameError):
    """A ``name.local`` that no device answered for over mDNS."""


@dataclass(frozen=True, slots=True)
class DeviceAddress:
    """Where a device's web port is."""

    host: str
    port: int
    name: str = ""
    """The ``name.local`` this address was resolved from, if any."""

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def is_local_name(host: str) -> bool:
    """True for ``something.local`` (any case, trailing dot allowed)."""
    name = host.lower().rstrip(".")
    return name.endswith(".local") and len(name) > len(".local")


def parse_device(spec: str, default_port: int = DEFAULT_PORT) -> DeviceAddress:
    """Split ``host``, ``host:port``, ``[v6]:port`` or ``name.local`` into host and port.

    Names are not resolved here; ``resolve_device`` does that.
    """
    text = spec.strip()
    if text.startswith(("http://", "https://")):
        text = text.split("://", 1)[1].rstrip("/")
    if not text:
        raise DeviceNameError("device name is empty; use host, name.local or host:port")
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise DeviceNameError(f"device {spec!r} has an unclosed '['")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            port = _port(spec, rest.removeprefix(":"))
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(spec, port_text)
    if not host or "/" in host or " " in host:
        raise DeviceNameError(f"device {spec!r} is not a host, name.local or host:port")
    return DeviceAddress(host, port)


def _port(spec: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise DeviceNameError(f"device {spec!r} has port {text!r}; use a number from 1 to 65535")
    return int(text)


def resolve_device(
    spec: str, default_port: int = DEFAULT_PORT, timeout_s: float | None = None
) -> DeviceAddress:
    """Parse ``spec`` and resolve a ``.local`` name to an address over mDNS.

    Other names are left to the system resolver when connecting. Raises
    :class:`DeviceNotFound` when no device answers within ``timeout_s``
    (``browserinterface.localname.RESOLVE_TIMEOUT_S`` by default).
    """
    address = parse_device(spec, default_port)
    if not is_local_name(address.host):
        return address
    # mDNS (zeroconf) is loaded only for a name.local: a script on the device never needs it.
    from browserinterface.localname import LocalNameNotFound, resolve_local  # noqa: PLC0415

    try:
        ip = resolve_local(address.host, timeout_s)
    except LocalNameNotFound as exc:
        raise DeviceNotFound(str(exc)) from exc
    return DeviceAddress(ip, address.port, name=address.host.rstrip("."))
