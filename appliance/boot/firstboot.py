"""First boot (and every boot) of the SD-card image: make the card this device's.

Run as root by ``micarray-firstboot.service`` before the network, SSH and the
appliance start. Each step is idempotent, so the unit runs on every boot:

- grow the root partition and its file system to fill the card;
- make SSH host keys when there are none (the image ships without any);
- give the device a unique id (``device-id`` in the data directory);
- apply ``micarray.txt`` from the FAT boot partition (see
  :mod:`appliance.boot.bootconfig`), report bad lines in the log and in
  ``firstboot-report.json`` for the web app, and rewrite the file without the
  lines it applied and without any plaintext secret.

Every step takes the root directory it works on, so tests run them against a
temporary tree standing in for the root file system.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from appliance.auth import PasswordStore
from appliance.boot import bootconfig, hats, rootgrow
from appliance.boot.bootconfig import BootConfig, BootConfigError, BootFileRefused, Problem, Setting
from appliance.boot.bootreport import REPORT_FILE
from appliance.errors import AuthError
from appliance.sessions import standing_config as standing

log = logging.getLogger(__name__)

SERVICE_USER = "micarray"
BOOT_DIR = "boot/firmware"
DATA_DIR = "var/lib/micarray"
DEVICE_ID_FILE = "device-id"
WIFI_INTERFACE = "wlan0"
HOST_KEY_TYPES = ("ed25519", "ecdsa")
#: Set by Raspberry Pi Imager's files only (a hidden network); see appliance.boot.imager.
WIFI_HIDDEN = "WIFI_HIDDEN"
#: Read by micarray.service at each start (EnvironmentFile= in the image's
#: drop-in), so a value written during boot applies to the same boot.
ENV_FILE = "etc/default/micarray"
PRESET_VARIABLE = "MICARRAY_PRESET"


@dataclass(slots=True)
class Report:
    """What one run did with the boot-partition file, written as JSON for the web app."""

    time: str = ""
    """When the file was applied, UTC."""
    boot_file: str = ""
    """The file's path on the device."""
    applied: list[str] = field(default_factory=list)
    """Keys that were applied."""
    problems: list[Problem] = field(default_factory=list)
    """Lines that were rejected or failed to apply."""
    applied_lines: set[int] = field(default_factory=set)
    """Line numbers that were applied (not in the JSON)."""
    sources: dict[str, str] = field(default_factory=dict)
    """For each applied key, the file on the boot partition that set it."""
    notes: list[str] = field(default_factory=list)
    """What was read and deliberately not used (Raspberry Pi Imager's extras), in words."""

    def to_json(self) -> str:
        """The report as the web app reads it: time, boot_file, applied, sources, problems, notes."""
        body = {
            "time": self.time,
            "boot_file": self.boot_file,
            "applied": self.applied,
            "sources": self.sources,
            "problems": [{"line": p.line, "key": p.key, "message": p.message} for p in self.problems],
            "notes": self.notes,
        }
        return json.dumps(body, indent=2) + "\n"


def service_owner(root: Path) -> tuple[int, int] | None:
    """The appliance user's uid and gid from the tree's own ``/etc/passwd``."""
    try:
        lines = (root / "etc/passwd").read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == SERVICE_USER:
            return int(fields[2]), int(fields[3])
    return None


def give_to_service(root: Path, path: Path) -> None:
    """Hand a data-directory file to the appliance user (when there is one and we may)."""
    owner = service_owner(root)
    if owner is not None and os.geteuid() == 0:
        os.chown(path, *owner)


def ensure_host_keys(root: Path) -> bool:
    """Make SSH host keys when the tree has none; True when keys were made."""
    ssh_dir = root / "etc/ssh"
    if any(ssh_dir.glob("ssh_host_*_key")):
        return False
    ssh_dir.mkdir(parents=True, exist_ok=True)
    # Ed25519 and ECDSA only (the image's sshd_config.d names these two): an
    # RSA key costs seconds of first boot on a Pi and more in QEMU.
    for kind in HOST_KEY_TYPES:
        key = ssh_dir / f"ssh_host_{kind}_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(key)],
            check=True,
            capture_output=True,
        )
    if not any(ssh_dir.glob("ssh_host_*_key")):
        raise OSError(f"ssh-keygen made no host keys in {ssh_dir}")
    log.info("made new SSH host keys")
    return True


