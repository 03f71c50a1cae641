"""Shared parts of the web tests: a real `appliance serve` subprocess, an HTTP
client with cookies and the XSRF token, and Debian's chromium through Playwright.

Imported by tests/test_web_*.py (pytest does not load this file by itself).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import CHROMIUM, PageErrors, launch
from tests.server import ApplianceProcess as Server

__all__ = ["CHROMIUM", "PageErrors", "Server", "launch"]  # what the web tests import from here

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
POLL_S = 0.05


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL_S)


@contextlib.contextmanager
def device_dir() -> Iterator[Path]:
    """A data dir whose parents the unprivileged run user can traverse (pytest's are 0700)."""
    top = Path(tempfile.mkdtemp(prefix="web-test-"))
    top.chmod(0o711)
    try:
        yield top / "data"
    finally:
        shutil.rmtree(top)


@contextlib.contextmanager
def running_server(password: bool) -> Iterator[Server]:
    """A started `appliance serve`, with the admin password set when asked; always stopped."""
    with device_dir() as data:
        srv = Server(data)
        try:
            srv.start()
            if password:
                assert Http(srv.url).setup() == 302
            yield srv
        finally:
            srv.stop()
        srv.assert_clean_log()


@pytest.fixture
def server() -> Iterator[Server]:
    """A fresh device with no password, for one test."""
    with running_server(password=False) as srv:
        yield srv


class Http:
    """A cookie-keeping HTTP client that sends the XSRF token like the app does."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def cookie(self, name: str) -> str | None:
        """The value of a cookie, or None."""
        for c in self.jar:
            if c.name == name:
                return c.value
        return None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        form: dict[str, str] | None = None,
        xsrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Send a request; returns status, headers and body (no redirects followed)."""
        data: bytes | None = None
        hdrs = dict(headers or {})
        if form is not None:
            if xsrf:
                form = {**form, "_xsrf": self.xsrf()}
            data = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if xsrf and form is None and method not in ("GET", "HEAD"):
            hdrs["X-XSRFToken"] = self.xsrf()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with self.opener.open(req, timeout=20) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as err:
            with err:  # its socket, closed now rather than whenever the collector finds it
                return err.code, dict(err.headers), err.read()

    def xsrf(self) -> str:
        """The _xsrf cookie, fetching the login page first if there is none yet."""
        token = self.cookie("_xsrf")
        for page in ("/login", "/setup"):
            if token is None:
                self.request("GET", page)
                token = self.cookie("_xsrf")
        assert token, "the server set no _xsrf cookie"
        return token

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A JSON API call: status and the decoded body."""
        status, _, raw = self.request(method, path, body)
        return status, json.loads(raw) if raw else None

    def setup(self, password: str = PASSWORD) -> int:
        """Set the first password through the first-run form."""
        self.request("GET", "/setup")
        return self.request("POST", "/setup", form={"password": password, "confirm": password})[0]

    def login(self, password: str = PASSWORD) -> int:
        """Sign in through the login form; returns the status (302 on success)."""
        return self.request("POST", "/login", form={"password": password})[0]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture(scope="module")
def device() -> Iterator[Server]:
    """A device with the admin password set, shared by one test module."""
    with running_server(password=True) as srv:
        yield srv


# -- the browser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by Playwright (never `playwright install`)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with launch() as b:
        yield b


@pytest.fixture
def page(browser: Any, device: Server) -> Iterator[Any]:
    """A signed-in page of the app; the test fails on any JavaScript error."""
    # The app's CSP forbids eval; Playwright's wait_for_function needs it in the test only.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    errors = PageErrors(pg)
    try:
        login(pg, device.url)
        yield pg
        errors.check()
    finally:
        context.close()


def login(pg: Any, url: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait for the app to connect."""
    pg.goto(f"{url}/login")
    pg.fill("#password", password)
    pg.click("#login-submit")
    pg.wait_for_url(f"{url}/")
    pg.wait_for_selector("#conn-state.conn-online", timeout=20_000)
