"""Boot the SD-card image in qemu-system-aarch64 and check it end to end.

Run by ``make image-test`` after the image is built (long; not in CI):

    python image/image_test.py image/out/micarray-<version>-arm64.img

Works on a copy of the image, made 1 GiB larger so that first boot has a
partition to grow. Sets the admin password, an SSH key, a host name and one
bad line through the boot partition's ``micarray.txt`` (with mtools, no
mounts), boots with the image's own kernel and initrd on QEMU's ``virt``
machine, and then checks over forwarded loopback ports: the service is
active, the first-boot report, the secrets are gone from the FAT file, root
grew, the web app's login (XSRF cookie flow), an example script against the
simulator through the API, and the mDNS answer from inside the guest. The
guest's network is QEMU's ``restrict=on`` user network: it reaches nothing
but the forwarded ports.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import guest_checks
import guest_web

REPO = Path(__file__).resolve().parent.parent
BOOT_OFFSET = "4M"  # where mkdisk.sh puts the FAT partition
HOSTNAME = "micarray-test"
WIFI_SSID = "micarray test net"
GUEST_HTTP_PORT = 80
GUEST_HTTPS_PORT = 443
BOOT_DEADLINE_S = 1200.0
POLL_S = 1.0
EXAMPLE_DEADLINE_S = 120.0
T = TypeVar("T")
started = time.monotonic()


def say(text: str) -> None:
    """One progress line with the time since this script started."""
    print(f"[image-test {time.monotonic() - started:7.1f} s] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fat(image: Path) -> str:
    return f"{image}@@{BOOT_OFFSET}"


def fat_read(disk: Path, src: str, dst: Path) -> None:
    """One file from the card's FAT boot partition (mtools, no mount)."""
    subprocess.run(["mcopy", "-n", "-i", fat(disk), src, str(dst)], check=True)


def prepare(image: Path, work: Path, password: str, pubkey: str, imager_key: str) -> tuple[Path, Path, Path]:
    """Copy the image, grow the copy, write micarray.txt and Imager's files, extract kernel and initrd."""
    disk = work / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
    with disk.open("r+b") as f:
        f.truncate(disk.stat().st_size + (1 << 30))
    settings = work / "micarray.txt"
    fat_read(disk, "::micarray.txt", settings)
    with settings.open("a") as text:
        text.write(f"\nHOSTNAME={HOSTNAME}\nADMIN_PASSWORD={password}\n")
        text.write(f"WIFI_COUNTRY=DE\nWIFI_SSID={WIFI_SSID}\nWIFI_PASSPHRASE={password}-wifi\n")
        text.write(f"SSH_AUTHORIZED_KEY={pubkey}\nTIMEZONE=Europe/Berlin\nCOLOUR=blue\n")
        text.write("ARRAY_PRESET=respeaker-usb\n")
    subprocess.run(["mcopy", "-o", "-i", fat(disk), str(settings), "::micarray.txt"], check=True)

    def fat_copy(src: Path, dst: str) -> None:
        subprocess.run(["mcopy", "-o", "-i", fat(disk), str(src), dst], check=True)

    def read(src: str, dst: Path) -> None:
        fat_read(disk, src, dst)

    guest_checks.write_imager_files(fat_copy, read, work, imager_key)
    names = subprocess.run(
        ["mdir", "-b", "-i", fat(disk), "::"], check=True, capture_output=True, text=True
    ).stdout.split()
    kernel = next(n for n in names if Path(n).name.startswith("vmlinuz-"))
    initrd = next(n for n in names if Path(n).name.startswith("initrd.img-"))
    for name in (kernel, initrd):
        fat_read(disk, name, work)
    return disk, work / Path(kernel).name, work / Path(initrd).name


def kernel_arguments(disk: Path) -> str:
    """What the Pi's firmware passes the kernel: the card's cmdline.txt as it is now (first
    boot takes Imager's hook out of it), with QEMU's serial console for the Pi's."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "cmdline.txt"
        fat_read(disk, "::cmdline.txt", local)
        words = [w for w in local.read_text().split() if not w.startswith("console=")]
    # mac80211_hwsim: a simulated radio stands in for the Pi's Wi-Fi.
    return " ".join([*words, "console=ttyAMA0", "modules-load=mac80211_hwsim"])


def start_qemu(
    disk: Path, kernel: Path, initrd: Path, *, http: int, https: int, ssh: int, log: Path
) -> subprocess.Popen[bytes]:
    """The guest on QEMU's virt machine, booted as the card says; its console goes to ``log``."""
    net = (
        f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{http}-:{GUEST_HTTP_PORT},"
        f"hostfwd=tcp:127.0.0.1:{https}-:{GUEST_HTTPS_PORT},hostfwd=tcp:127.0.0.1:{ssh}-:22"
    )
    cmd = [
        "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1024",
        "-kernel", str(kernel), "-initrd", str(initrd),
        "-append", kernel_arguments(disk),
        "-drive", f"if=none,id=hd0,format=raw,file={disk}", "-device", "virtio-blk-pci,drive=hd0",
        "-netdev", net, "-device", "virtio-net-pci,netdev=net0",
        "-display", "none", "-monitor", "none", "-serial", f"file:{log}",
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL)


