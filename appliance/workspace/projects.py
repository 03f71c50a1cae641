"""Projects: folders of files under the data dir's ``projects/``, one per script.

A project holds the script, its helper modules and packages and its data
files; a run's working directory is its project.  Every name goes through
:mod:`appliance.workspace.names`; every write is atomic (a hidden temporary
file in the same folder, fsynced, renamed, the folder synced) so a power cut
leaves a file as it was or as it was sent, never half written.  Quotas are
checked before any byte is accepted, counting uploads still in flight.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from appliance.errors import ApplianceError
from appliance.storage import atomic_write_bytes
from appliance.workspace.names import BadName, check_segment, resolve_inside, walk_files

log = logging.getLogger(__name__)

PROJECTS_DIR = "projects"
MIB = 1 << 20


class ProjectError(ApplianceError, ValueError):
    """A project request that cannot be served (missing, exists already, over quota)."""

    code = "project"


class QuotaExceeded(ProjectError):
    """A write that would take more room than the device allows."""


@dataclass(frozen=True)
class Quota:
    """How much the workspace may hold.  Checked before a write starts."""

    file_bytes: int = 512 * MIB
    """Largest single file (a long multichannel WAV fits)."""
    project_bytes: int = 2048 * MIB
    """All files of one project together."""
    project_files: int = 5000
    """Files in one project."""
    reserve_bytes: int = 256 * MIB
    """Free space left on the card after any write, for captures and the system."""


QUOTA_FILE = "workspace.json"
_QUOTA_KEYS = {"file_mib": "file_bytes", "project_mib": "project_bytes", "project_files": "project_files"}


def load_quota(data_dir: Path) -> Quota:
    """The admin's quotas from the data dir's ``workspace.json`` (``{"project_mib": 500}``), else defaults.

    Read once at start; a bad value is logged and the default kept, so a
    typo never stops the device from starting.
    """
    path = data_dir / QUOTA_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Quota()
    except (OSError, ValueError) as exc:
        log.warning("%s is unreadable (%s); the default quotas apply", path, exc)
        return Quota()
    fields: dict[str, int] = {}
    for key, value in raw.items() if isinstance(raw, dict) else []:
        if key not in _QUOTA_KEYS or isinstance(value, bool) or not isinstance(value, int) or value < 1:
            if key in _QUOTA_KEYS or key in ("history_mib", "history_runs"):
                log.warning(
                    "%s: %s=%r is not a whole number of at least 1; the default applies", path, key, value
                )
            continue
        fields[_QUOTA_KEYS[key]] = value * MIB if key.endswith("_mib") else value
    return Quota(**fields)


@dataclass(frozen=True)
class FileInfo:
    """One file of a project."""

    path: str
    size: int
    modified: float


@dataclass(frozen=True)
class ProjectInfo:
    """One project as listed."""

    name: str
    files: int
    size: int
    modified: float


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Upload:
    """One file being received: bytes go to a hidden temporary file, then into place."""

    def __init__(self, store: ProjectStore, target: Path, declared: int) -> None:
        self._store = store
        self.target = target
        self.declared = declared
        self.received = 0
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        self._tmp = Path(tmp)
        self._file: BinaryIO = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``; refuses bytes beyond the size declared up front."""
        self.received += len(chunk)
        if self.received > self.declared:
            self.abort()
            raise QuotaExceeded(f"the upload sent more than the {self.declared} bytes it declared")
        self._file.write(chunk)

    def commit(self) -> FileInfo:
        """Make the file durable and put it in place (blocking: call from an executor)."""
        try:
            if self.received != self.declared:
                raise ProjectError(f"the upload ended after {self.received} of {self.declared} bytes")
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self.target)
            _sync_dir(self.target.parent)
        except BaseException:
            self.abort()
            raise
        finally:
            self._store.release(self)
        st = self.target.stat()
        return FileInfo(self.target.name, st.st_size, st.st_mtime)

    def abort(self) -> None:
        """Drop what was received; the target is untouched."""
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)
        self._store.release(self)


