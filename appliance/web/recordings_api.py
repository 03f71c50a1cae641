"""HTTP API for the WAV files in the data dir's ``recordings/``.

``GET /api/v1/recordings`` lists them, ``GET /api/v1/recordings/NAME`` downloads
one, ``DELETE`` removes it. (The browser's "record N seconds" feature builds its
WAV in the page and needs none of this; these are recordings the device keeps.)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from tornado.web import HTTPError

from appliance.web.base import ApiHandler

log = logging.getLogger(__name__)

RECORDINGS_DIR = "recordings"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,120}\.wav$")
_CHUNK_BYTES = 256 * 1024


class _RecordingsBase(ApiHandler):
    @property
    def folder(self) -> Path:
        return self.data_dir / RECORDINGS_DIR

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name) or ".." in name:  # `$` alone lets a trailing newline in
            raise HTTPError(
                400,
                reason=f"recording name {name!r} is not allowed; "
                "use letters, digits, '_', '-', '.', ending in .wav",
            )
        path = self.folder / name
        if not path.is_file():
            raise HTTPError(404, reason=f"no recording named {name!r}")
        return path


class RecordingListApi(_RecordingsBase):
    """The recordings kept on the device."""

    def get(self) -> None:
        """``[{"name","size","modified"}]``, newest first."""
        found = []
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.is_file() and _NAME.match(path.name):
                    st = path.stat()
                    found.append({"name": path.name, "size": st.st_size, "modified": st.st_mtime})
        found.sort(key=lambda r: -float(r["modified"]))  # type: ignore[arg-type]
        self.write_json(found)


class RecordingApi(_RecordingsBase):
    """One recording."""

    async def get(self, name: str) -> None:
        """Stream the WAV as a download."""
        path = self._path(name)
        self.set_header("Content-Type", "audio/wav")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.set_header("Content-Length", str(path.stat().st_size))
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK_BYTES):
                self.write(chunk)
                await self.flush()
        self.finish()

    def delete(self, name: str) -> None:
        """Delete it."""
        self._path(name).unlink()
        log.info("deleted recording %s", name)
        self.write_json({"deleted": name})
