"""Reading what first boot reported, so the web app can show it at every visit."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

REPORT_FILE = "firstboot-report.json"
"""Written by ``appliance.boot.firstboot`` into the data directory."""


def boot_file_problems(data_dir: Path) -> list[str]:
    """The problems first boot found in the boot partition's file, in words (logged too)."""
    try:
        report = json.loads((data_dir / REPORT_FILE).read_text())
        problems = report.get("problems") or []
        name = report.get("boot_file", "boot file")
        notices = [
            f"{name} line {p.get('line')}: {p.get('key')}: {p.get('message')}"
            if p.get("line")
            else f"{p.get('key') or name}: {p.get('message')}"
            for p in problems
        ]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        notices = [f"the first-boot report {REPORT_FILE} cannot be read: {exc}"]
    for notice in notices:
        log.warning("%s", notice)
    return notices


UPDATE_STATUS_FILE = "update-status.json"
"""Written by ``micarray-update`` (``appliance.boot.update``) into the data directory."""


def update_notices(data_dir: Path) -> list[str]:
    """A notice when the last update went back to the version before it (logged too)."""
    try:
        status = json.loads((data_dir / UPDATE_STATUS_FILE).read_text())
        if status.get("result") != "rolled back":
            return []
        notice = (
            f"The update to {status.get('failed')} was rolled back on {status.get('time')}: "
            f"{status.get('reason')}. Version {status.get('version')} is running "
            f"({status.get('now')}); see `journalctl -t micarray-update`."
        )
    except FileNotFoundError:
        return []
    except (OSError, ValueError, AttributeError) as exc:
        notice = f"the update status {UPDATE_STATUS_FILE} cannot be read: {exc}"
    log.warning("%s", notice)
    return [notice]
