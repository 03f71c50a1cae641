"""First-boot steps against a directory tree standing in for the root file system."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from appliance.auth import PasswordStore
from appliance.boot import bootconfig, bootreport, firstboot, rootgrow
from tests.test_units import unit_settings

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
        "this line (8 characters, not shown: it might hold a secret) is not a KEY=VALUE line; "
        "it was removed from the file",
        "the password needs at least 8 characters",
        "time zone 'Mars/Olympus' is not known; use a name from /usr/share/zoneinfo such as "
        "Europe/Berlin, America/New_York or UTC",
    ]
    assert "micarray.txt line" in caplog.text and "Mars/Olympus" in caplog.text
    assert not PasswordStore(root / "var/lib/micarray").is_set()
    left = path.read_text()
    # The plaintext goes even when it was not accepted; bad values of known
    # settings stay to be fixed; a line without a key goes too (it may be a secret).
    assert "short" not in left.split("ADMIN_PASSWORD was NOT applied")[1]
    assert "ADMIN_PASSWORD=short" not in left
    assert "\nTIMEZONE=Mars/Olympus\n" in left
    assert "BAD LINE" not in left
    assert "was not a KEY=VALUE line; removed on " in left


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


SECRET = "Zq8-never-seen-again"


#: Boot files as people really break them; each holds SECRET somewhere.
MALFORMED: dict[str, bytes] = {
    "utf-16-le without BOM": f"ADMIN_PASSWORD={SECRET}\r\n".encode("utf-16-le"),
    "utf-16-be without BOM": f"ADMIN_PASSWORD={SECRET}\r\n".encode("utf-16-be"),
    "utf-32 with BOM": f"ADMIN_PASSWORD={SECRET}\n".encode("utf-32"),
    "utf-32-be with BOM": b"\x00\x00\xfe\xff" + f"ADMIN_PASSWORD={SECRET}\n".encode("utf-32-be"),
    "utf-16 with BOM, cut mid-character": (b"\xff\xfe" + f"ADMIN_PASSWORD={SECRET}\n".encode("utf-16-le"))[
        :-1
    ],
    "latin-1 (ANSI) umlaut": f"HOSTNAME=ok\nADMIN_PASSWORD=gr\u00fc{SECRET}\n".encode("latin-1"),
    "cp1252 euro sign": f"ADMIN_PASSWORD=\u20ac{SECRET}\n".encode("cp1252"),
    "utf-8 BOM, then latin-1": b"\xef\xbb\xbf" + f"ADMIN_PASSWORD=\u00e9{SECRET}".encode("latin-1"),
    "NUL inside utf-8": f"ADMIN_PASSWORD={SECRET}\x00\nHOSTNAME=x\n".encode(),
    "binary garbage around it": bytes(range(128, 256)) + SECRET.encode() + bytes(range(128, 256)),
    "over the size cap": (f"ADMIN_PASSWORD={SECRET}\n" + "#" * 70_000 + "\n").encode(),
    "no equals sign": f"ADMIN_PASSWORD {SECRET}\n".encode(),
    "colon instead of equals": f"ADMIN_PASSWORD: {SECRET}\n".encode(),
    "misspelt key": f"ADMIN_PASWORD={SECRET}\n".encode(),
    "shell export": f"export ADMIN_PASSWORD={SECRET}\n".encode(),
    "lower case and spaces": f"  admin_password =  {SECRET}  \n".encode(),
    "unbalanced quote": f'ADMIN_PASSWORD="{SECRET}\n'.encode(),
    "password too short": f"ADMIN_PASSWORD={SECRET[:7]}\n".encode(),
    "passphrase without SSID": f"WIFI_PASSPHRASE={SECRET}\n".encode(),
    "passphrase too long": f"WIFI_SSID=home\nWIFI_PASSPHRASE={SECRET * 4}\n".encode(),
    "password twice": f"ADMIN_PASSWORD={SECRET}-1\nADMIN_PASSWORD={SECRET}-2\n".encode(),
    "password on the next line": f"ADMIN_PASSWORD=\n{SECRET}\n".encode(),
    "old Mac line ends": f"HOSTNAME=mac\rADMIN_PASSWORD={SECRET}\rTIMEZONE=UTC\r".encode(),
    "a 10 KB line": f"ADMIN_PASSWORD={'x' * 10_000}{SECRET}\n".encode(),
    "second BOM inside": f"\ufeff\ufeffADMIN_PASSWORD={SECRET}\n".encode(),
    "equals signs in the value": f"ADMIN_PASSWORD=a=b={SECRET}\n".encode(),
    "key with a space": f"ADMIN PASSWORD={SECRET}\n".encode(),
}


def _everything_written(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


@needs
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_boot_file_never_leaves_copies_or_logs_its_secret(
    root: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    (root / "boot/firmware/micarray.txt").write_bytes(MALFORMED[case])
    with caplog.at_level(logging.DEBUG):
        report = run(root)
    assert report is not None, case
    written = _everything_written(root)
    # The one part every variant above has in common, in every encoding it could take.
    core = SECRET[:7]
    for codec in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        assert core.encode(codec) not in written, (case, codec)
        assert core.lower().encode(codec) not in written.lower(), (case, codec)
    assert core not in caplog.text
    assert core.upper() not in caplog.text
    report_file = root / "var/lib/micarray/firstboot-report.json"
    assert report_file.stat().st_mode & 0o777 == 0o640
    assert report_json(root)["problems"] or report_json(root)["applied"] == ["ADMIN_PASSWORD"]
    # A second boot finds nothing left to do with it.
    again = bootconfig.read(root / "boot/firmware/micarray.txt")
    assert not bootconfig.has_secrets(again)


@needs
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be-bom", "utf-8-sig"])
def test_notepad_unicode_and_utf8_bom_files_set_the_password(root: Path, codec: str) -> None:
    text = f"HOSTNAME=note-pad\r\nADMIN_PASSWORD={SECRET}\r\n"
    raw = b"\xfe\xff" + text.encode("utf-16-be") if codec == "utf-16-be-bom" else text.encode(codec)
    (root / "boot/firmware/micarray.txt").write_bytes(raw)
    report = run(root)
    assert report is not None and report.problems == []
    assert PasswordStore(root / "var/lib/micarray").verify(SECRET)
    assert (root / "etc/hostname").read_text() == "note-pad\n"
    assert SECRET.encode() not in _everything_written(root / "boot")


@needs
def test_a_refused_file_is_replaced_by_a_note_saying_why(root: Path) -> None:
    (root / "boot/firmware/micarray.txt").write_bytes(f"ADMIN_PASSWORD={SECRET}\n".encode("utf-16-le"))
    report = run(root)
    assert report is not None
    message = report.problems[0].message
    assert message == (
        "micarray.txt looks like UTF-16 or UTF-32 text without a byte-order mark, which cannot be "
        'read safely; save it as UTF-8 (or, in Windows Notepad, as "UTF-8" or "Unicode") and try again'
    )
    note = (root / "boot/firmware/micarray.txt").read_text()
    assert message in note and "Its content was removed" in note
    assert not PasswordStore(root / "var/lib/micarray").is_set()
    assert bootreport.boot_file_problems(root / "var/lib/micarray") == [
        f"{root / 'boot/firmware/micarray.txt'}: {message}"
    ]


def test_a_50_mib_file_is_refused_without_being_read(tmp_path: Path) -> None:
    path = tmp_path / "micarray.txt"
    with path.open("wb") as f:
        f.write(f"ADMIN_PASSWORD={SECRET}\n".encode())
        f.truncate(50 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(bootconfig.BootFileRefused, match="larger than 64 KiB, so it was not read"):
            bootconfig.read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@needs
def test_host_keys_are_the_two_quick_types_the_image_names(root: Path) -> None:
    (root / "boot/firmware/micarray.txt").unlink()
    run(root)
    keys = sorted(p.name for p in (root / "etc/ssh").glob("ssh_host_*_key"))
    assert keys == ["ssh_host_ecdsa_key", "ssh_host_ed25519_key"]
    assert all((root / "etc/ssh" / k).stat().st_mode & 0o777 == 0o600 for k in keys)
    customize = (Path(__file__).resolve().parent.parent / "image/customize.sh").read_text()
    assert all(f"HostKey /etc/ssh/{k}\n" in customize for k in keys)


@needs
def test_files_others_read_stay_readable_under_the_units_umask(root: Path) -> None:
    boot_file(root, "HOSTNAME=masked\nTIMEZONE=Europe/Berlin\nARRAY_PRESET=respeaker-usb\n")
    old = os.umask(0o077)  # micarray-firstboot.service's UMask=
    try:
        run(root)
    finally:
        os.umask(old)
    for name in ("etc/hostname", "etc/hosts", "etc/timezone", "etc/default/micarray"):
        assert (root / name).stat().st_mode & 0o777 == 0o644, name


def test_the_boot_file_reader_loads_no_audio_or_web_stack() -> None:
    """It runs before everything else at every boot: on a Pi each heavy import is seconds."""
    heavy = ("numpy", "tornado", "zeroconf", "cryptography", "msgspec", "appliance.sessions.streaming")
    probe = f"import sys, appliance.boot.firstboot; print([m for m in {heavy!r} if m in sys.modules])"
    argv = [sys.executable, "-c", probe]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# micarray-firstboot.service runs only when what it reads has changed: its
# ExecCondition (systemd/micarray-firstboot-pending), run with /bin/sh against
# the tree after the real steps ran on it, as the unit does at boot.
PENDING = Path(__file__).resolve().parent.parent / "systemd/micarray-firstboot-pending"
INSTALLED = "/usr/local/libexec/micarray-firstboot-pending"
RUN, SKIP = 0, 1


def pending(root: Path, *args: str) -> int:
    """The condition's exit status on this tree (0: run first boot, 1: skip it)."""
    env = {
        "PATH": os.environ["PATH"],
        "MICARRAY_BOOT_DIR": str(root / "boot/firmware"),
        "MICARRAY_DATA_DIR": str(root / "var/lib/micarray"),
        "MICARRAY_HOST_KEY": str(root / "etc/ssh/ssh_host_ed25519_key"),
        "MICARRAY_VENV": str(root / "venv"),
    }
    done = subprocess.run(["/bin/sh", str(PENDING), *args], env=env, capture_output=True, timeout=30)
    assert done.stderr == b""
    return done.returncode


