"""Raspberry Pi Imager's OS customisation on the boot partition, applied at boot.

The files are written here exactly as Imager writes them (its cloud-init
``user-data`` and ``network-config``, the legacy ``ssh``/``userconf.txt``/
``wpa_supplicant.conf``, and its ``firstrun.sh`` with ``systemd.run=`` in
``cmdline.txt``); the password hash is made by ``openssl passwd -5`` (the
SHA-256-crypt Imager writes) and checked by the C library's crypt, and the
Wi-Fi key is derived the way Imager derives it. Then the real first-boot run
applies them to a tree shaped like the root file system.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from appliance.auth import PasswordStore
from appliance.boot import bootreport, cryptpass, firstboot, firstrun

needs = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("ssh-keygen", "openssl")), reason="needs openssh-client and openssl"
)
PASSWORD = "imager-pass-42"
SSID = 'Lab "5G" net'
WIFI_PASS = "wifi passphrase 1"
CMDLINE = "console=serial0,115200 console=tty1 root=LABEL=RASPIROOT rootfstype=ext4 fsck.repair=yes rootwait"


def crypt_hash(password: str = PASSWORD) -> str:
    out = subprocess.run(["openssl", "passwd", "-5", password], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def psk(passphrase: str = WIFI_PASS, ssid: str = SSID) -> str:
    """What Imager stores as the Wi-Fi password: PBKDF2-SHA1(passphrase, ssid, 4096, 32) in hex."""
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()


def ssh_key(comment: str = "me@laptop") -> str:
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + comment.encode().ljust(32, b"k")[:32]
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def user_data(hashed: str, keys: list[str]) -> str:
    """Imager 2's generateCloudInitUserData for host name, time zone, keyboard, user, keys."""
    lines = [
        "manage_resolv_conf: false",
        "hostname: lab-pi",
        "manage_etc_hosts: true",
        "packages:",
        "- avahi-daemon",
        "apt:",
        "  preserve_sources_list: true",
        "  conf: |",
        "    Acquire {",
        '      Check-Date "false";',
        "    };",
        "timezone: Europe/Berlin",
        "keyboard:",
        "  model: pc105",
        '  layout: "de"',
        "users:",
        "- name: alice",
        "  groups: users,adm,dialout,audio,netdev,video,plugdev,cdrom,games,input,gpio,spi,i2c,render,sudo",
        "  shell: /bin/bash",
        "  lock_passwd: false",
        f'  passwd: "{hashed}"',
        "  ssh_authorized_keys:",
        *[f"    - {k}" for k in keys],
        "  sudo: ALL=(ALL) NOPASSWD:ALL",
        "enable_ssh: true",
        "ssh_pwauth: false",
    ]
    return "\n".join(lines) + "\n"


def network_config(ssid: str = SSID, password: str | None = None) -> str:
    """Imager 2's generateCloudInitNetworkConfig for one Wi-Fi network."""
    escaped = ssid.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n      dhcp6: true\n"
        "      optional: true\n  wifis:\n    wlan0:\n      dhcp4: true\n"
        '      regulatory-domain: "DE"\n      access-points:\n'
        f'        "{escaped}":\n          password: "{password or psk()}"\n      optional: true\n'
    )


