"""First-boot steps against a directory tree standing in for the root file system."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from appliance.auth import PasswordStore
from appliance.boot import firstboot, rootgrow

TEMPLATE = Path(__file__).resolve().parent.parent / "image/files/micarray.txt"
needs = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("ssh-keygen", "sfdisk", "mkfs.ext4", "resize2fs")),
    reason="needs openssh-client, fdisk and e2fsprogs",
)


def ssh_key() -> str:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + b"k" * 32
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} me@laptop"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A small tree shaped like the image's root file system."""
    tree = tmp_path / "root"
    (tree / "etc/ssh").mkdir(parents=True)
    (tree / "boot/firmware").mkdir(parents=True)
    (tree / "usr/share/zoneinfo/Europe").mkdir(parents=True)
    (tree / "usr/share/zoneinfo/Europe/Berlin").write_bytes(b"TZif2 stand-in")
    uid, gid = os.getuid(), os.getgid()
    (tree / "etc/passwd").write_text(
        f"root:x:0:0:root:/root:/bin/sh\nmicarray:x:{uid}:{gid}::/var/lib/micarray:/usr/sbin/nologin\n"
    )
    (tree / "etc/hostname").write_text("micarray\n")
    (tree / "etc/default").mkdir()
    (tree / "etc/default/micarray").write_text("OTHER=kept\nMICARRAY_PRESET=old\n")
    (tree / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tmicarray\n")
    shutil.copy(TEMPLATE, tree / "boot/firmware/micarray.txt")
    return tree


def boot_file(root: Path, text: str) -> Path:
    path = root / "boot/firmware/micarray.txt"
    path.write_text(TEMPLATE.read_text() + text)
    return path


def run(root: Path) -> firstboot.Report | None:
    return firstboot.run(root, root / "boot/firmware", root / "var/lib/micarray", grow=True)


def report_json(root: Path) -> dict[str, Any]:
    data = json.loads((root / "var/lib/micarray/firstboot-report.json").read_text())
    assert isinstance(data, dict)
    return data


@needs
def test_good_file_applies_everything_and_leaves_no_secret(root: Path) -> None:
    path = boot_file(
        root,
        "HOSTNAME=Lab-Array\nWIFI_COUNTRY=ch\nWIFI_SSID=IEEE\nWIFI_PASSPHRASE=password\n"
        f"ADMIN_PASSWORD=a-long-password\nSSH_AUTHORIZED_KEY={ssh_key()}\n"
        "TIMEZONE=Europe/Berlin\nARRAY_PRESET=respeaker-4mic\n",
    )
    report = run(root)
    assert report is not None
    assert report.problems == []
    assert (root / "etc/hostname").read_text() == "lab-array\n"
    assert "127.0.1.1\tlab-array" in (root / "etc/hosts").read_text().splitlines()
    assert "127.0.1.1\tmicarray" not in (root / "etc/hosts").read_text()
    wpa = root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
    assert wpa.stat().st_mode & 0o777 == 0o600
    # IEEE 802.11i's published test vector for passphrase "password", SSID "IEEE".
    psk = "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
    assert f"\tpsk={psk}\n" in wpa.read_text()
    assert "country=CH\n" in wpa.read_text()
    assert f"\tssid={b'IEEE'.hex()}\n" in wpa.read_text()
    assert PasswordStore(root / "var/lib/micarray").verify("a-long-password")
    assert (root / "root/.ssh/authorized_keys").read_text() == ssh_key() + "\n"
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/Europe/Berlin"
    env = (root / "etc/default/micarray").read_text()
    assert env == "OTHER=kept\nMICARRAY_PRESET=respeaker-4mic\n"
    assert list((root / "etc/ssh").glob("ssh_host_*_key"))
    assert len((root / "var/lib/micarray/device-id").read_text().strip()) == 16
    left = path.read_text()
    assert "a-long-password" not in left
    assert "WIFI_PASSPHRASE=password" not in left
    assert "# ADMIN_PASSWORD was applied on" in left
    assert "#HOSTNAME=Lab-Array\n" in left
    data = report_json(root)
    assert data["problems"] == []
    assert data["applied"] == [
        "HOSTNAME", "WIFI_SSID", "WIFI_PASSPHRASE", "WIFI_COUNTRY",
        "ADMIN_PASSWORD", "TIMEZONE", "ARRAY_PRESET", "SSH_AUTHORIZED_KEY",
    ]  # fmt: skip


@needs
def test_bad_values_are_reported_and_the_rest_still_applies(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = boot_file(
        root, "ADMIN_PASSWORD=short\nTIMEZONE=Mars/Olympus\nHOSTNAME=ok-name\nWIFI_SSID=x\nBAD LINE\n"
    )
    with caplog.at_level(logging.WARNING, logger="appliance.boot.firstboot"):
        report = run(root)
    assert report is not None
    assert (root / "etc/hostname").read_text() == "ok-name\n"
    assert (root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf").exists()
    messages = [p["message"] for p in report_json(root)["problems"]]
    assert messages == [
        "'BAD LINE' is not a KEY=VALUE line",
        "the password needs at least 8 characters",
        "time zone 'Mars/Olympus' is not known; use a name from /usr/share/zoneinfo such as "
        "Europe/Berlin, America/New_York or UTC",
    ]
    assert "micarray.txt line" in caplog.text and "Mars/Olympus" in caplog.text
    assert not PasswordStore(root / "var/lib/micarray").is_set()
    left = path.read_text()
    # The plaintext goes even when it was not accepted; bad lines stay to be fixed.
    assert "short" not in left.split("ADMIN_PASSWORD was NOT applied")[1]
    assert "ADMIN_PASSWORD=short" not in left
    assert "\nTIMEZONE=Mars/Olympus\n" in left
    assert "\nBAD LINE\n" in left


@needs
def test_second_boot_changes_nothing(root: Path) -> None:
    boot_file(root, "HOSTNAME=once\n")
    assert run(root) is not None
    keys = {p.name: p.read_bytes() for p in (root / "etc/ssh").glob("ssh_host_*")}
    device_id = (root / "var/lib/micarray/device-id").read_text()
    after_first = (root / "boot/firmware/micarray.txt").read_text()
    report_first = report_json(root)
    assert run(root) is None
    assert {p.name: p.read_bytes() for p in (root / "etc/ssh").glob("ssh_host_*")} == keys
    assert (root / "var/lib/micarray/device-id").read_text() == device_id
    assert (root / "boot/firmware/micarray.txt").read_text() == after_first
    assert report_json(root) == report_first


@needs
def test_missing_boot_file_still_makes_keys_and_id(root: Path) -> None:
    (root / "boot/firmware/micarray.txt").unlink()
    assert run(root) is None
    assert list((root / "etc/ssh").glob("ssh_host_ed25519_key*"))
    assert (root / "var/lib/micarray/device-id").exists()
    assert not (root / "var/lib/micarray/firstboot-report.json").exists()


@needs
def test_main_on_a_tree_returns_zero_even_with_problems(root: Path) -> None:
    boot_file(root, "HOSTNAME=_bad_\n")
    assert firstboot.main(["--root", str(root), "--no-grow"]) == 0
    problems = report_json(root)["problems"]
    assert isinstance(problems, list) and problems[0]["key"] == "HOSTNAME"


def make_disk(path: Path, parts: str, size_mib: int) -> None:
    with path.open("wb") as f:
        f.truncate(size_mib << 20)
    subprocess.run(["sfdisk", "-q", str(path)], input=parts, text=True, check=True)


def last_end(path: Path) -> int:
    out = subprocess.run(["sfdisk", "--json", str(path)], capture_output=True, text=True, check=True)
    part = json.loads(out.stdout)["partitiontable"]["partitions"][-1]
    return (int(part["start"]) + int(part["size"])) * 512


@needs
def test_grow_partition_fills_an_image_file(tmp_path: Path) -> None:
    disk = tmp_path / "card.img"
    make_disk(disk, "label: dos\nstart=2048, size=16384, type=c\nstart=18432, size=32768\n", 64)
    assert rootgrow.free_after(str(disk), 2) == (64 << 20) - (18432 + 32768) * 512
    assert rootgrow.grow_partition(str(disk), 2)
    assert last_end(disk) == 64 << 20
    assert not rootgrow.grow_partition(str(disk), 2)


@needs
def test_grow_refuses_a_partition_that_is_not_last(tmp_path: Path) -> None:
    disk = tmp_path / "card.img"
    make_disk(disk, "label: dos\nstart=2048, size=16384\nstart=18432, size=16384\n", 64)
    with pytest.raises(rootgrow.GrowError, match=r"partition 1 of .* is not the last one"):
        rootgrow.grow_partition(str(disk), 1)
    with pytest.raises(rootgrow.GrowError, match=r"partition 3 is not in the table"):
        rootgrow.grow_partition(str(disk), 3)


@needs
def test_grow_filesystem_fills_its_container(tmp_path: Path) -> None:
    image = tmp_path / "root.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-b", "4096", str(image), "16M"], check=True)
    with image.open("r+b") as f:
        f.truncate(48 << 20)
    rootgrow.grow_filesystem(str(image))
    out = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=True)
    blocks = next(line for line in out.stdout.splitlines() if line.startswith("Block count:"))
    assert int(blocks.split(":")[1]) == (48 << 20) // 4096
