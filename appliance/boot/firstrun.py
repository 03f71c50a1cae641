"""``systemd.run=/boot/firstrun.sh`` in ``cmdline.txt``: read Imager's script, never run one.

Older Raspberry Pi Imager versions (and many headless-Pi guides) put a shell
script on the boot partition and name it on the kernel command line, to run
as root once. This device never runs it. When the script is Imager's own (it
calls ``/usr/lib/raspberrypi-sys-mods/imager_custom`` and removes itself), its
settings are read from those calls, without a shell: host name, SSH keys, the
user's password hash, Wi-Fi and time zone. Any other script is left where it
is, not run, and reported. Either way the ``systemd.run`` arguments leave
``cmdline.txt``, so the next boot is a normal one; this boot carries on too
(the image's drop-in for ``kernel-command-line.service``).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from appliance.boot import bootconfig, cryptpass
from appliance.boot.imager import PASSWORD_HASH, WIFI_HIDDEN, Found, ImagerConfig, read_text

FIRSTRUN = "firstrun.sh"
CMDLINE = "cmdline.txt"
IMAGER_CUSTOM = "/usr/lib/raspberrypi-sys-mods/imager_custom"
USERCONF_PI = "/usr/lib/userconf-pi/userconf"
#: The line Imager's script ends with: the mark that it is Imager's.
SELF_REMOVAL = "rm -f /boot/firstrun.sh"
#: Kernel arguments that belong to the hook; all leave cmdline.txt.
RUN_ARGUMENTS = ("systemd.run=", "systemd.run_success_action=", "systemd.run_failure_action=")
RUN_TARGET = "systemd.unit=kernel-command-line.target"
REGDOM = "cfg80211.ieee80211_regdom="
MAX_CMDLINE_BYTES = 16 * 1024


def named_script(cmdline: str) -> str | None:
    """The path ``systemd.run=`` names, or None."""
    for arg in cmdline.split():
        if arg.startswith("systemd.run="):
            return arg.partition("=")[2].strip("\"'")
    return None


def clean_cmdline(cmdline: str) -> str:
    """The command line without the hook's arguments (everything else in its order)."""
    kept = [a for a in cmdline.split() if not a.startswith(RUN_ARGUMENTS) and a != RUN_TARGET]
    return " ".join(kept)


def is_imager_script(text: str) -> bool:
    """Imager's script calls imager_custom (or userconf) and removes itself at the end."""
    lines = [line.strip() for line in text.splitlines()]
    calls = any(line.startswith((IMAGER_CUSTOM, USERCONF_PI)) for line in lines)
    return calls and SELF_REMOVAL in lines


def read_imager_script(text: str, cfg: ImagerConfig) -> None:
    """Settings from the script's imager_custom and userconf calls, split as the shell would."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith((IMAGER_CUSTOM, USERCONF_PI)):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            cfg.problem(FIRSTRUN, f"{FIRSTRUN}: one {Path(line.split()[0]).name} line cannot be read")
            continue
        if words[0] == USERCONF_PI:
            if len(words) == 3 and words[2]:
                cfg.put(PASSWORD_HASH, words[2], FIRSTRUN, cryptpass.check_hash)
            continue
        _imager_custom(words[1:], cfg)


def _imager_custom(words: list[str], cfg: ImagerConfig) -> None:
    if not words:
        return
    verb, args = words[0], words[1:]
    if verb == "set_hostname" and args:
        cfg.put(bootconfig.HOSTNAME, args[0], FIRSTRUN, bootconfig.check_hostname)
    elif verb == "enable_ssh":
        for key in (a for a in args if a != "-k"):
            cfg.add_key(key, FIRSTRUN)
    elif verb == "set_wlan":
        hidden = "-h" in args
        args = [a for a in args if a != "-h"]
        if args:
            cfg.put(bootconfig.WIFI_SSID, args[0], FIRSTRUN, bootconfig.check_ssid)
        if len(args) > 1 and args[1]:
            cfg.put(bootconfig.WIFI_PASSPHRASE, args[1], FIRSTRUN, bootconfig.check_passphrase)
        if len(args) > 2 and args[2]:
            cfg.put(bootconfig.WIFI_COUNTRY, args[2], FIRSTRUN, bootconfig.check_country)
        if hidden:
            cfg.values.setdefault(WIFI_HIDDEN, Found("1", FIRSTRUN))
    elif verb == "set_timezone" and args:
        cfg.put(bootconfig.TIMEZONE, args[0], FIRSTRUN, bootconfig.check_timezone)
    elif verb == "set_keymap":
        cfg.notes.append(f"{FIRSTRUN}: the keyboard layout is not used (the device has no console)")


def read_cmdline(boot_dir: Path, cfg: ImagerConfig) -> str | None:
    """Handle the hook and Imager's Wi-Fi country; returns cmdline.txt's new text, or None."""
    path = boot_dir / CMDLINE
    try:
        with path.open("rb") as f:
            # The firmware reads one line of at most a few KiB; so do we.
            cmdline = f.read(MAX_CMDLINE_BYTES).decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return None
    for arg in cmdline.split():
        if arg.startswith(REGDOM) and arg != REGDOM:
            cfg.put(bootconfig.WIFI_COUNTRY, arg[len(REGDOM) :], CMDLINE, bootconfig.check_country)
    script = named_script(cmdline)
    if script is None:
        return None
    _read_script(boot_dir, Path(script).name, cfg)
    return clean_cmdline(cmdline) + "\n"


def _read_script(boot_dir: Path, name: str, cfg: ImagerConfig) -> None:
    path = boot_dir / name
    before = len(cfg.consumed)
    text = read_text(path, cfg)
    if text is not None and is_imager_script(text):
        read_imager_script(text, cfg)
        cfg.notes.append(f"{CMDLINE}: systemd.run={name} is Raspberry Pi Imager's script; read, not run")
        return
    # Someone else's script: not ours to delete, and never run.
    del cfg.consumed[before:]
    what = "is missing" if text is None and not path.exists() else "is not Raspberry Pi Imager's script"
    cfg.problem(
        CMDLINE,
        f"{CMDLINE} asked to run {name} at boot; it {what}, so it was not run (this device never "
        "runs boot scripts) and the systemd.run arguments were removed from cmdline.txt",
    )
