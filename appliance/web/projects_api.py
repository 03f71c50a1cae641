"""HTTP API for projects and their files.

``GET /api/v1/projects`` lists projects, ``POST`` with ``{"name"}`` makes one,
``DELETE /api/v1/projects/P`` removes one.  ``GET /api/v1/projects/P/files``
lists the files, ``GET .../files/PATH`` downloads one, ``PUT .../files/PATH``
uploads one (the raw bytes as the body; ``?create=1`` makes the project
first), ``DELETE .../files/PATH`` removes a file or folder.
``POST .../check`` with ``{"path","size"}`` asks whether an upload would fit,
``POST .../rename`` with ``{"from","to"}`` moves, ``POST .../mkdir`` with
``{"path"}`` makes a folder, ``GET .../zip`` downloads the project as a zip.

Uploads are streamed to a temporary file as they arrive: the name and the
quotas are checked from ``Content-Length`` in ``prepare``, before any byte
of the body is read, and the file is put in place only when it is complete.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from pathlib import Path

from tornado.web import stream_request_body

from appliance.errors import ApplianceError
from appliance.web.filesend import send_file
from appliance.web.refusal import Refusal, RefusingApi
from appliance.workspace.names import BadName
from appliance.workspace.projects import ProjectError, ProjectStore, QuotaExceeded, Upload

log = logging.getLogger(__name__)


def _status(exc: ApplianceError) -> int:
    if isinstance(exc, QuotaExceeded):
        return 413
    if str(exc).startswith("no "):
        return 404
    return 400


class _ProjectsBase(RefusingApi):
    @property
    def store(self) -> ProjectStore:
        store: ProjectStore = self.settings["projects"]
        return store

    def _fail(self, exc: ApplianceError) -> Refusal:
        return Refusal(_status(exc), str(exc))

    def _str_field(self, body: dict[str, object], key: str) -> str:
        value = body.get(key)
        if not isinstance(value, str):
            raise Refusal(400, f"the body needs a string field {key!r}")
        return value


class ProjectListApi(_ProjectsBase):
    """The projects."""

    def get(self) -> None:
        """``[{"name","files","size","modified"}]``."""
        self.write_json([p.__dict__ for p in self.store.list()])

    def post(self) -> None:
        """Make an empty project ``{"name"}``."""
        name = self._str_field(self.json_body(), "name")
        try:
            self.store.create(name)
        except (ProjectError, BadName) as exc:
            raise self._fail(exc) from None
        self.write_json({"name": name}, 201)


class ProjectApi(_ProjectsBase):
    """One project."""

    def delete(self, project: str) -> None:
        """Remove the project and its files."""
        try:
            self.store.delete_project(project)
        except (ProjectError, BadName) as exc:
            raise self._fail(exc) from None
        self.write_json({"deleted": project})


class ProjectFileListApi(_ProjectsBase):
    """The files of one project."""

    def get(self, project: str) -> None:
        """``[{"path","size","modified"}]`` sorted by path."""
        try:
            files = self.store.files(project)
        except (ProjectError, BadName) as exc:
            raise self._fail(exc) from None
        self.write_json([f.__dict__ for f in files])


class ProjectActionApi(_ProjectsBase):
    """``check``, ``rename`` and ``mkdir`` on one project."""

    def post(self, project: str, action: str) -> None:
        """Do ``action`` with the JSON body's fields."""
        body = self.json_body()
        try:
            if action == "check":
                size = body.get("size")
                if not isinstance(size, int) or size < 0:
                    raise Refusal(400, "the body needs a whole number field 'size'")
                self.store.check_room(project, self._str_field(body, "path"), size)
            elif action == "rename":
                self.store.rename(project, self._str_field(body, "from"), self._str_field(body, "to"))
            elif action == "mkdir":
                self.store.mkdir(project, self._str_field(body, "path"))
            else:
                raise Refusal(404, f"no action {action!r}; use check, rename or mkdir")
        except (ProjectError, BadName) as exc:
            raise self._fail(exc) from None
        self.write_json({"ok": True})


class ProjectZipApi(_ProjectsBase):
    """The whole project as one zip archive."""

    async def get(self, project: str) -> None:
        """Build the zip in a temporary file off the loop, then send it."""
        try:
            self.store.folder(project)
        except (ProjectError, BadName) as exc:
            raise self._fail(exc) from None
        fd, tmp = tempfile.mkstemp(prefix=".zip-", dir=self.store.root)
        try:
            with os.fdopen(fd, "w+b") as out:
                await asyncio.get_running_loop().run_in_executor(None, self.store.zip_to, project, out)
            await send_file(self, Path(tmp), f"{project}.zip", "application/zip")
        finally:
            Path(tmp).unlink(missing_ok=True)


@stream_request_body
class ProjectFileApi(_ProjectsBase):
    """One file: download, streamed upload, delete."""

    _upload: Upload | None = None

    def prepare(self) -> None:
        """For an upload: check the name and every quota from ``Content-Length`` first."""
        super().prepare()
        if self.request.method != "PUT":
            return
        project, relpath = (self.path_args[0], self.path_args[1])
        length = self.request.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise Refusal(411, "an upload needs a Content-Length header (the file's size)")
        try:
            create = bool(self.get_query_argument("create", ""))
            self._upload = self.store.begin_upload(project, relpath, int(length), create=create)
        except (ProjectError, BadName) as exc:
            raise self._fail(exc) from None
        self.request.connection.set_max_body_size(int(length))  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        """Append the chunk to the upload's temporary file."""
        if self._upload is not None:
            # Chunks are at most 64 KiB and go to the page cache; the slow
            # part, fsync, runs in an executor at the end.
            self._upload.write(chunk)

    def on_connection_close(self) -> None:
        """A client that goes away mid-upload leaves nothing behind."""
        if self._upload is not None:
            self._upload.abort()
            self._upload = None

    async def put(self, project: str, relpath: str) -> None:
        """The body has arrived: make it durable and put it in place."""
        upload, self._upload = self._upload, None
        assert upload is not None
        try:
            info = await asyncio.get_running_loop().run_in_executor(None, upload.commit)
        except ProjectError as exc:
            raise self._fail(exc) from None
        log.info("uploaded %s/%s (%d bytes)", project, relpath, info.size)
        self.write_json({"path": relpath, "size": info.size, "modified": info.modified}, 201)

    async def get(self, project: str, relpath: str) -> None:
        """Send the file as a download."""
        try:
            path = self.store.path_of(project, relpath)
        except (ProjectError, BadName) as exc:
            raise self._fail(exc) from None
        await send_file(self, path, relpath.rsplit("/", 1)[-1])

    def delete(self, project: str, relpath: str) -> None:
        """Remove a file or a folder with everything in it."""
        try:
            self.store.delete(project, relpath)
        except (ProjectError, BadName) as exc:
            raise self._fail(exc) from None
        self.write_json({"deleted": relpath})

    def on_finish(self) -> None:
        """An upload refused after ``prepare`` (a failed write) leaves nothing behind."""
        if self._upload is not None:
            self._upload.abort()
            self._upload = None
