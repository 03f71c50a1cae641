"""The HTML pages: first run, login, logout, the app itself, settings."""

from __future__ import annotations

import logging
from typing import Any

from tornado.web import authenticated

from appliance.auth import MIN_PASSWORD_LENGTH, TokenStore
from appliance.errors import AuthError
from appliance.web.access import LoginLimiter, end_session, local_path, start_session
from appliance.web.base import BrowserHandler

log = logging.getLogger(__name__)


class SetupPage(BrowserHandler):
    """Set the admin password; exists only while no password is set."""

    def get(self) -> None:
        """The form, or off to the login page once a password exists."""
        if self.passwords.is_set():
            self.redirect("/login")
            return
        self.render("setup.html", error=None, min_length=MIN_PASSWORD_LENGTH)

    async def post(self) -> None:
        """Store the first password and sign the browser in."""
        if self.passwords.is_set():
            self.set_status(403)
            self.render("login.html", error="The password is set already; sign in.", wait=0)
            return
        password = self.get_body_argument("password", "")
        if password != self.get_body_argument("confirm", ""):
            self._again("The two passwords differ.")
            return
        try:
            await self.passwords.set_off_loop(password)
        except AuthError as exc:
            self._again(f"{str(exc).capitalize()}.")
            return
        log.info("admin password set from %s", self.request.remote_ip)
        self.settings["login_limiter"].succeeded(self.request.remote_ip or "unknown")
        start_session(self)
        self.redirect("/")

    def _again(self, error: str) -> None:
        self.set_status(400)
        self.render("setup.html", error=error, min_length=MIN_PASSWORD_LENGTH)


class LoginPage(BrowserHandler):
    """Sign in with the admin password, with a growing wait after failures."""

    @property
    def limiter(self) -> LoginLimiter:
        """The app-wide limiter."""
        limiter: LoginLimiter = self.settings["login_limiter"]
        return limiter

    def get(self) -> None:
        """The form (or the first-run page while no password exists)."""
        if not self.passwords.is_set():
            self.redirect("/setup")
            return
        self.render("login.html", error=None, wait=0)

    async def post(self) -> None:
        """Check the password off the event loop; refuse outright while a limit says wait."""
        address = self.request.remote_ip or "unknown"
        wait, why = self.limiter.admit(address)
        if wait > 0:
            self.set_status(429)
            self.set_header("Retry-After", str(int(wait) + 1))
            error = f"{why[:1].upper()}{why[1:]}; try again in {int(wait) + 1} s."
            self.render("login.html", error=error, wait=int(wait) + 1)
            return
        if await self.passwords.verify_off_loop(self.get_body_argument("password", "")):
            self.limiter.succeeded(address)
            start_session(self)
            log.info("admin signed in from %s", address)
            self.redirect(local_path(self.get_query_argument("next", "/")))
            return
        wait = self.limiter.failed(address)
        self.set_status(403)
        self.render("login.html", error="Wrong password.", wait=int(wait + 0.999))


class LogoutHandler(BrowserHandler):
    """Forget the session (POST, so a link on another site cannot sign you out)."""

    def post(self) -> None:
        """Clear the cookie and go to the login page."""
        end_session(self)
        self.redirect("/login")


class MainPage(BrowserHandler):
    """The app: editor, console, tabs, device panel."""

    def get(self) -> None:
        """The page, or the first-run/login page for a browser without a session."""
        if not self.passwords.is_set():
            self.redirect("/setup")
            return
        if self.current_user is None:
            self.redirect("/login")
            return
        self.xsrf_token  # noqa: B018 - sets the _xsrf cookie the scripts send back
        self.render("index.html")


class SettingsPage(BrowserHandler):
    """API tokens (list, create shown once, revoke) and the password change."""

    @property
    def tokens(self) -> TokenStore:
        """The service's token store."""
        store: TokenStore = self.settings["tokens"]
        return store

    def _page(self, status: int = 200, **extra: Any) -> None:
        values: dict[str, Any] = {"new_token": None, "error": None, "notice": None}
        values.update(extra)
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.render("settings.html", tokens=self.tokens.list(), **values)

    @authenticated
    def get(self) -> None:
        """The settings page."""
        self._page()

    @authenticated
    async def post(self, action: str) -> None:
        """``token``: make one; ``revoke``: delete one; ``password``: change it."""
        try:
            if action == "token":
                name = self.get_body_argument("name", "").strip()
                token = self.tokens.create(name)
                log.info("API token %s created", name)
                self._page(new_token={"name": name, "token": token})
            elif action == "revoke":
                name = self.get_body_argument("name", "")
                self.tokens.revoke(name)
                log.info("API token %s revoked", name)
                self._page(notice=f"Token {name} revoked.")
            else:
                await self._change_password()
        except AuthError as exc:
            self._page(400, error=f"{str(exc)[:1].upper()}{str(exc)[1:]}.")

    async def _change_password(self) -> None:
        if not await self.passwords.verify_off_loop(self.get_body_argument("current", "")):
            raise AuthError("the current password is wrong")
        new = self.get_body_argument("password", "")
        if new != self.get_body_argument("confirm", ""):
            raise AuthError("the two new passwords differ")
        await self.passwords.set_off_loop(new)
        # The generation changed: every other session is now void; keep this one.
        start_session(self)
        log.info("admin password changed from %s", self.request.remote_ip)
        self._page(notice="Password changed; other browsers must sign in again.")