def ensure_device_id(root: Path, data_dir: Path) -> str:
    """The device's unique id (16 hex digits), made once and kept in the data directory."""
    path = data_dir / DEVICE_ID_FILE
    try:
        existing = path.read_text().strip()
        if len(existing) == 16 and all(c in "0123456789abcdef" for c in existing):
            return existing
    except FileNotFoundError:
        pass
    device_id = secrets.token_hex(8)
    data_dir.mkdir(parents=True, exist_ok=True)
    _write(path, device_id + "\n", 0o644)
    give_to_service(root, path)
    log.info("device id is %s", device_id)
    return device_id


def apply_hostname(root: Path, name: str, live: bool) -> None:
    """Set ``/etc/hostname`` and the ``127.0.1.1`` line in ``/etc/hosts``."""
    _write(root / "etc/hostname", name + "\n", 0o644)
    hosts = root / "etc/hosts"
    try:
        lines = hosts.read_text().splitlines()
    except FileNotFoundError:
        lines = ["127.0.0.1\tlocalhost", "::1\t\tlocalhost ip6-localhost ip6-loopback"]
    lines = [line for line in lines if not line.startswith("127.0.1.1")]
    lines.append(f"127.0.1.1\t{name}")
    _write(hosts, "\n".join(lines) + "\n", 0o644)
    if live:
        socket.sethostname(name)
    log.info("hostname is %s", name)


def wifi_psk(ssid: str, passphrase: str) -> str:
    """The WPA2 pre-shared key for a passphrase (what ``wpa_passphrase`` prints)."""
    if len(passphrase) == 64 and all(c in "0123456789abcdef" for c in passphrase):
        return passphrase
    key = hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode("utf-8"), 4096, 32)
    return key.hex()


def apply_wifi(
    root: Path, ssid: str, passphrase: str | None, country: str | None, hidden: bool = False
) -> Path:
    """Write wpa_supplicant's file for wlan0; the image's unit starts when it exists."""
    lines = [
        "# Written at boot from micarray.txt; edit here or set WIFI_* there again.",
        "ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev",
        "update_config=1",
    ]
    if country:
        lines.append(f"country={country}")
    # The SSID as hex needs no quoting rules whatever characters it holds.
    lines += ["network={", f"\tssid={ssid.encode('utf-8').hex()}"]
    if hidden:
        lines.append("\tscan_ssid=1")
    if passphrase:
        lines.append(f"\tpsk={wifi_psk(ssid, passphrase)}")
    else:
        lines.append("\tkey_mgmt=NONE")
    lines.append("}")
    path = root / f"etc/wpa_supplicant/wpa_supplicant-{WIFI_INTERFACE}.conf"
    _write(path, "\n".join(lines) + "\n", 0o600)
    log.info("Wi-Fi network %r configured%s", ssid, f" for country {country}" if country else "")
    return path


def apply_password(root: Path, data_dir: Path, password: str) -> None:
    """Store the admin password's hash where the web app reads it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = PasswordStore(data_dir)
    try:
        store.set(password)
    except AuthError as exc:
        raise BootConfigError(str(exc)) from None
    give_to_service(root, data_dir / "password.json")
    log.info("admin password set from the boot partition")


def apply_ssh_keys(root: Path, keys: Sequence[str]) -> int:
    """Add public keys to root's ``authorized_keys``; returns how many were new."""
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = ssh_dir / "authorized_keys"
    try:
        present = path.read_text().splitlines()
    except FileNotFoundError:
        present = []
    new = [key for key in keys if key not in present]
    if new:
        _write(path, "\n".join([*present, *new]) + "\n", 0o600)
    log.info("%d new SSH key(s) for root", len(new))
    return len(new)


def apply_timezone(root: Path, zone: str) -> None:
    """Point ``/etc/localtime`` at the zone and write ``/etc/timezone``."""
    if not (root / "usr/share/zoneinfo" / zone).is_file():
        raise BootConfigError(
            f"time zone {zone!r} is not known; use a name from /usr/share/zoneinfo such as "
            "Europe/Berlin, America/New_York or UTC"
        )
    localtime = root / "etc/localtime"
    localtime.unlink(missing_ok=True)
    localtime.symlink_to(f"/usr/share/zoneinfo/{zone}")
    _write(root / "etc/timezone", zone + "\n", 0o644)
    log.info("time zone is %s", zone)


