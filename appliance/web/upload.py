"""A base for routes that take a file: the body streams to disk, never into memory.

A route built on :class:`StreamedUpload` registers its body limit with
:func:`appliance.web.limits.add_route_limit` (the front door then refuses a
larger ``Content-Length`` before a byte is read, and stops a chunked body at
the limit). Its ``put``/``post`` finds the body in :attr:`StreamedUpload.upload_path`,
a temporary file in the data directory's ``uploads/`` folder (the same file
system as the data, so moving it into place with ``os.replace`` is atomic);
whatever it does not move away is deleted when the request ends.

    @stream_request_body
    class ProjectFileUpload(StreamedUpload):
        async def put(self, name: str) -> None:
            os.replace(self.upload_path, target_for(name))
            self.write_json({"stored": name})
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO

from tornado.web import HTTPError, stream_request_body

from appliance.web.base import ApiHandler

UPLOADS_DIR = "uploads"
"""Temporary files of uploads in progress, inside the data directory."""


@stream_request_body
class StreamedUpload(ApiHandler):
    """Writes the request body to a temporary file as it arrives (signed-in browsers only)."""

    _file: IO[bytes] | None = None
    upload_path: Path
    """The body so far; complete once ``put``/``post`` runs."""
    received = 0
    """Bytes of body written."""

    def prepare(self) -> None:
        """Check the session (refusing before any body is read), then open the temporary file."""
        super().prepare()
        folder = self.data_dir / UPLOADS_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix="upload-")
        self._file = os.fdopen(fd, "wb")
        self.upload_path = Path(name)

    async def data_received(self, chunk: bytes) -> None:
        """Write one chunk off the event loop; Tornado reads the next one when this returns."""
        if self._file is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._file.write, chunk)
        except OSError as exc:
            self._discard()
            raise HTTPError(507, reason=f"cannot store the upload: {exc.strerror}") from None
        self.received += len(chunk)

    async def finish_upload(self) -> Path:
        """Flush the file to disk; returns its path (call first in ``put``/``post``)."""
        if self._file is None:
            raise HTTPError(400, reason="the upload was lost")
        handle, self._file = self._file, None
        await asyncio.get_running_loop().run_in_executor(None, _flush_and_close, handle)
        return self.upload_path

    def _discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if getattr(self, "upload_path", None) is not None:
            with contextlib.suppress(FileNotFoundError):
                self.upload_path.unlink()

    def on_finish(self) -> None:
        """Delete what the route did not move away."""
        self._discard()

    def on_connection_close(self) -> None:
        """A peer that went away mid-upload leaves nothing behind."""
        self._discard()
        super().on_connection_close()


def _flush_and_close(handle: IO[bytes]) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