def boot(root: Path) -> None:
    """What the unit does when its condition says run: the steps, then the record."""
    firstboot.run(root, root / "boot/firmware", root / "var/lib/micarray", grow=False)
    assert pending(root, "--record") == 0


def contents(tree: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in tree.rglob("*") if p.is_file() and p.name != "firstboot-inputs"}


@pytest.fixture
def booted(root: Path) -> Path:
    module = root / "venv/lib/python3.11/site-packages/appliance/boot/firstboot.py"
    module.parent.mkdir(parents=True)
    module.write_text("# the installed appliance\n")
    assert pending(root) == RUN  # never ran: nothing recorded
    boot(root)
    assert pending(root) == SKIP
    return root


@needs
def test_a_boot_with_nothing_new_skips_first_boot_and_a_second_run_would_change_nothing(
    booted: Path,
) -> None:
    before = contents(booted)
    firstboot.run(booted, booted / "boot/firmware", booted / "var/lib/micarray", grow=False)
    assert contents(booted) == before
    assert pending(booted) == SKIP


@needs
def test_an_edited_boot_file_runs_first_boot_once(booted: Path) -> None:
    boot_file(booted, "HOSTNAME=edited\n")
    assert pending(booted) == RUN
    boot(booted)
    assert (booted / "etc/hostname").read_text().strip() == "edited"
    assert pending(booted) == SKIP