def poll(what: str, check: Callable[[], T | None], qemu: subprocess.Popen[bytes]) -> T:
    """Call ``check`` until it returns a value, QEMU exits, or the deadline passes."""
    deadline = time.monotonic() + BOOT_DEADLINE_S
    while time.monotonic() < deadline:
        if qemu.poll() is not None:
            raise SystemExit(f"QEMU exited ({qemu.returncode}) while waiting for {what}")
        value = check()
        if value is not None:
            return value
        time.sleep(POLL_S)
    raise SystemExit(f"gave up waiting for {what} after {BOOT_DEADLINE_S:.0f} s")


class Guest:
    """Commands in the guest over the forwarded SSH port, as root with the test key."""

    def __init__(self, port: int, key: Path) -> None:
        self.port = port
        self.key = key

    def run(self, command: str, stdin: str | None = None, check: bool = True) -> str:
        cmd = [
            "ssh", "-i", str(self.key), "-p", str(self.port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "root@127.0.0.1", command,
        ]  # fmt: skip
        done = subprocess.run(cmd, check=False, input=stdin, capture_output=True, text=True, timeout=300)
        if check and done.returncode != 0:
            raise SystemExit(f"in the guest, {command!r} failed ({done.returncode}): {done.stderr}")
        return done.stdout.strip()

    def copy_in(self, src: Path, dst: str) -> None:
        """One file into the guest with scp."""
        cmd = [
            "scp", "-q", "-i", str(self.key), "-P", str(self.port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", str(src), f"root@127.0.0.1:{dst}",
        ]  # fmt: skip
        subprocess.run(cmd, check=True, timeout=300)

    def ready(self) -> bool | None:
        """True once a command runs, None while SSH does not answer yet."""
        try:
            return True if self.run("echo up", check=False) == "up" else None
        except subprocess.TimeoutExpired:
            return None


MDNS_QUERY = """
import sys, zeroconf
zc = zeroconf.Zeroconf()
found = []
class Listener(zeroconf.ServiceListener):
    def add_service(self, zc, type_, name): found.append(name)
    def update_service(self, zc, type_, name): pass
    def remove_service(self, zc, type_, name): pass
browser = zeroconf.ServiceBrowser(zc, "_http._tcp.local.", Listener())
import time
deadline = time.monotonic() + 10
while not found and time.monotonic() < deadline:
    time.sleep(0.2)
for name in found:
    info = zc.get_service_info("_http._tcp.local.", name, timeout=3000)
    if info:
        print(name, info.server, info.port, ",".join(info.parsed_addresses()))
browser.cancel()
zc.close()
"""


def run_example(http_port: int, token: str) -> str:
    """The record_wav example on this machine against the guest's simulator, through the API.

    The example keeps running after it has saved its recording (as it would in
    the editor until Stop), so it is stopped once its output says so.
    """
    env = dict(os.environ, BI_DEVICE=f"127.0.0.1:{http_port}", BI_TOKEN=token)
    example = REPO / "appliance/examples/record_wav.py"
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.Popen(
            [sys.executable, "-u", str(example)], env=env, cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        deadline = time.monotonic() + EXAMPLE_DEADLINE_S
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ)
                while time.monotonic() < deadline and not any("saved" in x for x in lines):
                    if sel.select(timeout=POLL_S):
                        line = proc.stdout.readline()
                        if not line:
                            break
                        lines.append(line.rstrip())
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            proc.stdout.close()
    if not any("saved" in x for x in lines):
        raise SystemExit("example record_wav.py saved nothing:\n" + "\n".join(lines))
    return "\n".join(lines)


RUN_DIAGNOSIS = (
    "ls -la /var/lib/micarray /var/lib/micarray/runs /run/micarray; id micarray; "
    "grep -E '^(Groups|CapEff)' /proc/$(systemctl show -p MainPID --value micarray)/status; "
    "journalctl -b -u micarray -u 'micarray-run@*' --no-pager | tail -n 30"
)


def check_guest(guest: Guest, password: str) -> str:
    """Service, first-boot outcome, secrets, growth; returns systemd-analyze's line."""
    state = guest.run("systemctl is-active micarray.service", check=False)
    say(f"micarray.service: {state}")
    if state != "active":
        print(guest.run("journalctl -b -u micarray.service --no-pager | tail -40", check=False))
        raise SystemExit("micarray.service is not active")
    report = json.loads(guest.run("cat /var/lib/micarray/firstboot-report.json"))
    say(f"first-boot report: applied {report['applied']}, problems {report['problems']}")
    if "ADMIN_PASSWORD" not in report["applied"] or "HOSTNAME" not in report["applied"]:
        raise SystemExit("first boot did not apply the password and host name")
    if not any(p["key"] == "COLOUR" for p in report["problems"]):
        raise SystemExit("first boot did not report the bad line COLOUR=blue")
    if password in guest.run("cat /boot/firmware/micarray.txt"):
        raise SystemExit("the plaintext password is still on the boot partition")
    say("the plaintext password is gone from /boot/firmware/micarray.txt")
    # The guest's simulated radio (mac80211_hwsim) stands in for the Pi's Wi-Fi.
    wifi = guest.run("systemctl is-active wpa_supplicant@wlan0.service", check=False)
    conf = guest.run("cat /etc/wpa_supplicant/wpa_supplicant-wlan0.conf")
    say(f"wpa_supplicant@wlan0: {wifi}; {conf.count('psk=')} network with a derived key")
    if wifi != "active" or f"ssid={WIFI_SSID.encode().hex()}" not in conf or "country=DE" not in conf:
        raise SystemExit("Wi-Fi from micarray.txt is not configured and running on wlan0")
    env = guest.run("tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value micarray.service)/environ")
    if "MICARRAY_PRESET=respeaker-usb" not in env.splitlines():
        raise SystemExit(f"ARRAY_PRESET did not reach micarray.service's environment: {env}")
    say("ARRAY_PRESET reached micarray.service as MICARRAY_PRESET")
    name = guest.run("hostname")
    if name != HOSTNAME:
        raise SystemExit(f"host name is {name!r}, expected {HOSTNAME!r}")
    say(f"host name {name}, time zone {guest.run('cat /etc/timezone')}")
    say(f"micarray-rootgrow.service: {guest_checks.check_rootgrow(guest)}")
    say(f"root file system: {guest.run('df -h --output=size,used,avail / | tail -1')} (grown)")
    say(f"SSH host key: {guest.run('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')}")
    analyze = ""
    for _ in range(60):
        analyze = guest.run("systemd-analyze 2>&1 | head -1", check=False)
        if analyze.startswith("Startup finished"):
            break
        time.sleep(POLL_S)
    blame = guest.run("systemd-analyze blame --no-pager 2>&1 | head -5", check=False)
    say("slowest units: " + "; ".join(" ".join(line.split()) for line in blame.splitlines()))
    say("what the web app waited for:\n" + critical_chain(guest))
    return analyze


def critical_chain(guest: Guest) -> str:
    """systemd's critical chain up to micarray.service, then the service's own start in its journal:
    where boot time goes before the web app (seconds since the kernel started)."""
    command = "systemd-analyze critical-chain --no-pager micarray.service 2>&1 | tail -n +3"
    chain = guest.run(command, check=False)
    # Unit start, the first line the service logs (its imports are done), HTTP listening, READY.
    marks = "Starting micarray.service|in a browser and|web app on port|Started micarray.service"
    journal = guest.run(
        f"journalctl -b -o short-monotonic --no-pager | grep -E '{marks}' | head -6", check=False
    )
    return f"{chain}\nthe service's start:\n{journal}"


def main() -> int:
    """Prepare, boot, check; always stops QEMU."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = REPO / "image/cache/test"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    key = work / "id_ed25519"
    imager_key = work / "id_imager"
    for k in (key, imager_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)], check=True)
    password = secrets.token_urlsafe(12)
    disk, kernel, initrd = prepare(
        args.image, work, password, key.with_suffix(".pub").read_text().strip(),
        imager_key.with_suffix(".pub").read_text().strip(),
    )  # fmt: skip
    say(f"image copy {disk} ready with micarray.txt settings; kernel {kernel.name}")
    http_port, https_port, ssh_port = free_port(), free_port(), free_port()
    console = work / "console.log"
    boot0 = time.monotonic()
    qemu = start_qemu(disk, kernel, initrd, http=http_port, https=https_port, ssh=ssh_port, log=console)
    try:
        status = poll("the web app over HTTPS", lambda: guest_web.login_page(https_port), qemu)
        t_web = time.monotonic() - boot0
        say(f"web app answered GET /login with {status} after {t_web:.1f} s")
        if status != 200:
            raise SystemExit(f"/login answered {status}: the password from micarray.txt was not set")
        guest = Guest(ssh_port, key)
        poll("SSH", guest.ready, qemu)
        say(f"SSH with the key from micarray.txt works after {time.monotonic() - boot0:.1f} s")
        analyze = check_guest(guest, password)
        if Guest(ssh_port, imager_key).run("echo up", check=False) != "up":
            raise SystemExit("SSH with the key from Imager's user-data does not work")
        guest_checks.check_imager(guest, HOSTNAME)
        say("Imager's user-data: its key logs in as root, micarray.txt's host name won, firstrun.sh not run")
        for row in guest_checks.check_firmware(guest):
            say(f"Wi-Fi firmware in the image: {row}")
        fingerprint = guest_web.pin_certificate(https_port, guest)
        say(f"HTTPS serves the device's own certificate, sha256 {fingerprint}")
        say(f"plain HTTP from the LAN: {guest_web.plain_http_redirects(http_port)}")
        jar = guest_web.web_login(https_port, password)
        say("signed in over HTTPS (XSRF cookie flow; the session cookie is Secure)")
        token = guest.run(
            "runuser -u micarray -- appliance token new image-test --data-dir /var/lib/micarray"
        )
        say("token made in the guest with `appliance token new`")
        try:
            ran, first_uid = guest_web.editor_run(https_port, jar)
            say(f"editor run (Execute, the run template): {ran}")
            lines = guest_web.hostile_project_run(https_port, jar, guest, first_uid)
            say(f"hostile project run (own user, own project, nothing else; stopped): {lines}")
        except SystemExit:
            say("guest state:\n" + guest.run(RUN_DIAGNOSIS, check=False))
            raise
        out = run_example(http_port, token)
        say(f"example record_wav.py against the simulator: {out.splitlines()}")
        answer = guest.run("/opt/micarray/.venv/bin/python -", stdin=MDNS_QUERY)
        say(f"mDNS answer inside the guest: {answer!r}")
        if HOSTNAME not in answer:
            raise SystemExit("no _http._tcp answer naming the device over mDNS")
        version, outcome = guest_checks.check_update(guest, guest.copy_in, work)
        say("updates: " + outcome)

        def web_answers() -> int | None:
            return guest_web.login_page(https_port)

        # A later boot as a user sees it: power off, power on (a new QEMU), time to the web app.
        guest.run("systemctl --no-block poweroff", check=False)
        qemu.wait(timeout=300)
        console = work / "console-2.log"
        boot1 = time.monotonic()
        qemu = start_qemu(disk, kernel, initrd, http=http_port, https=https_port, ssh=ssh_port, log=console)
        poll("the web app over HTTPS after a power cycle", web_answers, qemu)
        t_second = time.monotonic() - boot1
        poll("SSH after a power cycle", guest.ready, qemu)
        guest_checks.check_update_kept(guest, version)
        say(f"second boot: web app answered {t_second:.1f} s after QEMU started; {version} runs")
        second = guest.run("systemd-analyze 2>&1 | head -1", check=False)
        say(f"second boot (systemd-analyze): {second}")
        say("second boot, what the web app waited for:\n" + critical_chain(guest))
        hat = guest_checks.check_hat(guest, lambda: guest_checks.reboot(guest, web_answers))
        say(f"I2S HAT from micarray.txt: {hat}")
        say(guest_web.says_simulated(https_port, guest_web.web_login(https_port, password)))
        say(f"boot (systemd-analyze in the guest): {analyze}")
        say(f"from QEMU start to a working web app: {t_web:.1f} s (first boot), {t_second:.1f} s (second)")
        say(f"load on this machine: {os.getloadavg()}")
        guest.run("systemctl poweroff", check=False)
        qemu.wait(timeout=120)
        say("PASS")
        return 0
    finally:
        if qemu.poll() is None:
            qemu.terminate()
            try:
                qemu.wait(timeout=20)
            except subprocess.TimeoutExpired:
                qemu.kill()
                qemu.wait()
        tail = console.read_text(errors="replace").splitlines()[-15:] if console.exists() else []
        if tail:
            print("--- last console lines ---\n" + "\n".join(tail))
        if not args.keep:
            for path in (disk,):
                path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
