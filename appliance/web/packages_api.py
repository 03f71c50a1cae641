"""The scripts' packages: a Settings page (``/settings/packages``) and ``/api/v1/packages``.

``GET`` lists what scripts can import (``stack``: the device's pinned stack,
``added``: installed from here) and the last install with its output;
``POST`` with a requirement (``librosa``, ``mne==1.7.1``) starts
``pip install`` into the scripts' own environment, one at a time.
"""

from __future__ import annotations

import platform

from tornado.web import authenticated

from appliance.runs.scriptenv import PackageError, ScriptEnv
from appliance.web.base import BrowserHandler
from appliance.web.refusal import Refusal, RefusingApi


def _env(handler: BrowserHandler) -> ScriptEnv:
    env: ScriptEnv | None = handler.settings.get("scriptenv")
    if env is None:
        raise Refusal(404, "this device has no scripts' environment")
    return env


class PackagesPage(BrowserHandler):
    """The page: the list, the install form, the last install's output."""

    def _page(self, status: int = 200, error: str | None = None) -> None:
        env = _env(self)
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        install = env.install.to_json() if env.install is not None else None
        self.render(
            "packages.html",
            packages=env.packages(),
            install=install,
            error=error,
            platform=f"{platform.machine()}, Python {platform.python_version()}",
        )

    @authenticated
    def get(self) -> None:
        """Show the page."""
        self._page()

    @authenticated
    def post(self) -> None:
        """Start an install, then show the page (which says it is running)."""
        try:
            _env(self).start_install(self.get_body_argument("requirement", ""))
        except PackageError as exc:
            self._page(400, str(exc))
            return
        self.redirect("/settings/packages", status=303)


class PackagesApi(RefusingApi):
    """The same as JSON."""

    def get(self) -> None:
        """``{"packages": [...], "install": {...} | null}``."""
        env = _env(self)
        self.write_json(
            {
                "packages": env.packages(),
                "install": env.install.to_json() if env.install is not None else None,
            }
        )

    def post(self) -> None:
        """``{"requirement": "librosa"}``: start installing it."""
        requirement = self.json_body().get("requirement")
        if not isinstance(requirement, str):
            raise Refusal(400, "the body needs a string field 'requirement'")
        try:
            job = _env(self).start_install(requirement)
        except PackageError as exc:
            raise Refusal(400 if "not a package" in str(exc) else 409, str(exc)) from None
        self.write_json(job.to_json(), 202)