@needs
def test_the_same_size_saved_again_later_counts_as_an_edit(booted: Path) -> None:
    text = booted / "boot/firmware/micarray.txt"
    stat = text.stat()
    os.utime(text, (stat.st_atime, stat.st_mtime + 10))
    assert pending(booted) == RUN


@needs
@pytest.mark.parametrize("name", ["user-data", "network-config", "ssh", "userconf.txt", "firstrun.sh"])
def test_a_file_from_imager_runs_first_boot(booted: Path, name: str) -> None:
    (booted / "boot/firmware" / name).write_text("\n")
    assert pending(booted) == RUN


@needs
def test_a_lost_host_key_device_id_or_record_runs_first_boot(booted: Path) -> None:
    key = booted / "etc/ssh/ssh_host_ed25519_key"
    saved = key.read_bytes()
    key.unlink()
    assert pending(booted) == RUN
    key.write_bytes(saved)
    (booted / "var/lib/micarray/device-id").unlink()
    assert pending(booted) == RUN
    boot(booted)
    (booted / "var/lib/micarray/firstboot-inputs").write_text("torn")
    assert pending(booted) == RUN
    (booted / "var/lib/micarray/firstboot-inputs").unlink()
    assert pending(booted) == RUN


@needs
def test_an_updated_appliance_runs_first_boot(booted: Path) -> None:
    module = next((booted / "venv").rglob("firstboot.py"))
    module.write_text("# the installed appliance, a newer version\n")
    assert pending(booted) == RUN


