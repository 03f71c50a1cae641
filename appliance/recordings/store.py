"""The recordings kept in the data dir's ``recordings/``: list, rename, delete, repair.

Each recording is ``NAME.wav`` or ``NAME.flac`` with a hidden sidecar
``.NAME.wav.json`` holding what the audio file does not: when it started,
whether it is still being written, blocks lost, why it ended.  A sidecar that
still says ``recording`` when the service starts belongs to a recording cut
by a crash or power cut: its file is repaired (WAV sizes put right, a torn
last frame dropped) and it is listed with that reason.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError
from appliance.recordings.wavfile import WavError, read_info, repair
from appliance.recordings.writers import repair_flac
from appliance.storage import atomic_write_text
from appliance.workspace.names import BadName, check_segment

log = logging.getLogger(__name__)

RECORDINGS_DIR = "recordings"
SUFFIXES = (".wav", ".flac")


class RecordingError(ApplianceError, ValueError):
    """A recording request that cannot be served."""

    code = "recording"


def check_name(name: str) -> str:
    """``name`` if it may name a recording (``take 1.wav``), else RecordingError."""
    try:
        check_segment(name, "recording name")
    except BadName as exc:
        raise RecordingError(str(exc)) from None
    if not name.lower().endswith(SUFFIXES):
        raise RecordingError(f"recording name {name!r} is not allowed; it must end in .wav or .flac")
    return name


class RecordingStore:
    """The recordings folder."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / RECORDINGS_DIR
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str, *, must_exist: bool = True) -> Path:
        """The file of recording ``name`` (checked)."""
        path = self.folder / check_name(name)
        if must_exist and (not path.is_file() or path.is_symlink()):
            raise RecordingError(f"no recording named {name!r}")
        return path

    def sidecar(self, name: str) -> Path:
        """Where the recording's own record is."""
        return self.folder / f".{check_name(name)}.json"

    def meta(self, name: str) -> dict[str, Any]:
        """The sidecar's fields ({} when there is none: a file put here by hand)."""
        try:
            value = json.loads(self.sidecar(name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def write_meta(self, name: str, meta: dict[str, Any]) -> None:
        """Replace the sidecar atomically."""
        atomic_write_text(self.sidecar(name), json.dumps(meta))

    def describe(self, name: str) -> dict[str, Any]:
        """One recording as listed: duration, channels, rate, size, start time, state."""
        path = self.path(name)
        st = path.stat()
        meta = self.meta(name)
        entry: dict[str, Any] = {
            "name": name,
            "size": st.st_size,
            "modified": st.st_mtime,
            "started": meta.get("started", st.st_mtime),
            "state": meta.get("state", "done"),
            "reason": meta.get("reason", ""),
            "lost_blocks": meta.get("lost_blocks", 0),
            "format": path.suffix[1:].lower(),
        }
        entry.update(audio_info(path))
        return entry

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every recording, newest first."""
        found = []
        for entry in os.scandir(self.folder):
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue
            try:
                found.append(self.describe(entry.name))
            except RecordingError:
                continue  # not a name of ours
        return sorted(found, key=lambda r: -float(r["started"]))

    def rename(self, old: str, new: str) -> None:
        """Rename a recording and its sidecar; refuses to overwrite or to change the format."""
        src, dst = self.path(old), self.path(new, must_exist=False)
        if src.suffix.lower() != dst.suffix.lower():
            raise RecordingError(f"{new!r} would change the format; keep the {src.suffix} ending")
        if dst.exists():
            raise RecordingError(f"a recording named {new!r} exists already; pick another name")
        os.rename(src, dst)
        if self.sidecar(old).exists():
            os.rename(self.sidecar(old), self.sidecar(new))

    def delete(self, name: str) -> None:
        """Remove a recording and its sidecar."""
        self.path(name).unlink()
        self.sidecar(name).unlink(missing_ok=True)

    def repair_cut(self) -> builtins.list[str]:
        """On start: put right every recording a crash left marked as in progress."""
        repaired = []
        for entry in os.scandir(self.folder):
            name = entry.name
            if name.startswith(".") or not name.lower().endswith(SUFFIXES):
                continue
            meta = self.meta(name)
            if meta.get("state") != "recording":
                continue
            try:
                if name.lower().endswith(".wav"):
                    meta["frames"] = repair(Path(entry.path)).frames
                else:
                    meta["frames"] = repair_flac(Path(entry.path))
            except (WavError, RuntimeError, OSError) as exc:
                # soundfile's errors are RuntimeErrors; the file is left as it is.
                log.warning("recording %s could not be repaired: %s", name, exc)
            meta.update(state="done", reason="cut short by a stop of the service; kept up to the last block")
            self.write_meta(name, meta)
            repaired.append(name)
        if repaired:
            log.info("repaired %d recordings cut short: %s", len(repaired), ", ".join(repaired))
        return repaired


def audio_info(path: Path) -> dict[str, Any]:
    """``{"rate","channels","frames","seconds"}`` from the file's own header."""
    try:
        if path.suffix.lower() == ".wav":
            info = read_info(path)
            return {
                "rate": info.rate,
                "channels": info.channels,
                "frames": info.frames,
                "seconds": info.seconds,
            }
        import soundfile  # noqa: PLC0415

        sf_info = soundfile.info(str(path))
        return {
            "rate": sf_info.samplerate,
            "channels": sf_info.channels,
            "frames": sf_info.frames,
            "seconds": sf_info.duration,
        }
    except (WavError, RuntimeError, OSError) as exc:
        return {"rate": None, "channels": None, "frames": None, "seconds": None, "error": str(exc)}
