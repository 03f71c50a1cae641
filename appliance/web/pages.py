"""The HTML pages: first run, login, logout, the app itself, settings."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from tornado.escape import url_escape
from tornado.web import authenticated

from appliance.auth import MIN_PASSWORD_LENGTH, TokenStore
from appliance.errors import AuthError
from appliance.web.access import (
    LoginLimiter,
    browser_session_id,
    end_session,
    local_path,
    sessions_of,
    start_session,
)
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
        service = self.settings.get("service")
        self.render("index.html", device_name=getattr(service, "hostname", "") or "Microphone array")


class SettingsPage(BrowserHandler):
    """API tokens, signed-in browsers and the password; every change answers with a redirect.

    A new token is shown once: it waits under a random key for the one page
    that shows it (``/settings?new=KEY``), so a reload never repeats a form.
    """

    @property
    def tokens(self) -> TokenStore:
        """The service's token store."""
        store: TokenStore = self.settings["tokens"]
        return store

    @property
    def _fresh_tokens(self) -> dict[str, tuple[str, str, float]]:
        fresh: dict[str, tuple[str, str, float]] = self.application.settings.setdefault("fresh_tokens", {})
        return fresh

    def _page(self, status: int = 200, **extra: Any) -> None:
        values: dict[str, Any] = {"new_token": None, "error": None, "notice": None, "token_name": ""}
        values.update(extra)
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        host = self.request.host
        self.render(
            "settings.html",
            tokens=self.tokens.list(),
            sessions=sessions_of(self).list(),
            this_session=browser_session_id(self),
            device=host,
            **values,
        )

    @authenticated
    def get(self, action: str = "") -> None:
        """The settings page, with the outcome of the last change."""
        if action:
            self.redirect("/settings")
            return
        fresh = self._fresh_tokens.pop(self.get_query_argument("new", ""), None)
        new_token = None
        if fresh is not None and time.monotonic() - fresh[2] < FRESH_TOKEN_S:
            new_token = {"name": fresh[0], "token": fresh[1]}
        done = self.get_query_argument("done", "")
        notice = NOTICES.get(done, "").format(name=self.get_query_argument("name", ""))
        self._page(new_token=new_token, notice=notice or None)

    @authenticated
    async def post(self, action: str) -> None:
        """``token``, ``revoke``, ``password``, ``end-session``; then back to the page."""
        try:
            if action == "token":
                self._create_token()
            elif action == "revoke":
                name = self.get_body_argument("name", "")
                self.tokens.revoke(name)
                log.info("API token %s revoked from %s", name, self.request.remote_ip)
                self.broadcast({"type": "tokens_changed"})
                self.redirect(f"/settings?done=revoked&name={url_escape(name)}", status=303)
            elif action == "end-session":
                self._end_session()
            else:
                await self._change_password()
        except AuthError as exc:
            self._page(400, error=f"{str(exc)[:1].upper()}{str(exc)[1:]}.", token_name=self._typed_name())

    def _typed_name(self) -> str:
        return self.get_body_argument("name", "")[:100] if self.request.path.endswith("/token") else ""

    def _create_token(self) -> None:
        name = self.get_body_argument("name", "").strip()
        if not name:
            raise AuthError("give the token a name, such as laptop: letters, digits and _ . @ -, at most 64")
        token = self.tokens.create(name)
        log.info("API token %s created from %s", name, self.request.remote_ip)
        key = secrets.token_urlsafe(12)
        fresh = self._fresh_tokens
        now = time.monotonic()
        for old in [k for k, v in fresh.items() if now - v[2] >= FRESH_TOKEN_S]:
            del fresh[old]
        fresh[key] = (name, token, now)
        self.broadcast({"type": "tokens_changed"})
        self.redirect(f"/settings?new={key}", status=303)

    def _end_session(self) -> None:
        sid = self.get_body_argument("session", "")
        mine = sid == browser_session_id(self)
        if not sessions_of(self).end(sid):
            raise AuthError("that session has ended already")
        log.info("a browser session was ended from %s", self.request.remote_ip)
        if mine:
            end_session(self)
            self.redirect("/login", status=303)
            return
        self.redirect("/settings?done=ended", status=303)

    async def _change_password(self) -> None:
        if not await self.passwords.verify_off_loop(self.get_body_argument("current", "")):
            raise AuthError("the current password is wrong")
        new = self.get_body_argument("password", "")
        if new != self.get_body_argument("confirm", ""):
            raise AuthError("the two new passwords differ")
        await self.passwords.set_off_loop(new)
        # The generation changed: every other session is now void; this browser signs in afresh.
        sessions_of(self).end_all_but(None)
        start_session(self)
        log.info("admin password changed from %s", self.request.remote_ip)
        self.redirect("/settings?done=password", status=303)


FRESH_TOKEN_S = 300.0
"""How long a new token waits for the page that shows it, in seconds."""
NOTICES = {
    "revoked": "Token {name} revoked.",
    "password": "Password changed; other browsers must sign in again.",
    "ended": "That browser is signed out.",
}
