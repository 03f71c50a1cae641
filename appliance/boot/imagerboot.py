"""Applying Raspberry Pi Imager's settings at boot, after ``micarray.txt`` (which wins).

Reads them with :mod:`appliance.boot.imager` and :mod:`appliance.boot.firstrun`,
applies what ``micarray.txt`` did not already set with the same steps as
``micarray.txt`` uses, records which file set what, and then leaves no secret
and nothing to do again: ``user-data`` and ``network-config`` are replaced by
a comment, ``userconf.txt``, ``wpa_supplicant.conf``, ``ssh`` and Imager's
``firstrun.sh`` are removed, and ``cmdline.txt`` loses its ``systemd.run``
arguments.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from appliance.auth import PasswordStore
from appliance.boot import bootconfig, cryptpass, firstrun, imager
from appliance.boot.bootconfig import BootConfig, Problem, Setting
from appliance.boot.firstboot import Report, apply_config, give_to_service, write_fat
from appliance.boot.imager import PASSWORD_HASH, ImagerConfig

log = logging.getLogger(__name__)

WIFI_KEYS = (bootconfig.WIFI_SSID, bootconfig.WIFI_PASSPHRASE, bootconfig.WIFI_COUNTRY, imager.WIFI_HIDDEN)


def process(root: Path, boot_dir: Path, data_dir: Path, live: bool, earlier: Report | None) -> Report | None:
    """Apply Imager's settings that ``earlier`` (micarray.txt's report) did not; the merged report."""
    cfg = imager.read_boot_partition(boot_dir)
    new_cmdline = firstrun.read_cmdline(boot_dir, cfg)
    # Imager's Wi-Fi country stays in cmdline.txt for good: alone, it asks for nothing.
    only_cmdline = all(f.source == firstrun.CMDLINE for f in cfg.values.values())
    if new_cmdline is None and only_cmdline and not (cfg.ssh_keys or cfg.problems or cfg.consumed):
        return earlier
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    report = earlier or Report(time=stamp, boot_file=str(boot_dir / bootconfig.FILE_NAME))
    taken = set(report.applied) | _also_set(report)
    try:
        _apply(root, data_dir, cfg, report, taken=taken, live=live)
    finally:
        # Secrets go whatever happened above.
        _clean_up(boot_dir, cfg, new_cmdline, stamp)
    report.problems += cfg.problems
    report.notes += cfg.notes
    for problem in cfg.problems:
        log.warning("%s: %s", problem.key, problem.message)
    for note in cfg.notes:
        log.info("%s", note)
    return report


def _also_set(report: Report) -> set[str]:
    """Keys micarray.txt asked for even where applying them failed: it still speaks for them."""
    return {p.key for p in report.problems if p.key in bootconfig.CHECKS}


def _apply(
    root: Path, data_dir: Path, cfg: ImagerConfig, report: Report, *, taken: set[str], live: bool
) -> None:
    config = BootConfig()
    wifi_taken = bootconfig.WIFI_SSID in taken
    for key, found in cfg.values.items():
        if key == PASSWORD_HASH:
            continue
        if key in taken or (wifi_taken and key in WIFI_KEYS):
            cfg.notes.append(f"{found.source}: {key} not used, {bootconfig.FILE_NAME} sets it")
            continue
        config.settings[key] = Setting(key, found.value, 0)
    config.ssh_keys = [Setting(bootconfig.SSH_AUTHORIZED_KEY, k.value, 0) for k in cfg.ssh_keys]
    if bootconfig.WIFI_SSID not in config.settings:
        for key in WIFI_KEYS:
            config.settings.pop(key, None)
    done = apply_config(root, data_dir, config, live)
    for problem in done.problems:
        source = _source(cfg, problem.key)
        report.problems.append(Problem(0, source, f"{problem.key} from {source}: {problem.message}"))
    for key in dict.fromkeys(done.applied):
        report.applied.append(key)
        report.sources[key] = _source(cfg, key)
    _apply_password(root, data_dir, cfg, taken, report)


def _source(cfg: ImagerConfig, key: str) -> str:
    if key == bootconfig.SSH_AUTHORIZED_KEY:
        return ", ".join(dict.fromkeys(k.source for k in cfg.ssh_keys))
    found = cfg.values.get(key)
    return found.source if found else "?"


def _apply_password(root: Path, data_dir: Path, cfg: ImagerConfig, taken: set[str], report: Report) -> None:
    found = cfg.values.get(PASSWORD_HASH)
    if found is None:
        return
    if bootconfig.ADMIN_PASSWORD in taken:
        cfg.notes.append(f"{found.source}: the password not used, {bootconfig.FILE_NAME} sets it")
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        PasswordStore(data_dir).import_crypt(found.value)
    except (OSError, cryptpass.CryptHashError) as exc:
        report.problems.append(Problem(0, found.source, f"the password from {found.source}: {exc}"))
        return
    give_to_service(root, data_dir / "password.json")
    report.applied.append(bootconfig.ADMIN_PASSWORD)
    report.sources[bootconfig.ADMIN_PASSWORD] = found.source
    log.info("admin password set from %s (Raspberry Pi Imager's password)", found.source)


def _clean_up(boot_dir: Path, cfg: ImagerConfig, new_cmdline: str | None, stamp: str) -> None:
    if new_cmdline is not None:
        write_fat(boot_dir / firstrun.CMDLINE, new_cmdline)
        log.info("removed systemd.run from %s", firstrun.CMDLINE)
    for path in dict.fromkeys(cfg.consumed):
        if path.name in (imager.USER_DATA, imager.NETWORK_CONFIG):
            write_fat(path, imager.DONE_NOTE.format(stamp=stamp))
        else:
            path.unlink(missing_ok=True)