def firstrun_script(hashed: str, key: str) -> str:
    """Imager's generateSystemdScript (the firstrun.sh of init_format "systemd")."""
    ic = "/usr/lib/raspberrypi-sys-mods/imager_custom"
    return f"""#!/bin/sh

set +e

CURRENT_HOSTNAME=$(cat /etc/hostname | tr -d " \\t\\n\\r")
if [ -f {ic} ]; then
   {ic} set_hostname run-pi
else
   echo run-pi >/etc/hostname
   sed -i "s/127.0.1.1.*$CURRENT_HOSTNAME/127.0.1.1\\trun-pi/g" /etc/hosts
fi
FIRSTUSER=$(getent passwd 1000 | cut -d: -f1)
FIRSTUSERHOME=$(getent passwd 1000 | cut -d: -f6)
if [ -f {ic} ]; then
   {ic} enable_ssh -k '{key}'
else
   install -o "$FIRSTUSER" -m 700 -d "$FIRSTUSERHOME/.ssh"
cat > "$FIRSTUSERHOME/.ssh/authorized_keys" <<'EOF'
{key}
EOF
   chown "$FIRSTUSER:$FIRSTUSER" "$FIRSTUSERHOME/.ssh/authorized_keys"
   chmod 600 "$FIRSTUSERHOME/.ssh/authorized_keys"
   echo 'PasswordAuthentication no' >>/etc/ssh/sshd_config
   systemctl enable ssh
fi
if [ -f /usr/lib/userconf-pi/userconf ]; then
   /usr/lib/userconf-pi/userconf 'pi' '{hashed}'
else
   echo "$FIRSTUSER:{hashed}" | chpasswd -e
fi
if [ -f {ic} ]; then
   {ic} set_wlan  -h 'it'"'"'s wifi' '{psk(ssid="it's wifi")}' 'FR'
else
cat >/etc/wpa_supplicant/wpa_supplicant.conf <<'WPAEOF'
country=FR
ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev
ap_scan=1

update_config=1
network={{
\tscan_ssid=1
\tssid="it's wifi"
\tkey_mgmt=WPA-PSK SAE
\tpsk={psk(ssid="it's wifi")}
\tieee80211w=1
}}
WPAEOF
   chmod 600 /etc/wpa_supplicant/wpa_supplicant.conf
   rfkill unblock wifi
   for filename in /var/lib/systemd/rfkill/*:wlan ; do
       echo 0 > $filename
   done
fi
if [ -f {ic} ]; then
   {ic} set_keymap 'gb'
   {ic} set_timezone 'Europe/London'
else
   rm -f /etc/localtime
   echo "Europe/London" >/etc/timezone
   dpkg-reconfigure -f noninteractive tzdata
fi
rm -f /boot/firstrun.sh
sed -i 's| systemd.run.*||g' /boot/cmdline.txt
exit 0
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    tree = tmp_path / "root"
    (tree / "etc/ssh").mkdir(parents=True)
    (tree / "boot/firmware").mkdir(parents=True)
    for zone in ("Europe/Berlin", "Europe/London"):
        (tree / "usr/share/zoneinfo" / zone).parent.mkdir(parents=True, exist_ok=True)
        (tree / "usr/share/zoneinfo" / zone).write_bytes(b"TZif2 stand-in")
    uid, gid = os.getuid(), os.getgid()
    (tree / "etc/passwd").write_text(f"micarray:x:{uid}:{gid}::/var/lib/micarray:/usr/sbin/nologin\n")
    (tree / "etc/hostname").write_text("micarray\n")
    (tree / "boot/firmware/cmdline.txt").write_text(CMDLINE + "\n")
    return tree


def boot(root: Path) -> Path:
    return root / "boot/firmware"


def run(root: Path) -> firstboot.Report | None:
    return firstboot.run(root, boot(root), root / "var/lib/micarray", grow=False)


def report(root: Path) -> dict[str, Any]:
    data = json.loads((root / "var/lib/micarray/firstboot-report.json").read_text())
    assert isinstance(data, dict)
    return data


def all_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def wpa(root: Path) -> str:
    return (root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf").read_text()


@needs
def test_imager_cloud_init_files_set_everything_and_leave_no_secret(root: Path) -> None:
    hashed = crypt_hash()
    keys = [ssh_key("one"), ssh_key("two")]
    (boot(root) / "user-data").write_text("#cloud-config\n" + user_data(hashed, keys))
    (boot(root) / "network-config").write_text(network_config())
    (boot(root) / "meta-data").write_text("instance-id: rpi-imager-1733090000000\n")
    assert run(root) is not None
    data = report(root)
    assert data["sources"] == {
        "HOSTNAME": "user-data",
        "TIMEZONE": "user-data",
        "WIFI_SSID": "network-config",
        "WIFI_PASSPHRASE": "network-config",
        "WIFI_COUNTRY": "network-config",
        "SSH_AUTHORIZED_KEY": "user-data",
        "ADMIN_PASSWORD": "user-data",
    }
    assert data["problems"] == []
    assert "user-data: apt, enable_ssh, keyboard, manage_resolv_conf, packages, ssh_pwauth not used" in (
        " ".join(data["notes"])
    )
    assert (root / "etc/hostname").read_text() == "lab-pi\n"
    assert (root / "etc/timezone").read_text() == "Europe/Berlin\n"
    assert (root / "root/.ssh/authorized_keys").read_text() == "\n".join(keys) + "\n"
    conf = wpa(root)
    assert f"ssid={SSID.encode().hex()}" in conf and f"psk={psk()}" in conf and "country=DE" in conf
    # Imager's password is the admin password, checked by crypt(3), and nothing else works.
    store = PasswordStore(root / "var/lib/micarray")
    assert store.verify(PASSWORD) and not store.verify(PASSWORD + "x") and not store.verify("")
    left = all_bytes(boot(root))
    assert hashed.encode() not in left and psk().encode() not in left and b"$5$" not in left
    assert (boot(root) / "meta-data").exists()
    # Nothing is done twice.
    before = report(root)
    assert run(root) is None
    assert report(root) == before


@needs
def test_micarray_txt_wins_where_both_speak(root: Path) -> None:
    (boot(root) / "micarray.txt").write_text("HOSTNAME=from-micarray\nADMIN_PASSWORD=micarray-pass\n")
    (boot(root) / "user-data").write_text(user_data(crypt_hash(), [ssh_key()]))
    run(root)
    data = report(root)
    assert (root / "etc/hostname").read_text() == "from-micarray\n"
    assert data["sources"]["HOSTNAME"] == "micarray.txt"
    assert data["sources"]["ADMIN_PASSWORD"] == "micarray.txt"
    assert data["sources"]["TIMEZONE"] == "user-data"
    assert data["sources"]["SSH_AUTHORIZED_KEY"] == "user-data"
    assert "user-data: HOSTNAME not used, micarray.txt sets it" in data["notes"]
    assert "user-data: the password not used, micarray.txt sets it" in data["notes"]
    store = PasswordStore(root / "var/lib/micarray")
    assert store.verify("micarray-pass") and not store.verify(PASSWORD)


@needs
def test_legacy_files_ssh_userconf_and_wpa_supplicant(root: Path) -> None:
    hashed = crypt_hash()
    (boot(root) / "ssh").write_text("")
    (boot(root) / "userconf.txt").write_text(f"pi:{hashed}\n")
    (boot(root) / "wpa_supplicant.conf").write_text(
        "ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev\nupdate_config=1\ncountry=GB\n\n"
        f'network={{\n\tssid="home net"\n\tpsk="{WIFI_PASS}"\n\tscan_ssid=1\n}}\n'
    )
    run(root)
    data = report(root)
    assert data["sources"] == {
        "WIFI_SSID": "wpa_supplicant.conf",
        "WIFI_PASSPHRASE": "wpa_supplicant.conf",
        "WIFI_COUNTRY": "wpa_supplicant.conf",
        "ADMIN_PASSWORD": "userconf.txt",
    }
    assert "ssh: SSH is always on here, for keys only" in data["notes"]
    conf = wpa(root)
    assert "country=GB" in conf and "scan_ssid=1" in conf
    assert f"psk={psk(ssid='home net')}" in conf
    assert PasswordStore(root / "var/lib/micarray").verify(PASSWORD)
    assert sorted(p.name for p in boot(root).iterdir()) == ["cmdline.txt"]


@needs
def test_imagers_firstrun_sh_is_read_never_run_and_the_hook_removed(root: Path) -> None:
    hashed = crypt_hash()
    script = boot(root) / "firstrun.sh"
    script.write_text(firstrun_script(hashed, ssh_key()))
    (boot(root) / "cmdline.txt").write_text(
        CMDLINE + " systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot"
        " systemd.unit=kernel-command-line.target\n"
    )
    run(root)
    data = report(root)
    assert set(data["sources"].values()) == {"firstrun.sh"}
    assert data["problems"] == []
    assert (
        "cmdline.txt: systemd.run=firstrun.sh is Raspberry Pi Imager's script; read, not run" in data["notes"]
    )
    assert (root / "etc/hostname").read_text() == "run-pi\n"
    assert (root / "etc/timezone").read_text() == "Europe/London\n"
    conf = wpa(root)
    hex_ssid = b"it's wifi".hex()
    assert f"ssid={hex_ssid}" in conf and "scan_ssid=1" in conf and "country=FR" in conf
    assert PasswordStore(root / "var/lib/micarray").verify(PASSWORD)
    assert not script.exists()
    assert (boot(root) / "cmdline.txt").read_text() == CMDLINE + "\n"


@needs
def test_another_script_is_not_run_kept_and_reported(root: Path) -> None:
    marker = root / "ran"
    script = boot(root) / "firstrun.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nrm -f /boot/firstrun.sh\n")
    script.chmod(0o755)
    (boot(root) / "cmdline.txt").write_text(CMDLINE + " systemd.run=/boot/firstrun.sh\n")
    run(root)
    problems = report(root)["problems"]
    assert problems == [
        {
            "line": 0,
            "key": "cmdline.txt",
            "message": "cmdline.txt asked to run firstrun.sh at boot; it is not Raspberry Pi Imager's "
            "script, so it was not run (this device never runs boot scripts) and the systemd.run "
            "arguments were removed from cmdline.txt",
        }
    ]
    assert not marker.exists() and script.exists()
    assert (boot(root) / "cmdline.txt").read_text() == CMDLINE + "\n"


@needs
def test_a_missing_script_only_loses_its_arguments(root: Path) -> None:
    (boot(root) / "cmdline.txt").write_text(f"{CMDLINE} systemd.run=/boot/firmware/setup.sh\n")
    run(root)
    assert "setup.sh at boot; it is missing, so it was not run" in report(root)["problems"][0]["message"]
    assert (boot(root) / "cmdline.txt").read_text() == CMDLINE + "\n"


@needs
@pytest.mark.parametrize(
    ("user_data_text", "message"),
    [
        ("a: &a [x, x]\nb: &b [*a, *a, *a]\nhostname: [*b, *b]\n", None),
        ("hostname: !!python/object/apply:os.system ['touch /tmp/owned']\n", "user-data is not valid YAML"),
        ("- just\n- a list\n", "user-data does not hold a YAML mapping"),
        ("hostname: bad_name\n", "hostname 'bad_name' is not valid"),
        ('users:\n- passwd: "$1$salt$md5hash"\n', "the password hash is not one this device accepts"),
        ('users:\n- passwd: "plaintext-by-hand"\n', "the password hash is not one this device accepts"),
        ("hostname: ok\n" + "#" * 70_000 + "\n", "user-data is larger than 64 KiB"),
        ("hostname: [unclosed\n", "user-data is not valid YAML (line 2)"),
        ("hostname: " + "[" * 30_000 + "\n", "user-data is nested too deeply"),
    ],
)
def test_hostile_or_broken_user_data_is_refused_in_words(
    root: Path, user_data_text: str, message: str | None
) -> None:
    (boot(root) / "user-data").write_text(user_data_text)
    run(root)
    problems = [p["message"] for p in report(root)["problems"]]
    if message is None:
        assert problems == [] and (root / "etc/hostname").read_text() == "micarray\n"
    else:
        assert any(message in p for p in problems), problems
    assert not Path("/tmp/owned").exists()
    # What the web app shows names the file the problem is in.
    shown = bootreport.boot_file_problems(root / "var/lib/micarray")
    assert all(line.startswith("user-data: ") for line in shown), shown
    assert "plaintext-by-hand" not in json.dumps(report(root))
    assert (boot(root) / "user-data").read_text().startswith("# This file was written by Raspberry Pi Imager")


@needs
def test_country_from_the_kernel_command_line(root: Path) -> None:
    (boot(root) / "cmdline.txt").write_text(CMDLINE + " cfg80211.ieee80211_regdom=NL\n")
    net = network_config().replace('      regulatory-domain: "DE"\n', "")
    (boot(root) / "network-config").write_text(net)
    run(root)
    assert "country=NL" in wpa(root)
    assert report(root)["sources"]["WIFI_COUNTRY"] == "cmdline.txt"
    # The argument stays in cmdline.txt; at later boots it alone asks for nothing.
    before = report(root)
    assert run(root) is None
    assert report(root) == before


def test_cmdline_cleaning_keeps_every_other_argument() -> None:
    line = "a=1 systemd.run=/boot/firstrun.sh b systemd.run_success_action=reboot "
    line += "systemd.run_failure_action=none systemd.unit=kernel-command-line.target c=3"
    assert firstrun.clean_cmdline(line) == "a=1 b c=3"
    assert firstrun.named_script(line) == "/boot/firstrun.sh"


@needs
def test_crypt_verify_against_the_c_library() -> None:
    for flag in ("-5", "-6"):
        out = subprocess.run(["openssl", "passwd", flag, "pw-ü"], capture_output=True, text=True, check=True)
        hashed = out.stdout.strip()
        assert cryptpass.verify("pw-ü", hashed)
        assert not cryptpass.verify("pw-u", hashed)
    with pytest.raises(cryptpass.CryptHashError, match=r"use SHA-256-crypt \(\$5\$"):
        cryptpass.check_hash("$1$abc$def")
