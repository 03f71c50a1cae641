"""The image test's checks for Raspberry Pi Imager's files, Wi-Fi firmware and updates.

Used by ``image/image_test.py`` (kept apart so that file stays one concept:
booting and the basic checks). Each ``write_*`` prepares the disk copy before
the boot, each ``check_*`` runs in the booted guest over SSH and raises
SystemExit with what was wrong.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import boards

# The tests' wheel builder (tests/wheels.py), shared with tests/test_update.py; this
# file runs as a script from image/, where the checkout's root is not on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.wheels import appliance_wheel

REPO = Path(__file__).resolve().parent.parent
#: Imager's host name loses to micarray.txt's; its key must still log in.
IMAGER_HOSTNAME = "from-imager"
#: Kernel arguments of Imager's firstrun.sh hook, added to the first boot.
FIRSTRUN_APPEND = (
    " systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target"
)
UNKNOWN_SCRIPT = "#!/bin/sh\n# not Imager's\ntouch /root/firstrun-ran\n"


class Guest(Protocol):
    def run(self, command: str, stdin: str | None = None, check: bool = True) -> str: ...


def write_imager_files(
    fat_copy: Callable[[Path, str], None], fat_read: Callable[[str, Path], None], work: Path, pubkey: str
) -> None:
    """Imager's cloud-init user-data (as Imager 2 writes it), a firstrun.sh that is not Imager's,
    and the hook in cmdline.txt as Imager adds it (QEMU passes the same arguments to the kernel)."""
    user_data = work / "user-data"
    user_data.write_text(
        "manage_resolv_conf: false\n"
        f"hostname: {IMAGER_HOSTNAME}\nmanage_etc_hosts: true\n"
        "users:\n- name: pi\n  groups: users,adm,sudo\n  shell: /bin/bash\n  lock_passwd: true\n"
        f"  ssh_authorized_keys:\n    - {pubkey}\n  sudo: ALL=(ALL) NOPASSWD:ALL\n"
        "enable_ssh: true\nssh_pwauth: false\n"
    )
    fat_copy(user_data, "::user-data")
    script = work / "firstrun.sh"
    script.write_text(UNKNOWN_SCRIPT)
    fat_copy(script, "::firstrun.sh")
    cmdline = work / "cmdline.txt"
    fat_read("::cmdline.txt", cmdline)
    cmdline.write_text(cmdline.read_text().strip() + FIRSTRUN_APPEND + "\n")
    fat_copy(cmdline, "::cmdline.txt")


def check_imager(guest: Guest, hostname: str) -> None:
    """micarray.txt won the host name, Imager's key was added, the script was not run."""
    report = json.loads(guest.run("cat /var/lib/micarray/firstboot-report.json"))
    sources = report.get("sources", {})
    print(f"  sources: {sources}; notes: {report.get('notes')}")
    if sources.get("HOSTNAME") != "micarray.txt" or "user-data" not in sources.get("SSH_AUTHORIZED_KEY", ""):
        raise SystemExit(f"the first-boot report does not say which file set what: {sources}")
    if guest.run("hostname") != hostname:
        raise SystemExit("Imager's host name won over micarray.txt's")
    if guest.run("test -e /root/firstrun-ran && echo ran || echo not", check=False) != "not":
        raise SystemExit("a firstrun.sh that is not Imager's was run")
    if "systemd.run" in guest.run("cat /boot/firmware/cmdline.txt"):
        raise SystemExit("systemd.run is still in cmdline.txt")
    if not any(p.get("key") == "cmdline.txt" for p in report["problems"]):
        raise SystemExit("the skipped firstrun.sh is not in the first-boot report")
    target = guest.run("systemctl is-active multi-user.target", check=False)
    if target != "active":
        raise SystemExit(f"with systemd.run on the kernel command line, multi-user.target is {target}")


def check_rootgrow(guest: Guest, deadline_s: float = 600.0) -> str:
    """micarray-rootgrow.service (which nothing waits for) ended well; its journal line."""
    deadline = time.monotonic() + deadline_s
    state = ""
    while time.monotonic() < deadline:
        state = guest.run("systemctl show -p ActiveState --value micarray-rootgrow.service", check=False)
        if state not in ("activating", "deactivating", ""):
            break
        time.sleep(1.0)
    result = guest.run("systemctl show -p Result --value micarray-rootgrow.service", check=False)
    if result != "success":
        log = guest.run("journalctl -b -u micarray-rootgrow --no-pager | tail -5", check=False)
        raise SystemExit(f"micarray-rootgrow.service ended {state}/{result}: {log}")
    return guest.run("journalctl -b -u micarray-rootgrow --no-pager -o cat | tail -1", check=False)


def check_firmware(guest: Guest) -> list[str]:
    """The Wi-Fi firmware files of every supported board, present in the image (a table)."""
    rows = []
    for board, names in {
        **boards.WIFI_FIRMWARE,
        **{b: n for b, (n, _) in boards.NO_WIFI_FIRMWARE.items()},
    }.items():
        quoted = " ".join(shlex.quote(n) for n in names)
        out = guest.run(
            f'cd /lib/firmware && for f in {quoted}; do [ -e "$f" ] && echo "$f"; done', check=False
        )
        found = [line for line in out.splitlines() if line]
        rows.append(f"{board}: {len(found)}/{len(names)} ({', '.join(found) or 'none'})")
        if board in boards.WIFI_FIRMWARE and len(found) != len(names):
            raise SystemExit(f"Wi-Fi firmware missing for {board}: {sorted(set(names) - set(found))}")
    return rows


