"""HTTP API for runs: their history, console logs, output files, and the code they ran.

``GET /api/v1/runs`` lists every kept run (newest first) with its output
files; ``GET /api/v1/runs/ID/files/PATH`` downloads one output file,
``GET /api/v1/runs/ID/console.log`` the console, ``DELETE /api/v1/runs/ID``
removes an ended run with everything it kept; ``GET /api/v1/runs/ID/source``
is the code a run was started with, so a traceback link in the console opens
the run's own source at that line, even when the editor now holds other code
or the run came from a terminal.
"""

from __future__ import annotations

from typing import Any

from appliance.runs.runner import RunError, RunManager
from appliance.web.filesend import send_file
from appliance.web.refusal import Refusal, RefusingApi
from appliance.workspace.names import BadName


class _RunsBase(RefusingApi):
    @property
    def runs(self) -> RunManager:
        runs: RunManager | None = getattr(self.settings["service"], "runs", None)
        if runs is None or runs.history is None:
            raise Refusal(404, "this device keeps no run history")
        return runs

    def _known(self, run_id: str) -> None:
        if self.runs.info(run_id) is None:
            raise Refusal(404, f"no run {run_id!r}; it never existed or was deleted")


class RunListApi(_RunsBase):
    """The kept runs."""

    def get(self) -> None:
        """``[{...run, "files": [{"path","size","modified"}]}]``, newest first."""
        runs = self.runs
        assert runs.history is not None
        listed: list[dict[str, Any]] = []
        for info in reversed(runs.list()):
            files = runs.history.files(info.id) if info.state != "running" else []
            listed.append({**info.to_json(), "files": files})
        self.write_json(listed)


class RunApi(_RunsBase):
    """One kept run."""

    def delete(self, run_id: str) -> None:
        """Delete an ended run's record, console and files."""
        try:
            self.runs.forget(run_id)
        except RunError as exc:
            raise Refusal(404 if str(exc).startswith("no run") else 409, str(exc)) from None
        self.write_json({"deleted": run_id})


class RunConsoleApi(_RunsBase):
    """A run's console log as text."""

    async def get(self, run_id: str) -> None:
        """The log as a download (empty when the run printed nothing)."""
        self._known(run_id)
        history = self.runs.history
        assert history is not None
        path = history.folder(run_id) / "console.log"
        if not path.is_file():
            path.touch()
        await send_file(self, path, f"{run_id}-console.log", "text/plain; charset=utf-8")


class RunFileApi(_RunsBase):
    """One output file of a run."""

    async def get(self, run_id: str, relpath: str) -> None:
        """Send the file byte for byte."""
        self._known(run_id)
        history = self.runs.history
        assert history is not None
        try:
            path = history.file_path(run_id, relpath)
        except BadName as exc:
            raise Refusal(404 if str(exc).startswith("no ") else 400, str(exc)) from None
        if not path.is_file():
            raise Refusal(400, f"{relpath!r} is a folder, not a file")
        await send_file(self, path, relpath.rsplit("/", 1)[-1])


class RunSourceApi(_RunsBase):
    """One run's source, while the device keeps it."""

    def get(self, run_id: str) -> None:
        """``{"run", "name", "origin", "code"}``, or 404 naming why not."""
        runs = getattr(self.settings["service"], "runs", None)
        if runs is None:
            raise Refusal(404, "script runs are not available on this device")
        try:
            code = runs.source(run_id)
        except RunError as exc:
            raise Refusal(404, str(exc)) from None
        info = runs.get(run_id).info()
        self.write_json({"run": run_id, "name": info.name, "origin": info.origin, "code": code})
