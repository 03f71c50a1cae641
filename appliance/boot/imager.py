"""Raspberry Pi Imager's OS customisation, read from the boot partition as our settings.

Imager writes its settings onto the card's FAT partition in one of three
shapes, depending on its version and the image's ``init_format``:

- cloud-init NoCloud files (Imager 1.8 and later): ``user-data`` (host name,
  time zone, a user with a crypt hash and SSH keys), ``network-config``
  (netplan v2 with one Wi-Fi network, its pre-shared key and regulatory
  domain), ``meta-data`` (an instance id only);
- the legacy files: ``ssh`` or ``ssh.txt`` (turn SSH on), ``userconf.txt``
  (``user:crypt-hash``) and ``wpa_supplicant.conf``;
- a ``firstrun.sh`` script named by ``systemd.run=`` in ``cmdline.txt``
  (:mod:`appliance.boot.firstrun`).

The device does not run cloud-init: it reads the small subset Imager writes,
with PyYAML's ``safe_load`` (no object construction), checks every value with
the same checks as ``micarray.txt``, and ignores the rest (packages, keyboard,
``runcmd``), saying so. Imager's user becomes nothing of ours: its password
hash becomes the web app's admin password and its keys log in as root.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appliance.boot import bootconfig, cryptpass
from appliance.boot.bootconfig import BootConfigError, Problem

USER_DATA = "user-data"
NETWORK_CONFIG = "network-config"
META_DATA = "meta-data"
USERCONF = ("userconf.txt", "userconf")
SSH_FLAGS = ("ssh", "ssh.txt")
WPA_CONF = "wpa_supplicant.conf"
#: Imager's files are a few hundred bytes; checked before reading.
MAX_FILE_BYTES = 64 * 1024
#: Our key for Imager's password, which is a crypt(3) hash, never plaintext.
PASSWORD_HASH = "ADMIN_PASSWORD_HASH"
WIFI_HIDDEN = "WIFI_HIDDEN"
#: What user-data and network-config hold once applied (no secret, nothing to do).
DONE_NOTE = (
    "# This file was written by Raspberry Pi Imager. The microphone-array appliance\n"
    "# read it on {stamp} and removed its content (it held secrets); what it set\n"
    "# is in /var/lib/micarray/firstboot-report.json and on the web app's page.\n"
)
#: What user-data may hold that the device reads, or knowingly leaves alone.
USER_DATA_IGNORED = (
    "manage_resolv_conf", "packages", "apt", "keyboard", "enable_ssh",
    "ssh_pwauth", "rpi", "runcmd", "preserve_hostname", "locale",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Found:
    """One value read from one of Imager's files."""

    value: str
    """The value after the same checks micarray.txt's values pass."""
    source: str
    """The file it came from, as named on the boot partition."""


@dataclass(slots=True)
class ImagerConfig:
    """Everything Imager's files asked for, with where each came from."""

    values: dict[str, Found] = field(default_factory=dict)
    """By micarray.txt's key names, plus PASSWORD_HASH and WIFI_HIDDEN."""
    ssh_keys: list[Found] = field(default_factory=list)
    """Public keys for root, in file order, without repeats."""
    problems: list[Problem] = field(default_factory=list)
    """Values or files that were refused (key: the file name; line 0)."""
    notes: list[str] = field(default_factory=list)
    """What was read but deliberately not used, in words."""
    consumed: list[Path] = field(default_factory=list)
    """Files that were read and must not stay (they hold secrets, or are done)."""

    def put(self, key: str, value: str, source: str, check: Callable[[str], str]) -> None:
        """Check and keep one value; the first file to set a key keeps it."""
        try:
            checked = check(value)
        except (BootConfigError, cryptpass.CryptHashError) as exc:
            self.problem(source, str(exc))
            return
        if key in self.values:
            self.notes.append(f"{source}: {key} already set by {self.values[key].source}; not used")
            return
        self.values[key] = Found(checked, source)

    def add_key(self, value: str, source: str) -> None:
        """Check and keep one SSH public key."""
        try:
            key = bootconfig.check_ssh_key(value)
        except BootConfigError as exc:
            self.problem(source, str(exc))
            return
        if key not in (k.value for k in self.ssh_keys):
            self.ssh_keys.append(Found(key, source))

    def problem(self, source: str, message: str) -> None:
        """Record a refusal; never with a secret value in it."""
        self.problems.append(Problem(0, source, message))


