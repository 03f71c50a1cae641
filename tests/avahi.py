"""avahi, a resolver nobody here wrote, running inside one test namespace.

``avahi-resolve`` and ``avahi-browse`` talk to ``avahi-daemon`` over D-Bus, so
the namespace gets a private ``dbus-daemon`` of its own (a socket in the
test's temporary directory, named to both through
``DBUS_SYSTEM_BUS_ADDRESS``) and a daemon with its own configuration. The
daemon's fixed pid-file and socket directory, ``/run/avahi-daemon``, lives
on a tmpfs mounted in the daemon's own mount namespace (``ip netns exec``
makes one per command), so nothing outside the test sees or clashes with it.
The daemon publishes nothing of its own: it only asks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns import Host, wait_for_line

requires_avahi = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("avahi-daemon", "avahi-resolve", "avahi-browse", "dbus-daemon")),
    reason="needs avahi-daemon, avahi-utils and dbus-daemon (apt-get install avahi-daemon avahi-utils)",
)

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

AVAHI_CONFIG = """[server]
host-name=avahi-laptop
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
ratelimit-interval-usec=0
[wide-area]
enable-wide-area=no
[publish]
disable-publishing=yes
publish-addresses=no
publish-hinfo=no
publish-workstation=no
[reflector]
[rlimits]
"""


class Avahi:
    """Ask the namespace's avahi-daemon for names and services."""

    def __init__(self, host: Host, env: dict[str, str], daemon: subprocess.Popen[str], ready: str) -> None:
        self.host = host
        self.env = env
        self.daemon = daemon
        """The avahi-daemon process (its log is on stderr)."""
        self.ready = ready
        """Its start-up line (``Server startup complete. Host name is NAME.local ...``)."""

    def resolve(self, name: str) -> str:
        """The IPv4 address avahi finds for ``name`` (``avahi-resolve -4 -n``)."""
        out = self.host.run(["avahi-resolve", "-4", "-n", name], env=self.env, timeout=30)
        fields = out.split()
        if len(fields) != 2 or fields[0] != name:
            raise AssertionError(f"avahi-resolve -n {name} printed {out!r}")
        return fields[1]

    def browse(self, service_type: str) -> list[list[str]]:
        """Resolved services of a type, as ``avahi-browse -rpt`` fields (the ``=`` lines)."""
        out = self.host.run(["avahi-browse", "-r", "-p", "-t", service_type], env=self.env, timeout=30)
        return [line.split(";") for line in out.splitlines() if line.startswith("=")]


@contextlib.contextmanager
def avahi(host: Host, workdir: Path, publish_as: str | None = None) -> Iterator[Avahi]:
    """A private D-Bus and an avahi-daemon in ``host``'s namespace, stopped on exit.

    ``publish_as`` makes the daemon claim that host name for its address
    (probing first, as avahi does); by default it publishes nothing.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    socket = workdir / "system_bus_socket"
    (workdir / "bus.conf").write_text(BUS_CONFIG.format(socket=socket))
    config = AVAHI_CONFIG
    if publish_as is not None:
        config = (
            config.replace("host-name=avahi-laptop", f"host-name={publish_as}")
            .replace("disable-publishing=yes", "disable-publishing=no")
            .replace("publish-addresses=no", "publish-addresses=yes")
        )
    (workdir / "avahi-daemon.conf").write_text(config)
    env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={socket}"}
    bus = host.spawn(["dbus-daemon", "--nofork", "--nopidfile", f"--config-file={workdir / 'bus.conf'}",
                      "--print-address=2"], env=env)  # fmt: skip
    wait_for_line(bus, "unix:path=")
    daemon = host.spawn(
        [
            "sh",
            "-c",
            'mount -t tmpfs none /run && mkdir /run/avahi-daemon && exec avahi-daemon -f "$1" '
            "--no-drop-root --no-chroot --no-rlimits --no-proc-title",
            "avahi",
            str(workdir / "avahi-daemon.conf"),
        ],
        env=env,
    )
    ready = wait_for_line(daemon, "Server startup complete", deadline_s=30)
    yield Avahi(host, env, daemon, ready)
