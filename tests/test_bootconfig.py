"""The boot-partition settings file: parsing, checking, rewriting without secrets."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from appliance.boot import bootconfig
from appliance.boot.bootconfig import BootConfigError

TEMPLATE = Path(__file__).resolve().parent.parent / "image/files/micarray.txt"


def ssh_key(kind: str = "ssh-ed25519") -> str:
    blob = len(kind).to_bytes(4, "big") + kind.encode() + b"\x00\x00\x00\x20" + b"k" * 32
    return f"{kind} {base64.b64encode(blob).decode()} me@laptop"


GOOD = f"""\
# a comment
HOSTNAME=Kitchen-Array

WIFI_COUNTRY=de
WIFI_SSID="  spaced net "
WIFI_PASSPHRASE=correct horse battery
ADMIN_PASSWORD=s3cret-pass
SSH_AUTHORIZED_KEY={ssh_key()}
SSH_AUTHORIZED_KEY={ssh_key("ssh-rsa")}
TIMEZONE=Europe/Berlin
ARRAY_PRESET=ReSpeaker-USB
"""


def test_template_on_the_partition_asks_for_nothing() -> None:
    config = bootconfig.parse(TEMPLATE.read_text())
    assert config.problems == []
    assert config.is_empty()


def test_template_documents_every_key() -> None:
    text = TEMPLATE.read_text()
    for key in bootconfig.CHECKS:
        assert f"#{key}=" in text, key


def test_template_lines_uncommented_are_all_accepted() -> None:
    # Every example value in the template must itself be valid.
    lines = [line[1:] for line in TEMPLATE.read_text().splitlines() if line.startswith("#") and "=" in line]
    settings = [line for line in lines if line.split("=")[0] in bootconfig.CHECKS]
    text = "\n".join(settings).replace("AAAAC3Nza...", ssh_key().split()[1])
    config = bootconfig.parse(text)
    assert config.problems == []
    assert set(config.settings) | set(bootconfig.REPEATABLE_KEYS) == set(bootconfig.CHECKS)
    assert [s.value for s in config.streams] == ["lab 239.255.7.1:5004 1,2,3,4"]


def test_good_file_is_parsed_and_normalised() -> None:
    config = bootconfig.parse(GOOD)
    assert config.problems == []
    assert config.get("HOSTNAME") == "kitchen-array"
    assert config.get("WIFI_COUNTRY") == "DE"
    assert config.get("WIFI_SSID") == "  spaced net "
    assert config.get("WIFI_PASSPHRASE") == "correct horse battery"
    assert config.get("ARRAY_PRESET") == "respeaker-usb"
    assert [s.line for s in config.ssh_keys] == [8, 9]
    assert config.settings["TIMEZONE"].line == 10


def test_windows_line_ends_and_bom_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "micarray.txt"
    path.write_bytes(b"\xef\xbb\xbfHOSTNAME=pi-one\r\nTIMEZONE=UTC\r\n")
    config = bootconfig.parse(bootconfig.read(path))
    assert config.problems == []
    assert config.get("HOSTNAME") == "pi-one"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("HOSTNAME=-bad", "hostname '-bad' is not valid; use 1-63 letters"),
        ("HOSTNAME=under_score", "hostname 'under_score' is not valid"),
        ("HOSTNAME=" + "a" * 64, "is not valid; use 1-63 letters"),
        ("WIFI_COUNTRY=Germany", "Wi-Fi country 'Germany' is not valid; use a two-letter"),
        ("WIFI_SSID=" + "x" * 33, "is 33 bytes long; it must be 1 to 32 bytes"),
        ("WIFI_PASSPHRASE=short", "has 5 characters; WPA2 needs 8 to 63"),
        ("ADMIN_PASSWORD=", "the admin password is empty"),
        ("SSH_AUTHORIZED_KEY=ssh-dss AAAA", "is not an OpenSSH public key line; it must start"),
        ("SSH_AUTHORIZED_KEY=ssh-ed25519 not*base64", "has a key part that is not base64"),
        (
            f"SSH_AUTHORIZED_KEY=ssh-rsa {ssh_key().split()[1]}",
            "SSH key of type ssh-rsa does not hold a ssh-rsa key",
        ),
        ("TIMEZONE=../../etc/passwd", "time zone '../../etc/passwd' is not valid"),
        (
            "ARRAY_PRESET=no-such-array",
            "array preset 'no-such-array' is not known; use one of respeaker-4mic, respeaker-6mic",
        ),
        ("COLOUR=blue", "unknown setting COLOUR; the file accepts HOSTNAME, WIFI_COUNTRY"),
        ("ADMIN_PASWORD=typo", "(its value was removed from the file, in case it was a secret)"),
        # Never quoted: a line without a key may be a password that lost it.
        ("just some words", "this line (15 characters, not shown: it might hold a secret) is not a KEY"),
    ],
)
def test_bad_line_is_reported_and_the_rest_applies(line: str, message: str) -> None:
    text = f"HOSTNAME=first\nWIFI_SSID=home\n{line}\nTIMEZONE=UTC\n"
    if line.startswith("HOSTNAME"):
        text = text.replace("HOSTNAME=first\n", "")
    config = bootconfig.parse(text)
    assert len(config.problems) == 1, config.problems
    problem = config.problems[0]
    assert message in problem.message
    assert str(problem).startswith(f"micarray.txt line {text.splitlines().index(line) + 1}: ")
    assert config.get("TIMEZONE") == "UTC"
    assert config.get("WIFI_SSID") == "home"


def test_wifi_keys_without_ssid_are_reported() -> None:
    config = bootconfig.parse("WIFI_PASSPHRASE=long enough pass\nWIFI_COUNTRY=GB\n")
    assert [p.message for p in config.problems] == [
        "WIFI_PASSPHRASE is only used together with WIFI_SSID",
        "WIFI_COUNTRY is only used together with WIFI_SSID",
    ]
    assert config.is_empty()


def test_a_key_set_twice_uses_the_last_line_and_says_so() -> None:
    config = bootconfig.parse("HOSTNAME=one\nHOSTNAME=two\n")
    assert config.get("HOSTNAME") == "two"
    assert [str(p) for p in config.problems] == [
        "micarray.txt line 1: HOSTNAME is set again on line 2; line 2 is used"
    ]
    # Once line 2 is applied, line 1 must not come back at the next boot.
    out = bootconfig.rewrite("HOSTNAME=one\nHOSTNAME=two\n", {2}, "today", config.superseded)
    assert out == ("# replaced by a later line, today:\n#HOSTNAME=one\n# applied on today:\n#HOSTNAME=two\n")
    assert bootconfig.parse(out).is_empty()


def test_check_functions_raise_the_one_error_type() -> None:
    with pytest.raises(BootConfigError, match="use 1-63 letters"):
        bootconfig.check_hostname("a.b")
    assert bootconfig.check_passphrase("A" * 64) == "a" * 64


def test_rewrite_comments_applied_lines_and_drops_every_secret() -> None:
    text = GOOD + "ADMIN_PASSWORD=second-one-bad\n"
    config = bootconfig.parse(text)
    second_password = config.settings["ADMIN_PASSWORD"].line
    assert second_password == 12
    # As if storing the second password had failed.
    applied = {s.line for s in config.settings.values()} - {second_password}
    out = bootconfig.rewrite(text, applied, "2026-01-02 03:04:05 UTC")
    assert "s3cret-pass" not in out
    assert "correct horse battery" not in out
    assert "second-one-bad" not in out
    assert "# ADMIN_PASSWORD was applied on 2026-01-02 03:04:05 UTC and removed" not in out
    assert "# ADMIN_PASSWORD was NOT applied (see the log) on 2026-01-02 03:04:05 UTC" in out
    assert "# applied on 2026-01-02 03:04:05 UTC:\n#HOSTNAME=Kitchen-Array\n" in out
    # Lines that were not applied stay as written, so the user can fix them.
    assert f"\nSSH_AUTHORIZED_KEY={ssh_key()}\n" in out
    assert not bootconfig.has_secrets(out)
    again = bootconfig.parse(out)
    assert set(again.settings) == set()
    assert len(again.ssh_keys) == 2