class ProjectStore:
    """Every project of the device: list, create, files in and out, zip."""

    def __init__(self, data_dir: Path, quota: Quota | None = None) -> None:
        self.root = data_dir / PROJECTS_DIR
        self.quota = quota or Quota()
        self._pending: dict[int, tuple[str, int]] = {}

    # -- projects ---------------------------------------------------------------
    def folder(self, project: str, *, create: bool = False) -> Path:
        """The folder of ``project`` (checked); ProjectError when missing and not created."""
        path = self.root / check_segment(project, "project name")
        if create:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir() or path.is_symlink():
            raise ProjectError(f"no project named {project!r}")
        return path

    def list(self) -> list[ProjectInfo]:
        """Every project, sorted by name."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name.lower()):
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            files = walk_files(Path(entry.path))
            modified = max([st.st_mtime for _, st in files], default=entry.stat().st_mtime)
            found.append(ProjectInfo(entry.name, len(files), sum(st.st_size for _, st in files), modified))
        return found

    def create(self, project: str) -> Path:
        """Make an empty project; refuses a name in use."""
        path = self.root / check_segment(project, "project name")
        if path.exists():
            raise ProjectError(f"a project named {project!r} exists already; pick another name")
        path.mkdir(parents=True)
        _sync_dir(self.root)
        return path

    def delete_project(self, project: str) -> None:
        """Remove a project and every file in it."""
        shutil.rmtree(self.folder(project))
        _sync_dir(self.root)
        log.info("deleted project %s", project)

    # -- files ------------------------------------------------------------------
    def files(self, project: str) -> builtins.list[FileInfo]:
        """Every file of ``project`` with its path inside it."""
        return [FileInfo(rel, st.st_size, st.st_mtime) for rel, st in walk_files(self.folder(project))]

    def path_of(self, project: str, relpath: str) -> Path:
        """The plain file ``relpath`` of ``project``, for reading."""
        path = resolve_inside(self.folder(project), relpath, must_exist=True)
        if not path.is_file():
            raise ProjectError(f"{relpath!r} in project {project!r} is a folder, not a file")
        return path

    def _used(self, project: str) -> tuple[int, int]:
        # A project that is not there yet holds nothing (an upload may create it).
        files = walk_files(self.root / check_segment(project, "project name"))
        pending = [size for name, size in self._pending.values() if name == project]
        return sum(st.st_size for _, st in files) + sum(pending), len(files) + len(pending)

    def check_room(self, project: str, relpath: str, size: int) -> None:
        """Raise QuotaExceeded unless ``size`` more bytes at ``relpath`` fit every quota."""
        q = self.quota
        if size > q.file_bytes:
            raise QuotaExceeded(
                f"{relpath!r} is {size} bytes; a file may be at most "
                f"{q.file_bytes} bytes ({q.file_bytes // MIB} MiB)"
            )
        used, count = self._used(project)
        try:
            replaced = resolve_inside(self.root / project, relpath).stat().st_size
        except (FileNotFoundError, NotADirectoryError, BadName):
            replaced, count = 0, count + 1
        if used - replaced + size > q.project_bytes:
            free = max(0, q.project_bytes - used + replaced)
            raise QuotaExceeded(
                f"project {project!r} would hold {used - replaced + size} bytes; its quota is "
                f"{q.project_bytes} bytes ({q.project_bytes // MIB} MiB) and {free} bytes are free"
            )
        if count > q.project_files:
            raise QuotaExceeded(f"project {project!r} would hold {count} files; at most {q.project_files}")
        self.root.mkdir(parents=True, exist_ok=True)
        disk = shutil.disk_usage(self.root)
        if disk.free - size < q.reserve_bytes:
            raise QuotaExceeded(
                f"the card has {disk.free} bytes free; after {size} more it would have less than the "
                f"{q.reserve_bytes} bytes the device keeps free"
            )

    def begin_upload(self, project: str, relpath: str, size: int, *, create: bool = False) -> Upload:
        """Check names and quotas for a ``size``-byte file, then open it for writing."""
        folder = self.folder(project, create=create)
        target = resolve_inside(folder, relpath)
        if target.is_dir():
            raise ProjectError(f"{relpath!r} is a folder in project {project!r}; delete it first")
        self.check_room(project, relpath, size)
        upload = Upload(self, target, size)
        self._pending[id(upload)] = (project, size)
        return upload

    def release(self, upload: Upload) -> None:
        """Forget an upload's reservation (it committed or was dropped)."""
        self._pending.pop(id(upload), None)

    def write(self, project: str, relpath: str, data: bytes, *, create: bool = False) -> FileInfo:
        """Create or replace one file atomically."""
        target = resolve_inside(self.folder(project, create=create), relpath)
        if target.is_dir():
            raise ProjectError(f"{relpath!r} is a folder in project {project!r}")
        self.check_room(project, relpath, len(data))
        atomic_write_bytes(target, data)
        st = target.stat()
        return FileInfo(relpath, st.st_size, st.st_mtime)

    def mkdir(self, project: str, relpath: str) -> None:
        """Make a folder (and its parents) in a project."""
        target = resolve_inside(self.folder(project), relpath)
        if target.exists():
            raise ProjectError(f"{relpath!r} exists already in project {project!r}")
        target.mkdir(parents=True)
        _sync_dir(target.parent)

    def rename(self, project: str, old: str, new: str) -> None:
        """Move a file or folder inside a project; refuses to overwrite."""
        folder = self.folder(project)
        src = resolve_inside(folder, old, must_exist=True)
        dst = resolve_inside(folder, new)
        if dst.exists():
            raise ProjectError(f"{new!r} exists already in project {project!r}; pick another name")
        if src.is_dir() and dst.is_relative_to(src):
            raise ProjectError(f"cannot move folder {old!r} into itself")
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        _sync_dir(src.parent)
        _sync_dir(dst.parent)

    def delete(self, project: str, relpath: str) -> None:
        """Remove a file, or a folder with everything in it."""
        target = resolve_inside(self.folder(project), relpath, must_exist=True)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
        _sync_dir(target.parent)

    def zip_to(self, project: str, out: BinaryIO) -> None:
        """Write the project as a zip archive to ``out`` (blocking: call from an executor)."""
        folder = self.folder(project)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for rel, _st in walk_files(folder):
                archive.write(folder / rel, f"{project}/{rel}")


def migrate_flat_scripts(data_dir: Path, store: ProjectStore) -> list[str]:
    """Move each ``scripts/NAME.py`` of an older device into project ``NAME`` (on start).

    Copy first, then remove the old file: a power cut in between leaves the
    script twice, never nowhere; a later start sees the copy and removes the
    original.  A script whose project exists with other content stays put.
    """
    old = data_dir / "scripts"
    moved: list[str] = []
    if not old.is_dir():
        return moved
    for path in sorted(old.glob("*.py")):
        if path.name.startswith(".") or not path.is_file():
            continue
        data = path.read_bytes()
        try:
            folder = store.root / check_segment(path.stem, "project name")
        except BadName:
            log.warning("script %s kept in scripts/: its name cannot be a project name", path.name)
            continue
        target = folder / path.name
        if target.exists() and target.read_bytes() != data:
            log.warning("script %s kept in scripts/: project %s has another version", path.name, path.stem)
            continue
        if not target.exists():
            atomic_write_bytes(target, data)
            os.utime(target, (time.time(), path.stat().st_mtime))
        path.unlink()
        moved.append(path.name)
    if moved:
        _sync_dir(old)
        log.info("moved %d saved scripts into projects: %s", len(moved), ", ".join(moved))
    return moved