def read_text(path: Path, cfg: ImagerConfig) -> str | None:
    """A small UTF-8 file's text, or None (missing, or refused with a problem)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    cfg.consumed.append(path)
    if len(raw) > MAX_FILE_BYTES:
        cfg.problem(path.name, f"{path.name} is larger than {MAX_FILE_BYTES // 1024} KiB; it was not read")
        return None
    try:
        return raw.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        cfg.problem(path.name, f"{path.name} is not UTF-8 text (byte {exc.start}); it was not read")
        return None


def load_yaml(text: str, name: str, cfg: ImagerConfig) -> dict[str, Any] | None:
    """The file as a mapping, safely; a syntax error is reported by line, never quoted."""
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        # Deep nesting within the size cap: PyYAML's pure-Python loader recurses.
        cfg.problem(name, f"{name} is nested too deeply; it was not used")
        return None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        cfg.problem(name, f"{name} is not valid YAML{where}; it was not used")
        return None
    if data is None:
        return None
    if not isinstance(data, dict):
        cfg.problem(name, f"{name} does not hold a YAML mapping; it was not used")
        return None
    return data


def _text(value: object) -> str | None:
    """A YAML scalar as text (YAML may read a host name like ``1234`` as a number)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def from_user_data(data: dict[str, Any], cfg: ImagerConfig) -> None:
    """Host name, time zone, the first user's password hash and every SSH key."""
    name = USER_DATA
    for key, check, ours in (
        ("hostname", bootconfig.check_hostname, bootconfig.HOSTNAME),
        ("timezone", bootconfig.check_timezone, bootconfig.TIMEZONE),
    ):
        value = _text(data.get(key))
        if value:
            cfg.put(ours, value, name, check)
    users = data.get("users")
    for user in users if isinstance(users, list) else []:
        if not isinstance(user, dict):
            continue
        crypted = user.get("passwd")
        if isinstance(crypted, str) and crypted and user.get("lock_passwd") is not True:
            cfg.put(PASSWORD_HASH, crypted, name, cryptpass.check_hash)
        _keys(user.get("ssh_authorized_keys"), name, cfg)
    _keys(data.get("ssh_authorized_keys"), name, cfg)
    skipped = sorted(k for k in data if k in USER_DATA_IGNORED)
    if skipped:
        cfg.notes.append(f"{name}: {', '.join(skipped)} not used (this device does not run cloud-init)")


def _keys(value: object, source: str, cfg: ImagerConfig) -> None:
    for key in value if isinstance(value, list) else []:
        if isinstance(key, str):
            cfg.add_key(key.strip(), source)


def from_network_config(data: dict[str, Any], cfg: ImagerConfig) -> None:
    """The first Wi-Fi network of netplan v2 (with or without Imager's ``network:`` wrapper)."""
    name = NETWORK_CONFIG
    if isinstance(data.get("network"), dict):
        data = data["network"]
    wifis = data.get("wifis")
    for iface in wifis.values() if isinstance(wifis, dict) else []:
        if not isinstance(iface, dict) or not isinstance(iface.get("access-points"), dict):
            continue
        country = _text(iface.get("regulatory-domain"))
        if country:
            cfg.put(bootconfig.WIFI_COUNTRY, country, name, bootconfig.check_country)
        points = iface["access-points"]
        if len(points) > 1:
            cfg.notes.append(f"{name}: {len(points)} Wi-Fi networks; only the first is used")
        for ssid, point in list(points.items())[:1]:
            _access_point(str(ssid), point if isinstance(point, dict) else {}, cfg)
        return


