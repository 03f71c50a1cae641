"""HTTP API for the code a run was started with: ``GET /api/v1/runs/ID/source``.

A traceback link in the console opens the run's own source at that line,
even when the editor now holds other code or the run came from a terminal.
"""

from __future__ import annotations

from tornado.web import HTTPError

from appliance.runs.runner import RunError
from appliance.web.base import ApiHandler


class RunSourceApi(ApiHandler):
    """One run's source, while the device keeps it."""

    def get(self, run_id: str) -> None:
        """``{"run", "name", "origin", "code"}``, or 404 naming why not."""
        runs = self.settings["service"].runs
        if runs is None:
            raise HTTPError(404, reason="script runs are not available on this device")
        try:
            code = runs.source(run_id)
        except RunError as exc:
            raise HTTPError(404, reason=str(exc)) from None
        info = runs.get(run_id).info()
        self.write_json({"run": run_id, "name": info.name, "origin": info.origin, "code": code})