def apply_preset(root: Path, preset: str) -> None:
    """Record the array preset in the service's environment file (other lines kept)."""
    path = root / ENV_FILE
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = ["# Environment of micarray.service; ARRAY_PRESET in micarray.txt sets the preset."]
    lines = [line for line in lines if not line.startswith(f"{PRESET_VARIABLE}=")]
    lines.append(f"{PRESET_VARIABLE}={preset}")
    _write(path, "\n".join(lines) + "\n", 0o644)
    log.info("array preset is %s", preset)


Action = Callable[[], object]


def _actions(
    root: Path, data_dir: Path, config: BootConfig, live: bool
) -> list[tuple[list[Setting], Action]]:
    """Each accepted setting group with the step that applies it, in a safe order."""
    value = config.get
    acts: list[tuple[list[str], Action]] = [
        ([bootconfig.HOSTNAME], lambda: apply_hostname(root, value(bootconfig.HOSTNAME) or "", live)),
        (
            [bootconfig.WIFI_SSID, bootconfig.WIFI_PASSPHRASE, bootconfig.WIFI_COUNTRY],
            lambda: apply_wifi(
                root,
                value(bootconfig.WIFI_SSID) or "",
                value(bootconfig.WIFI_PASSPHRASE),
                value(bootconfig.WIFI_COUNTRY),
                value(WIFI_HIDDEN) == "1",
            ),
        ),
        (
            [bootconfig.ADMIN_PASSWORD],
            lambda: apply_password(root, data_dir, value(bootconfig.ADMIN_PASSWORD) or ""),
        ),
        ([bootconfig.TIMEZONE], lambda: apply_timezone(root, value(bootconfig.TIMEZONE) or "")),
        ([bootconfig.ARRAY_PRESET], lambda: apply_preset(root, value(bootconfig.ARRAY_PRESET) or "")),
        ([bootconfig.I2S_HAT], lambda: _apply_hat(root, value(bootconfig.I2S_HAT) or "")),
    ]
    out: list[tuple[list[Setting], Action]] = []
    for keys, action in acts:
        # A group runs when its first key (the one it cannot do without) is set.
        if keys[0] in config.settings:
            out.append(([config.settings[k] for k in keys if k in config.settings], action))
    if config.ssh_keys:
        keys = [s.value for s in config.ssh_keys]
        out.append((list(config.ssh_keys), lambda: apply_ssh_keys(root, keys)))
    if config.streams:
        lines = [s.value for s in config.streams]
        out.append((list(config.streams), lambda: standing.add_from_boot(data_dir, lines)))
    return out


def _apply_hat(root: Path, hat: str) -> None:
    try:
        hats.apply_hat(root, root / BOOT_DIR, hat)
    except hats.HatError as exc:
        raise BootConfigError(str(exc)) from None


def apply_config(root: Path, data_dir: Path, config: BootConfig, live: bool) -> Report:
    """Apply every accepted setting; a failing one becomes a problem, the rest still apply."""
    report = Report(problems=list(config.problems))
    for settings, action in _actions(root, data_dir, config, live):
        try:
            action()
        except (BootConfigError, OSError, subprocess.CalledProcessError) as exc:
            report.problems.append(Problem(settings[0].line, settings[0].key, str(exc)))
            continue
        report.applied += [s.key for s in settings]
        report.applied_lines.update(s.line for s in settings)
    return report


def process_boot_file(root: Path, boot_dir: Path, data_dir: Path, live: bool) -> Report | None:
    """Read, apply and rewrite the boot-partition file; None when it asks for nothing."""
    path = boot_dir / bootconfig.FILE_NAME
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    try:
        text = bootconfig.read(path)
    except FileNotFoundError:
        return None
    except BootFileRefused as exc:
        return refuse_boot_file(root, data_dir, path, str(exc), stamp)
    config = bootconfig.parse(text)
    if config.is_empty() and not config.problems and not bootconfig.has_secrets(text):
        return None
    report = Report(boot_file=str(path), time=stamp, problems=list(config.problems))
    try:
        report = apply_config(root, data_dir, config, live)
        report.boot_file, report.time = str(path), stamp
    finally:
        # Even when applying failed in a way nobody foresaw, no secret stays.
        if report.applied_lines or config.superseded or bootconfig.has_secrets(text):
            write_fat(path, bootconfig.rewrite(text, report.applied_lines, stamp, config.superseded))
    for problem in report.problems:
        log.warning("%s", problem)
    report.sources = dict.fromkeys(report.applied, bootconfig.FILE_NAME)
    log.info("applied %s from %s", ", ".join(report.applied) or "nothing", path)
    return report


