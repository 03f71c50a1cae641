"""The user's saved scripts: one ``.py`` file each under the data dir's ``scripts/``.

Every write is atomic (``storage.atomic_write_text``), so a power cut leaves a
script either as it was or as it was saved, never half written. Names are
checked here, in one place, so a request can never reach outside the folder.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ApplianceError
from appliance.storage import atomic_write_text

log = logging.getLogger(__name__)

SCRIPTS_DIR = "scripts"
MAX_SCRIPT_BYTES = 1 << 20
"""Largest script the device keeps (1 MiB)."""
MAX_NAME_LENGTH = 80
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. -]*\.py$")


class ScriptError(ApplianceError):
    """A script name or body the store refuses, or a script that is not there."""


@dataclass(frozen=True, slots=True)
class ScriptInfo:
    """One saved script as listed."""

    name: str
    size: int
    modified: float
    """Last change, seconds since the epoch."""


def check_name(name: str) -> str:
    """Return ``name`` if it is an acceptable script name, else raise ScriptError."""
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name) or ".." in name:
        raise ScriptError(
            f"script name {name!r} is not allowed; use letters, digits, '_', '-', '.' or spaces, "
            f"at most {MAX_NAME_LENGTH} characters, ending in .py"
        )
    return name


class ScriptStore:
    """List, read, save, rename and delete scripts in one folder."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / SCRIPTS_DIR

    def _path(self, name: str) -> Path:
        return self.folder / check_name(name)

    def list(self) -> list[ScriptInfo]:
        """Every saved script, sorted by name."""
        if not self.folder.is_dir():
            return []
        found = []
        for entry in os.scandir(self.folder):
            if entry.is_file() and _NAME.match(entry.name):
                st = entry.stat()
                found.append(ScriptInfo(entry.name, st.st_size, st.st_mtime))
        return sorted(found, key=lambda s: s.name.lower())

    def read(self, name: str) -> str:
        """The text of script ``name``."""
        path = self._path(name)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ScriptError(f"no script named {name!r}") from None
        except UnicodeDecodeError:
            raise ScriptError(f"script {name!r} is not UTF-8 text") from None

    def save(self, name: str, text: str) -> ScriptInfo:
        """Write script ``name`` atomically, replacing any earlier version."""
        path = self._path(name)
        size = len(text.encode("utf-8"))
        if size > MAX_SCRIPT_BYTES:
            raise ScriptError(
                f"script {name!r} has {size} bytes; the device keeps scripts up to {MAX_SCRIPT_BYTES} bytes"
            )
        atomic_write_text(path, text)
        log.info("saved script %s (%d bytes)", name, size)
        st = path.stat()
        return ScriptInfo(name, st.st_size, st.st_mtime)

    def rename(self, old: str, new: str) -> None:
        """Rename a script; refuses to overwrite another one."""
        src, dst = self._path(old), self._path(new)
        if not src.is_file():
            raise ScriptError(f"no script named {old!r}")
        if dst.exists():
            raise ScriptError(f"a script named {new!r} exists already; pick another name")
        os.rename(src, dst)
        _sync_dir(self.folder)
        log.info("renamed script %s to %s", old, new)

    def delete(self, name: str) -> None:
        """Remove a script."""
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ScriptError(f"no script named {name!r}") from None
        _sync_dir(self.folder)
        log.info("deleted script %s", name)


def _sync_dir(folder: Path) -> None:
    # A rename or unlink is only durable once the directory itself is synced.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