def _access_point(ssid: str, point: dict[str, Any], cfg: ImagerConfig) -> None:
    name = NETWORK_CONFIG
    cfg.put(bootconfig.WIFI_SSID, ssid, name, bootconfig.check_ssid)
    password = point.get("password")
    auth = point.get("auth")
    if password is None and isinstance(auth, dict):
        password = auth.get("password")
    if isinstance(password, str) and password:
        cfg.put(bootconfig.WIFI_PASSPHRASE, password, name, bootconfig.check_passphrase)
    if point.get("hidden") is True:
        cfg.values.setdefault(WIFI_HIDDEN, Found("1", name))


def from_userconf(text: str, source: str, cfg: ImagerConfig) -> None:
    """``user:crypt-hash`` on one line; the user name is not used (there is no such user here)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    _user, sep, crypted = line.partition(":")
    if not sep:
        cfg.problem(source, f"{source} is not one user:password-hash line; it was not used")
        return
    cfg.put(PASSWORD_HASH, crypted.strip(), source, cryptpass.check_hash)


_WPA_SETTING = re.compile(r"^\s*(\w+)\s*=\s*(.*?)\s*$")


def from_wpa_supplicant(text: str, cfg: ImagerConfig) -> None:
    """Country and the first ``network={...}`` block's ssid, psk and scan_ssid."""
    name = WPA_CONF
    blocks = 0
    network: dict[str, str] = {}
    for line in text.splitlines():
        if re.match(r"^\s*network\s*=\s*\{", line):
            blocks += 1
            continue
        match = _WPA_SETTING.match(line)
        if not match:
            continue
        key, value = match.groups()
        if blocks == 0 and key == "country":
            cfg.put(bootconfig.WIFI_COUNTRY, value, name, bootconfig.check_country)
        elif blocks == 1:
            network[key] = value
    if blocks > 1:
        cfg.notes.append(f"{name}: {blocks} networks; only the first is used")
    ssid = _wpa_string(network.get("ssid", ""))
    if ssid is None or not ssid:
        if blocks:
            cfg.problem(name, f"{name}: the network's ssid is missing or not readable")
        return
    cfg.put(bootconfig.WIFI_SSID, ssid, name, bootconfig.check_ssid)
    psk = _wpa_string(network.get("psk", ""))
    if psk:
        cfg.put(bootconfig.WIFI_PASSPHRASE, psk, name, bootconfig.check_passphrase)
    if network.get("scan_ssid") == "1":
        cfg.values.setdefault(WIFI_HIDDEN, Found("1", name))


def _wpa_string(value: str) -> str | None:
    """wpa_supplicant's ``"quoted"`` text, or bare hex (an SSID in hex, or a 64-digit key)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return value
    if re.fullmatch(r"(?:[0-9a-fA-F]{2}){1,32}", value):
        try:
            return bytes.fromhex(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def read_boot_partition(boot_dir: Path) -> ImagerConfig:
    """Every Imager file on the partition that is there, cloud-init first, then the legacy files."""
    cfg = ImagerConfig()
    for name, reader in ((USER_DATA, from_user_data), (NETWORK_CONFIG, from_network_config)):
        text = read_text(boot_dir / name, cfg)
        if text is not None and text.startswith(DONE_NOTE.split("{", 1)[0]):
            cfg.consumed.pop()  # applied at an earlier boot
            continue
        data = load_yaml(text, name, cfg) if text is not None else None
        if data is not None:
            reader(data, cfg)
    for name in USERCONF:
        text = read_text(boot_dir / name, cfg)
        if text is not None:
            from_userconf(text, name, cfg)
    text = read_text(boot_dir / WPA_CONF, cfg)
    if text is not None:
        from_wpa_supplicant(text, cfg)
    for name in SSH_FLAGS:
        if (boot_dir / name).exists():
            cfg.consumed.append(boot_dir / name)
            cfg.notes.append(f"{name}: SSH is always on here, for keys only")
    return cfg
