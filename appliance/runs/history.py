"""Run history on the card: each run's record, console log and output files.

``outputs/<run id>/`` in the data dir holds ``run.json`` (the run's
:class:`~appliance.runs.run.RunInfo`, rewritten atomically at start and end),
``console.log`` (every console line the run printed that was let through,
``[stderr]`` marked) and ``files/``: what the script wrote to its output
folder (``BI_OUTPUT_DIR``).  While a run is going its output folder is
``output/`` inside its run directory, which every launcher already makes
writable for the run user; at the end it is moved here (a rename when the
run root is on the same card, as on the image).

The history survives restarts.  It is trimmed only by the user (delete) and
by a size quota: oldest ended runs first, never a running one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from appliance.runs.run import RunInfo
from appliance.storage import atomic_write_text
from appliance.workspace.names import resolve_inside, walk_files

log = logging.getLogger(__name__)

OUTPUTS_DIR = "outputs"
MIB = 1 << 20
RUN_ID = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class HistoryQuota:
    """How much run history the card keeps; oldest ended runs go first past either bound."""

    total_bytes: int = 2048 * MIB
    """Output files and console logs of every kept run together."""
    runs: int = 500
    """Runs kept in the list."""


def load_history_quota(data_dir: Path) -> HistoryQuota:
    """``history_mib`` and ``history_runs`` from the data dir's ``workspace.json``, else the defaults."""
    try:
        raw = json.loads((data_dir / "workspace.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return HistoryQuota()
    fields: dict[str, int] = {}
    for key, name, scale in (("history_mib", "total_bytes", MIB), ("history_runs", "runs", 1)):
        value = raw.get(key) if isinstance(raw, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            fields[name] = value * scale
    return HistoryQuota(**fields)


class RunHistory:
    """The persisted runs: records, console logs and output files."""

    def __init__(self, data_dir: Path, quota: HistoryQuota | None = None) -> None:
        self.root = data_dir / OUTPUTS_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        self.quota = quota or HistoryQuota()
        self._consoles: dict[str, TextIO] = {}

    def folder(self, run_id: str) -> Path:
        """The history folder of one run (``run_id`` checked)."""
        if not RUN_ID.match(run_id):
            raise ValueError(f"run id {run_id!r} is not allowed; it is 12 hexadecimal digits")
        return self.root / run_id

    def load(self) -> list[RunInfo]:
        """Every kept run, oldest first; runs cut by a stop of the service are marked failed."""
        runs = []
        names = {f.name for f in fields(RunInfo)}
        for entry in os.scandir(self.root):
            if not RUN_ID.match(entry.name):
                continue
            try:
                raw = json.loads((Path(entry.path) / "run.json").read_text(encoding="utf-8"))
                info = RunInfo(**{k: v for k, v in raw.items() if k in names})
            except (OSError, ValueError, TypeError) as exc:
                log.warning("run %s: its record is unreadable (%s); its files are kept", entry.name, exc)
                continue
            if info.state == "running":
                info = RunInfo(
                    **{**asdict(info), "state": "failed", "ended": info.ended or info.started,
                       "reason": "the service stopped while it ran"}
                )  # fmt: skip
                self.save(info)
            runs.append(info)
        return sorted(runs, key=lambda r: r.started)

    def save(self, info: RunInfo) -> None:
        """Write the run's record atomically."""
        folder = self.folder(info.id)
        folder.mkdir(exist_ok=True)
        atomic_write_text(folder / "run.json", json.dumps(info.to_json()))

    def console_line(self, run_id: str, event: dict[str, Any]) -> None:
        """Append one console event to the run's log (closed at the end)."""
        out = self._consoles.get(run_id)
        if out is None:
            # Line buffered: a crash of the service loses no line already printed.
            path = self.folder(run_id) / "console.log"
            out = path.open("a", buffering=1, encoding="utf-8", errors="replace")
            self._consoles[run_id] = out
        if event["type"] == "run_output":
            mark = "[stderr] " if event["stream"] == "stderr" else ""
            out.write(f"{mark}{event['text']}\n")
        elif event["type"] == "run_dropped":
            out.write(f"[{event['lines']} lines dropped: the script printed faster than the console keeps]\n")

    def close_console(self, run_id: str) -> None:
        """Flush and close the run's console log."""
        out = self._consoles.pop(run_id, None)
        if out is not None:
            out.close()

    def keep_outputs(self, run_id: str, output_dir: Path) -> None:
        """Move what the run wrote to ``output_dir`` into its history (blocking file I/O)."""
        target = self.folder(run_id) / "files"
        if not output_dir.is_dir() or target.exists():
            return
        try:
            os.rename(output_dir, target)
        except OSError:
            # Another file system (a run root in /tmp): copy, files only, no links.
            shutil.copytree(output_dir, target, symlinks=True, ignore_dangling_symlinks=True)
        for path in (target, self.root / run_id):
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def files(self, run_id: str) -> list[dict[str, Any]]:
        """The run's output files: ``[{"path","size","modified"}]``."""
        return [
            {"path": rel, "size": st.st_size, "modified": st.st_mtime}
            for rel, st in walk_files(self.folder(run_id) / "files")
        ]

    def file_path(self, run_id: str, relpath: str) -> Path:
        """One output file of the run, checked like every user path."""
        return resolve_inside(self.folder(run_id) / "files", relpath, must_exist=True)

    def size(self, run_id: str) -> int:
        """Bytes the run's history takes."""
        return sum(st.st_size for _, st in walk_files(self.folder(run_id)))

    def delete(self, run_id: str) -> None:
        """Remove the run's record, console and files."""
        self.close_console(run_id)
        shutil.rmtree(self.folder(run_id), ignore_errors=True)

    def trim(self, ended_oldest_first: list[str]) -> list[str]:
        """Delete the oldest ended runs until the quota holds; returns the ids removed."""
        sizes = {run_id: self.size(run_id) for run_id in ended_oldest_first}
        total = sum(sizes.values())
        count = len(ended_oldest_first)
        removed = []
        for run_id in ended_oldest_first:
            if total <= self.quota.total_bytes and count <= self.quota.runs:
                break
            self.delete(run_id)
            total -= sizes[run_id]
            count -= 1
            removed.append(run_id)
        if removed:
            log.info("run history quota: removed %d oldest runs (%s)", len(removed), ", ".join(removed))
        return removed