def build_wheels(work: Path) -> dict[str, Path]:
    """A good and a broken wheel of this tree, at versions after the image's."""
    version = re.search(r'(?m)^version = "(.*)"$', (REPO / "pyproject.toml").read_text())
    assert version is not None
    src = work / "wheel-src"
    out: dict[str, Path] = {}
    for kind, suffix in (("good", ".post1"), ("broken", ".post2")):
        # The whole working tree, with the built front end that git does not track.
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(
            REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", "cache", "out")
        )
        breakage = 'raise ImportError("broken on purpose")\n' if kind == "broken" else ""
        out[kind] = appliance_wheel(src, work / f"dist-{kind}", version.group(1) + suffix, breakage)
    return out


def check_update(guest: Guest, copy_in: Callable[[Path, str], None], work: Path) -> tuple[str, str]:
    """A broken update goes back by itself and the device serves; a good one is kept."""
    wheels = build_wheels(work)
    for wheel in wheels.values():
        copy_in(wheel, f"/root/{wheel.name}")
    broken = guest.run(f"micarray-update /root/{wheels['broken'].name}; echo exit=$?", check=False)
    if (
        not broken.endswith("exit=1")
        or guest.run("systemctl is-active micarray.service", check=False) != "active"
    ):
        raise SystemExit(f"the broken update did not roll back: {broken}")
    status = json.loads(guest.run("cat /var/lib/micarray/update-status.json"))
    if status.get("result") != "rolled back":
        raise SystemExit(f"update-status.json after the broken update: {status}")
    journal = guest.run("journalctl -t micarray-update --no-pager | tail -3", check=False)
    good = guest.run(f"micarray-update /root/{wheels['good'].name}; echo exit=$?", check=False)
    if not good.endswith("exit=0"):
        raise SystemExit(f"the good update failed: {good}")
    version = installed_version(guest)
    if version != wheels["good"].name.split("-")[1]:
        raise SystemExit(f"after the good update {version} is installed")
    return (
        version,
        f"broken update rolled back ({status['reason']}); journal: {journal!r}; good update: {version}",
    )


def installed_version(guest: Guest) -> str:
    """The appliance version installed in the guest's venv (the package's own __version__ is fixed)."""
    return guest.run(
        "/opt/micarray/.venv/bin/python -c "
        "\"import importlib.metadata as m; print(m.version('micarray-appliance'))\""
    )


def reboot(guest: Guest, web_answers: Callable[[], object | None], deadline_s: float = 900.0) -> float:
    """Reboot the guest; seconds from `systemctl reboot` until the new boot's web app answers."""
    before = guest.run("cat /proc/sys/kernel/random/boot_id")
    started = time.monotonic()
    guest.run("systemctl --no-block reboot", check=False)
    deadline = started + deadline_s
    while time.monotonic() < deadline:
        try:
            now = guest.run("cat /proc/sys/kernel/random/boot_id", check=False)
        except subprocess.TimeoutExpired:
            now = ""
        if now and now != before and web_answers() is not None:
            return time.monotonic() - started
        time.sleep(1.0)
    raise SystemExit(f"the guest did not come back from a reboot within {deadline_s:.0f} s")


def check_update_kept(guest: Guest, version: str) -> None:
    """After a reboot the good update is still the one that runs."""
    now = installed_version(guest)
    if now != version or guest.run("systemctl is-active micarray.service", check=False) != "active":
        raise SystemExit(f"after a reboot {now} is installed (expected {version})")


def check_hat(guest: Guest, reboot_once: Callable[[], float]) -> str:
    """``I2S_HAT=`` from micarray.txt at a later boot: the overlay line lands where kernel
    updates keep it and in today's config.txt, and the device restarts once by itself."""
    overlay = "micarray-respeaker-2mic"
    guest.run(f"test -s /boot/firmware/overlays/{overlay}.dtbo")
    guest.run("printf '\\nI2S_HAT=respeaker-2mic\\n' >> /boot/firmware/micarray.txt")
    # The boot that applies the line restarts before the service starts, so the web
    # app answers only in the boot after it.
    seconds = reboot_once()
    for path in ("/etc/default/raspi-firmware-custom", "/boot/firmware/config.txt"):
        if f"dtoverlay={overlay}" not in guest.run(f"cat {path}", check=False):
            raise SystemExit(f"I2S_HAT=respeaker-2mic left no dtoverlay={overlay} line in {path}")
    if "#I2S_HAT=respeaker-2mic" not in guest.run("cat /boot/firmware/micarray.txt"):
        raise SystemExit("the applied I2S_HAT line was not turned into a comment")
    now = guest.run("journalctl -b -u micarray-firstboot --no-pager -o cat", check=False)
    if "restarting once" in now:
        raise SystemExit("the device restarts for the HAT again and again")
    before = guest.run("journalctl -b -1 -u micarray-firstboot --no-pager -o cat 2>&1", check=False)
    restarted = "restarting once" in before
    if not restarted and "No journal files" not in before and "unavailable" not in before:
        raise SystemExit(f"the boot that applied I2S_HAT did not restart: {before[-300:]}")
    said = "restarted once" if restarted else "restarted (the journal keeps one boot)"
    return f"overlay {overlay} in raspi-firmware-custom and config.txt; {said}; {seconds:.0f} s"