REFUSED_NOTE = """\
# {name} could not be read at boot on {stamp}:
#   {reason}
# Its content was removed, as it may have held a password. Write the settings
# again (one KEY=VALUE per line, see docs/image.md), saved as UTF-8.
"""


def refuse_boot_file(root: Path, data_dir: Path, path: Path, reason: str, stamp: str) -> Report:
    """Replace a file that cannot be read with a note: nothing in it is applied, nothing stays."""
    write_fat(path, REFUSED_NOTE.format(name=bootconfig.FILE_NAME, stamp=stamp, reason=reason))
    report = Report(time=stamp, boot_file=str(path), problems=[Problem(0, "", reason)])
    log.warning("%s", report.problems[0])
    return report


def write_report(root: Path, data_dir: Path, report: Report) -> Path:
    """Leave the outcome where the web app shows it."""
    path = data_dir / REPORT_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    # Only the service reads it (it shows the problems to the signed-in admin).
    _write(path, report.to_json(), 0o640)
    give_to_service(root, path)
    return path


def _write(path: Path, text: str, mode: int) -> None:
    """Write a small file atomically with the given mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    # The unit's UMask=0077 must not make /etc/hosts unreadable to the service.
    os.fchmod(fd, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_fat(path: Path, text: str) -> None:
    """Replace a file on the FAT partition: no modes there, so no chmod."""
    tmp = path.with_name(path.name + ".new")
    with tmp.open("w", encoding="utf-8", newline="\r\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run(root: Path, boot_dir: Path, data_dir: Path, grow: bool) -> Report | None:
    """Every first-boot step, each one independent of the others' failure."""
    live = root == Path("/")
    if grow and live:
        try:
            rootgrow.grow_root()
        except (OSError, subprocess.CalledProcessError, rootgrow.GrowError) as exc:
            log.error("could not grow the root file system: %s", exc)
    try:
        ensure_host_keys(root)
    except (OSError, subprocess.CalledProcessError) as exc:
        log.error("could not make SSH host keys: %s", exc)
    ensure_device_id(root, data_dir)
    report = process_boot_file(root, boot_dir, data_dir, live)
    # Imager's files after micarray.txt: a key micarray.txt set is not set again.
    from appliance.boot import imagerboot  # noqa: PLC0415 (it builds on this module)

    report = imagerboot.process(root, boot_dir, data_dir, live, report)
    if report is not None:
        write_report(root, data_dir, report)
    # The firmware applies overlays only when it starts: once, after a HAT change.
    if live and report is not None and bootconfig.I2S_HAT in report.applied:
        log.warning("the I2S HAT's overlay is loaded at the next boot: restarting once")
        subprocess.run(["systemctl", "--no-block", "reboot"], check=False)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``appliance firstboot``: run the first-boot steps (as root, from the unit)."""
    parser = argparse.ArgumentParser(prog="appliance firstboot", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/"), help="root file system (default /)")
    parser.add_argument("--boot-dir", type=Path, help=f"FAT boot partition (default ROOT/{BOOT_DIR})")
    parser.add_argument("--data-dir", type=Path, help=f"data directory (default ROOT/{DATA_DIR})")
    parser.add_argument("--no-grow", action="store_true", help="do not grow the root partition")
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    root: Path = args.root
    report = run(
        root,
        args.boot_dir or root / BOOT_DIR,
        args.data_dir or root / DATA_DIR,
        grow=not args.no_grow,
    )
    # Bad lines are reported in the log and the report file; they must not
    # mark the boot as failed, since everything else was applied.
    if report is not None and report.problems:
        log.warning("%d problem(s) in %s", len(report.problems), report.boot_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
