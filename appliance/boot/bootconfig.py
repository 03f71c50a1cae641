"""The settings file on the SD card's FAT boot partition (``micarray.txt``).

A user edits it on any computer before the first boot: one ``KEY=VALUE`` per
line, ``#`` starts a comment line, blank lines are ignored, a value may be
wrapped in double quotes to keep leading or trailing spaces. Every value is
checked here, in one place; a bad line becomes a :class:`Problem` naming the
line, the value and what is allowed, and the other lines still apply.

After the device has applied the file, :func:`rewrite` turns every applied line
into a comment and removes secrets (the admin password, the Wi-Fi passphrase)
entirely, so the plaintext never stays on the card. A line the device cannot
read is removed as well (it might hold a secret), and so is the value of an
unknown setting (a misspelt ``ADMIN_PASWORD`` is still a password); no message
ever repeats such a line.

:func:`read` accepts UTF-8 (with or without a byte-order mark) and UTF-16 with
a byte-order mark (Windows Notepad's "Unicode"), at most :data:`MAX_FILE_BYTES`;
it refuses anything else in words, before decoding more than that.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from appliance.boot import hats
from appliance.capture.sources.arrays import preset_names
from appliance.sessions.standing_config import StandingError, parse_standing

FILE_NAME = "micarray.txt"
#: Far more than the documented file needs; checked before the file is read.
MAX_FILE_BYTES = 64 * 1024

HOSTNAME = "HOSTNAME"
WIFI_COUNTRY = "WIFI_COUNTRY"
WIFI_SSID = "WIFI_SSID"
WIFI_PASSPHRASE = "WIFI_PASSPHRASE"
ADMIN_PASSWORD = "ADMIN_PASSWORD"
SSH_AUTHORIZED_KEY = "SSH_AUTHORIZED_KEY"
TIMEZONE = "TIMEZONE"
ARRAY_PRESET = "ARRAY_PRESET"
I2S_HAT = "I2S_HAT"
STREAM = "STREAM"
"""A standing stream, ``NAME ADDRESS:PORT [CHANNELS]`` (``appliance.sessions.standing``)."""

#: Keys whose values are removed from the file once read, applied or not.
SECRET_KEYS = frozenset({ADMIN_PASSWORD, WIFI_PASSPHRASE})
#: Keys that may appear on several lines (each line adds one value).
REPEATABLE_KEYS = frozenset({SSH_AUTHORIZED_KEY, STREAM})

SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
_HEX_PSK = re.compile(r"^[0-9a-fA-F]{64}$")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


class BootConfigError(ValueError):
    """A value in the boot-partition file that the device does not accept."""


class BootFileRefused(BootConfigError):
    """The whole file cannot be read (size or encoding); the message says why."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One accepted ``KEY=VALUE`` line."""

    key: str
    """The setting's name, upper case."""
    value: str
    """The value after unquoting and normalising (for example a lower-case hostname)."""
    line: int
    """1-based line number in the file, for messages."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One line that was not applied, and why."""

    line: int
    """1-based line number (0 when the problem is about the file as a whole)."""
    key: str
    """The setting's name, or an empty string when the line has none."""
    message: str
    """What was wrong and what is allowed."""

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{FILE_NAME} {where}: {self.message}"


@dataclass(slots=True)
class BootConfig:
    """The parsed file: accepted settings and the problems found."""

    settings: dict[str, Setting] = field(default_factory=dict)
    """Accepted single-valued settings by key."""
    ssh_keys: list[Setting] = field(default_factory=list)
    """Accepted ``SSH_AUTHORIZED_KEY`` lines, in file order."""
    streams: list[Setting] = field(default_factory=list)
    """Accepted ``STREAM`` lines (standing streams), in file order."""
    problems: list[Problem] = field(default_factory=list)
    """Lines that were rejected."""
    superseded: set[int] = field(default_factory=set)
    """Lines of a key that a later line sets again (only the last one counts)."""

    def get(self, key: str) -> str | None:
        """The accepted value of ``key``, or None."""
        setting = self.settings.get(key)
        return None if setting is None else setting.value

    def is_empty(self) -> bool:
        """True when the file asks for nothing (only comments, or nothing accepted)."""
        return not self.settings and not self.ssh_keys and not self.streams


def check_hostname(value: str) -> str:
    """A host name as one DNS label: letters, digits, hyphens; stored lower case."""
    name = value.lower()
    if not _HOSTNAME.match(name):
        raise BootConfigError(
            f"hostname {value!r} is not valid; use 1-63 letters, digits and hyphens, "
            "not starting or ending with a hyphen"
        )
    return name


def check_country(value: str) -> str:
    """A two-letter ISO 3166 country code, as Wi-Fi regulations need."""
    code = value.upper()
    if not _COUNTRY.match(code):
        raise BootConfigError(
            f"Wi-Fi country {value!r} is not valid; use a two-letter ISO 3166 code such as GB, DE, US"
        )
    return code


