"""The sandbox of a run's transient systemd unit, as data.

The properties ``systemd-run`` gets for one run (``SystemdRunLauncher`` in
``appliance.runs.systemd_launcher``), and the same written out as a unit
file, so ``systemd-analyze verify`` and ``security`` can judge exactly what
is made (tests/test_isolation_units.py).  Kept beside the template
``systemd/micarray-run@.service``, whose sandbox it follows, plus a uid per
run, a hidden run root and data directory, and a private ``/dev/shm``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from appliance.runs.launchbase import LaunchSpec, RunLimits

#: Sandbox of every transient run unit, as in ``systemd/micarray-run@.service``.
SANDBOX_PROPERTIES = {
    "KillMode": "control-group",
    "TimeoutStopSec": "1s",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "PrivateMounts": "yes",
    "RemoveIPC": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "SystemCallErrorNumber": "EPERM",
    "UMask": "0077",
}


def transient_properties(
    spec: LaunchSpec, limits: RunLimits, env_file: Path, hidden: Sequence[Path] = ()
) -> list[tuple[str, str]]:
    """Every property of one run's transient unit (pure: the unit is read from this).

    Each run sees its own directory and none of its siblings (an empty
    file system over the run root, its own directory bound back), nothing
    of ``hidden`` (the data directory), its own /tmp, /var/tmp and
    /dev/shm, and with ``network == "api"`` only loopback.
    """
    props = [
        ("MemoryMax", str(limits.memory_bytes)),
        ("MemorySwapMax", "0"),
        ("CPUQuota", f"{limits.cpu_percent}%"),
        ("TasksMax", str(limits.max_processes)),
        ("LimitCORE", "0"),
        ("EnvironmentFile", str(env_file)),
        *SANDBOX_PROPERTIES.items(),
        ("SystemCallFilter", "~@privileged"),
        ("TemporaryFileSystem", f"{spec.run_dir.parent}:ro /dev/shm"),
        # The run's own folders (its directory, its project, its output), bound back
        # at their own paths over the empty run root and the hidden data directory.
        ("BindPaths", " ".join(str(d) for d in spec.writable_dirs)),
        ("ReadWritePaths", " ".join(str(d) for d in spec.writable_dirs)),
    ]
    if hidden:
        props.append(("InaccessiblePaths", " ".join(f"-{path}" for path in hidden)))
    ring = spec.env.get("BI_RING_SOCKET")
    if ring:
        # The audio ring's socket, at its own path over the empty run root (docs/protocol.md).
        props.append(("BindPaths", f"-{ring}"))
    if limits.network == "api":
        props += [("IPAddressDeny", "any"), ("IPAddressAllow", "localhost")]
    return props


def unit_file_text(props: Sequence[tuple[str, str]], argv: Sequence[str], description: str) -> str:
    """The transient unit written out as a unit file, for ``systemd-analyze`` to judge."""
    lines = ["[Unit]", f"Description={description}", "", "[Service]", "ExecStart=" + " ".join(argv)]
    lines += [f"{key}={value}" for key, value in props]
    return "\n".join(lines) + "\n"
