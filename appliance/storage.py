"""Writing files so that a power cut leaves either the old or the new content.

A write that fails for want of space raises :class:`DiskFullError`, which
says so in words with the space left, and leaves the old file as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from appliance.errors import ApplianceError

#: The errors that mean "no room": the card is full, or a quota is.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
MB = 1_000_000


class DiskFullError(ApplianceError, OSError):
    """A file could not be written because the disk (or a quota) is full."""

    code = "disk_full"

    def __init__(self, path: Path, free_bytes: int) -> None:
        super().__init__(
            errno.ENOSPC,
            f"the disk is full ({free_bytes // MB} MB free); {path.name} was not saved. "
            "Free some space (delete recordings or old scripts) and try again",
        )
        self.path = path
        self.free_bytes = free_bytes

    def __str__(self) -> str:
        return str(self.strerror)


def free_bytes(path: Path) -> int:
    """Bytes free for ordinary users on the file system that holds ``path`` (0 if unknown)."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return 0


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    The data goes to a temporary file in the same directory, is flushed to the
    card, and is renamed over the target; then the directory is synced so the
    rename itself survives a power cut.  Raises :class:`DiskFullError` when
    there is no room; the old content is then kept.
    """
    try:
        _write(path, data, mode)
    except OSError as exc:
        if exc.errno in NO_SPACE and not isinstance(exc, DiskFullError):
            raise DiskFullError(path, free_bytes(path.parent)) from exc
        raise


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically and durably."""
    atomic_write_bytes(path, text.encode("utf-8"), mode)