def test_the_unit_asks_before_it_runs_and_records_after() -> None:
    unit = unit_settings("micarray-firstboot.service")
    assert unit["ExecCondition"] == [f"+/bin/sh {INSTALLED}"]
    assert unit["ExecStartPost"] == [f"/bin/sh {INSTALLED} --record"]
    # The image puts the script where the unit names it.
    build = (TEMPLATE.parent.parent / "customize.sh").read_text()
    assert "for script in micarray-firstboot-pending micarray-rootgrow-pending; do" in build
    assert '"$root/usr/local/libexec/$script"' in build
    assert shutil.which("stat") and shutil.which("cmp")


# micarray-rootgrow.service starts Python only while the card has room after
# root: its ExecCondition reads /proc/self/mountinfo and /sys/dev/block.
ROOTGROW_PENDING = PENDING.with_name("micarray-rootgrow-pending")


def fake_sys(tmp_path: Path, disk: int, start: int, size: int, partition: bool = True) -> dict[str, str]:
    """A mountinfo and a /sys/dev/block laid out as the kernel does (254:2 -> vda/vda2)."""
    vda = tmp_path / "sys/devices/virtio/block/vda"
    (vda / "vda2").mkdir(parents=True)
    (vda / "size").write_text(f"{disk}\n")
    for name, value in (("start", start), ("size", size)):
        (vda / "vda2" / name).write_text(f"{value}\n")
    if partition:
        (vda / "vda2/partition").write_text("2\n")
    blocks = tmp_path / "sys/dev/block"
    blocks.mkdir(parents=True)
    (blocks / "254:2").symlink_to(vda / "vda2")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "21 26 0:20 / /sys rw,nosuid shared:2 - sysfs sysfs rw\n"
        "26 1 254:2 / / rw,noatime shared:1 - ext4 /dev/vda2 rw\n"
        "27 26 254:1 / /boot/firmware rw shared:3 - vfat /dev/vda1 rw\n"
    )
    return {
        "PATH": os.environ["PATH"],
        "MICARRAY_MOUNTINFO": str(mountinfo),
        "MICARRAY_SYS_DEV_BLOCK": str(blocks),
    }


def rootgrow_pending(env: dict[str, str]) -> int:
    done = subprocess.run(["/bin/sh", str(ROOTGROW_PENDING)], env=env, capture_output=True, timeout=30)
    assert done.stderr == b""
    return done.returncode


@pytest.mark.parametrize(
    ("free_sectors", "expected"),
    [
        (0, SKIP),
        (rootgrow.MIN_GROWTH_BYTES // 512 - 1, SKIP),
        (rootgrow.MIN_GROWTH_BYTES // 512, RUN),
        (1 << 24, RUN),
    ],
)
def test_root_grows_only_while_the_card_has_room_after_it(
    tmp_path: Path, free_sectors: int, expected: int
) -> None:
    start, size = 532480, 3_000_000
    env = fake_sys(tmp_path, start + size + free_sectors, start, size)
    assert rootgrow_pending(env) == expected


def test_a_root_that_is_not_a_partition_is_never_grown(tmp_path: Path) -> None:
    env = fake_sys(tmp_path, 1 << 30, 0, 1 << 20, partition=False)
    assert rootgrow_pending(env) == SKIP
    # This machine's own root, read the way the unit reads it: a decision, never an error.
    assert rootgrow_pending({"PATH": os.environ["PATH"]}) in (RUN, SKIP)


def test_rootgrow_unit_asks_before_it_starts_python() -> None:
    unit = unit_settings("micarray-rootgrow.service")
    assert unit["ExecCondition"] == ["+/bin/sh /usr/local/libexec/micarray-rootgrow-pending"]
