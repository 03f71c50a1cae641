"""Putting the web app on the network: plain HTTP, and HTTPS when asked for.

Both servers share one front door (the Host check, body limits, the
redirect of plain HTTP from the LAN to HTTPS) and one connection table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tornado.web import Application

from appliance.web.frontdoor import FrontDoor
from appliance.web.hosts import DeviceNames, interface_addresses
from appliance.web.server import ConnectionCaps, GuardedHTTPServer
from appliance.web.tls import ensure_certificate, server_context

log = logging.getLogger(__name__)


@dataclass
class WebServers:
    """The listening servers and the names they answer to."""

    names: DeviceNames
    servers: list[GuardedHTTPServer]

    def stop(self) -> None:
        """Stop accepting connections."""
        for server in self.servers:
            server.stop()

    async def close_all_connections(self) -> None:
        """Close the open HTTP connections (WebSockets close with their sessions)."""
        for server in self.servers:
            await server.close_all_connections()


def start_web(
    app: Application,
    *,
    data_dir: Path,
    http_port: int,
    https_port: int | None,
    bind: str,
    host_names: Iterable[str],
    allowed_hosts: Iterable[str] = (),
) -> WebServers:
    """Listen on ``http_port`` (and ``https_port`` when not None) with the app behind the front door."""
    device_names = DeviceNames(host_names, allowed_hosts)
    tls = None
    if https_port is not None:
        # Before anything listens: a certificate that cannot be used stops the start in words.
        addresses = interface_addresses() | {"127.0.0.1", "::1"}
        cert, key = ensure_certificate(data_dir, device_names.names, addresses)
        tls = server_context(cert, key)
    caps = ConnectionCaps()
    door = FrontDoor(app, device_names, https_port, caps)
    http = GuardedHTTPServer(door, caps=caps)
    http.listen(http_port, address=bind)
    servers = [http]
    if https_port is not None:
        https = GuardedHTTPServer(door, ssl_options=tls, caps=caps)
        https.listen(https_port, address=bind)
        servers.append(https)
        log.info("HTTPS on port %d; plain HTTP answers other machines with a redirect", https_port)
    return WebServers(device_names, servers)