def check_ssid(value: str) -> str:
    """A Wi-Fi network name: 1 to 32 bytes of UTF-8."""
    size = len(value.encode("utf-8"))
    if not 1 <= size <= 32:
        raise BootConfigError(f"Wi-Fi SSID {value!r} is {size} bytes long; it must be 1 to 32 bytes")
    return value


def check_passphrase(value: str) -> str:
    """A WPA2 passphrase (8-63 printable ASCII characters) or a 64-digit hex key."""
    if _HEX_PSK.match(value):
        return value.lower()
    if not 8 <= len(value) <= 63 or not all(" " <= c <= "~" for c in value):
        raise BootConfigError(
            f"the Wi-Fi passphrase has {len(value)} characters; WPA2 needs 8 to 63 printable "
            "ASCII characters (or a 64-digit hex key)"
        )
    return value


def check_password(value: str) -> str:
    """The admin password; its length rule is the password store's, checked when stored."""
    if not value:
        raise BootConfigError("the admin password is empty")
    return value


def check_ssh_key(value: str) -> str:
    """One OpenSSH public key line: type, base64 key, optional comment."""
    parts = value.split(None, 2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise BootConfigError(
            f"SSH key {value[:40]!r} is not an OpenSSH public key line; it must start with one of "
            + ", ".join(SSH_KEY_TYPES)
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise BootConfigError(f"SSH key of type {parts[0]} has a key part that is not base64") from None
    # The key blob repeats its type as a length-prefixed string.
    if blob[4 : 4 + len(parts[0])] != parts[0].encode():
        raise BootConfigError(f"SSH key of type {parts[0]} does not hold a {parts[0]} key")
    return " ".join(parts)


def check_timezone(value: str) -> str:
    """An IANA time zone name such as ``Europe/Berlin`` (checked against tzdata when applied)."""
    if not _TIMEZONE.match(value) or ".." in value:
        raise BootConfigError(
            f"time zone {value!r} is not valid; use an IANA name such as Europe/Berlin or UTC"
        )
    return value


def check_preset(value: str) -> str:
    """One of the array presets the service knows (``appliance.capture.sources.arrays``)."""
    name = value.lower()
    known = preset_names()
    if name not in known:
        raise BootConfigError(f"array preset {value!r} is not known; use one of {', '.join(known)}")
    return name


def check_hat(value: str) -> str:
    """An I2S HAT the image has an overlay for (``appliance.boot.hats``), or ``none``."""
    try:
        return hats.check_hat(value)
    except hats.HatError as exc:
        raise BootConfigError(str(exc)) from None


def check_stream(value: str) -> str:
    """A standing stream line, normalised (``lab 239.255.7.1:5004 1-4``)."""
    try:
        return parse_standing(value).text()
    except StandingError as exc:
        raise BootConfigError(str(exc)) from None


CHECKS: dict[str, Callable[[str], str]] = {
    HOSTNAME: check_hostname,
    WIFI_COUNTRY: check_country,
    WIFI_SSID: check_ssid,
    WIFI_PASSPHRASE: check_passphrase,
    ADMIN_PASSWORD: check_password,
    SSH_AUTHORIZED_KEY: check_ssh_key,
    TIMEZONE: check_timezone,
    ARRAY_PRESET: check_preset,
    I2S_HAT: check_hat,
    STREAM: check_stream,
}


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def split_line(text: str) -> tuple[str, str] | None:
    """``(KEY, raw value)`` for a setting line, None for a blank or comment line.

    Raises BootConfigError for a line that is neither.
    """
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    key, sep, value = stripped.partition("=")
    if not sep or not _KEY.match(key.strip()):
        # The line is not repeated: it may be a password that lost its key.
        raise BootConfigError(
            f"this line ({len(stripped)} characters, not shown: it might hold a secret) is not a "
            "KEY=VALUE line; it was removed from the file"
        )
    return key.strip().upper(), _unquote(value.strip())


def parse(text: str) -> BootConfig:
    """Parse and check the whole file; never raises for bad content."""
    config = BootConfig()
    for number, line in enumerate(text.splitlines(), start=1):
        _parse_line(config, number, line)
    _check_wifi(config)
    return config


def _parse_line(config: BootConfig, number: int, line: str) -> None:
    try:
        parsed = split_line(line)
    except BootConfigError as exc:
        config.problems.append(Problem(number, "", str(exc)))
        return
    if parsed is None:
        return
    key, raw = parsed
    check = CHECKS.get(key)
    if check is None:
        allowed = ", ".join(CHECKS)
        config.problems.append(
            Problem(
                number,
                key,
                f"unknown setting {key}; the file accepts {allowed} "
                "(its value was removed from the file, in case it was a secret)",
            )
        )
        return
    try:
        value = check(raw)
    except BootConfigError as exc:
        config.problems.append(Problem(number, key, str(exc)))
        return
    if key in REPEATABLE_KEYS:
        (config.streams if key == STREAM else config.ssh_keys).append(Setting(key, value, number))
        return
    earlier = config.settings.get(key)
    if earlier is not None:
        config.problems.append(
            Problem(earlier.line, key, f"{key} is set again on line {number}; line {number} is used")
        )
        config.superseded.add(earlier.line)
    config.settings[key] = Setting(key, value, number)


def _check_wifi(config: BootConfig) -> None:
    """The three Wi-Fi keys only make sense with an SSID."""
    if WIFI_SSID in config.settings:
        return
    for key in (WIFI_PASSPHRASE, WIFI_COUNTRY):
        setting = config.settings.pop(key, None)
        if setting is not None:
            config.problems.append(Problem(setting.line, key, f"{key} is only used together with WIFI_SSID"))


def rewrite(text: str, applied_lines: Iterable[int], stamp: str, superseded: Iterable[int] = ()) -> str:
    """The file as it should stay on the card after the device has read it.

    Applied lines become comments (so a later boot does not apply them again
    and the user sees what was done), and so do lines a later line replaced;
    secret lines are removed whatever happened to them, leaving a note; so are
    lines that are not ``KEY=VALUE`` and the values of unknown settings, since
    either may be a secret the device did not recognise. A known setting with a
    bad value is kept as written, for the user to fix.
    """
    applied = set(applied_lines)
    replaced = set(superseded)
    out: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            parsed = split_line(line)
        except BootConfigError:
            out.append(f"# line {number} was not a KEY=VALUE line; removed on {stamp}")
            continue
        if parsed is None:
            out.append(line)
            continue
        key = parsed[0]
        if key in SECRET_KEYS:
            verb = "was applied" if number in applied else "was NOT applied (see the log)"
            out.append(f"# {key} {verb} on {stamp} and removed from this file")
        elif key not in CHECKS:
            out.append(f"# {key} is not a setting of this device; its value was removed on {stamp}")
        elif number in applied:
            out.append(f"# applied on {stamp}:")
            out.append(f"#{line.strip()}")
        elif number in replaced:
            out.append(f"# replaced by a later line, {stamp}:")
            out.append(f"#{line.strip()}")
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def has_secrets(text: str) -> bool:
    """True when any line may still hold a secret (so the file must be rewritten).

    That is a secret setting, a line that is not ``KEY=VALUE``, or the value
    of an unknown setting: the same lines :func:`rewrite` removes.
    """
    for line in text.splitlines():
        try:
            parsed = split_line(line)
        except BootConfigError:
            return True
        if parsed is not None and (parsed[0] in SECRET_KEYS or parsed[0] not in CHECKS):
            return True
    return False


_BOMS: tuple[tuple[bytes, str | None, str], ...] = (
    # UTF-32 first: its little-endian mark starts with UTF-16's.
    (b"\xff\xfe\x00\x00", None, "UTF-32"),
    (b"\x00\x00\xfe\xff", None, "UTF-32"),
    (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
)
SAVE_AS = 'save it as UTF-8 (or, in Windows Notepad, as "UTF-8" or "Unicode") and try again'


def decode(raw: bytes) -> str:
    """The text of the file's bytes, or BootFileRefused saying what it is and what is accepted.

    No message quotes the file's content: it may hold a password.
    """
    if len(raw) > MAX_FILE_BYTES:
        raise BootFileRefused(
            f"{FILE_NAME} is larger than {MAX_FILE_BYTES // 1024} KiB, so it was not read; "
            "the settings it needs fit in a few hundred bytes"
        )
    for bom, codec, name in _BOMS:
        if raw.startswith(bom):
            if codec is None:
                raise BootFileRefused(f"{FILE_NAME} is {name} text, which is not read; {SAVE_AS}")
            return _decode(raw[len(bom) :], codec, name)
    if b"\x00" in raw[:2] or raw.count(b"\x00") * 4 > len(raw):
        raise BootFileRefused(
            f"{FILE_NAME} looks like UTF-16 or UTF-32 text without a byte-order mark, which "
            f"cannot be read safely; {SAVE_AS}"
        )
    return _decode(raw, "utf-8", "UTF-8")


def _decode(raw: bytes, codec: str, name: str) -> str:
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise BootFileRefused(
            f"{FILE_NAME} is not valid {name} text (byte {exc.start} cannot be read: a file "
            f"saved as ANSI or Latin-1 looks like this); {SAVE_AS}"
        ) from None
    if "\x00" in text:
        raise BootFileRefused(f"{FILE_NAME} holds NUL characters, so it is not a text file; {SAVE_AS}")
    # CRLF from Windows editors; splitlines() also takes a lone CR.
    return text.replace("\r\n", "\n")


def read(path: Path) -> str:
    """The file's text (see :func:`decode`); at most MAX_FILE_BYTES + 1 bytes are ever read."""
    with path.open("rb") as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    return decode(raw)
