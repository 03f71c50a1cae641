"""Settings and signing out in Debian's chromium against a real `appliance serve`:
tokens with clear errors, confirmation, copy lines; sessions that end on the device.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chromium import PageErrors
from tests.conftest_web import PASSWORD, Http, Server, browser, device, login, page
from tests.test_web_browser import WAIT_MS

__all__ = ["browser", "device", "page"]  # fixtures used by name

pytestmark = pytest.mark.browser


def answer(dialog: Any, asked: list[str], *, accept: bool) -> None:
    """Note what a dialog asked, then accept or dismiss it."""
    asked.append(dialog.message)
    if accept:
        dialog.accept()
    else:
        dialog.dismiss()


@pytest.fixture
def settings_page(browser: Any, device: Server) -> Iterator[Any]:
    """A signed-in page whose refused forms (400, with the error in words) are no JavaScript error."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    pg = context.new_page()
    errors = PageErrors(pg)
    try:
        login(pg, device.url)
        yield pg
        errors.check(allow=(r"status of 400 \(Bad Request\)",))
    finally:
        context.close()


def test_tokens_clear_errors_confirmation_and_ready_lines(settings_page: Any, device: Server) -> None:
    page = settings_page
    page.click("#settings-link")
    page.wait_for_url(device.url + "/settings")
    page.fill("#token-name", "my laptop!")
    page.click("#token-create")
    error = page.text_content("#settings-error")
    assert (
        error == "Token name 'my laptop!' is not allowed; use 1 to 64 letters, digits, '_', '.', '@' or '-'."
    )
    assert page.input_value("#token-name") == "my laptop!"  # what was typed stays, to be corrected
    page.fill("#token-name", "")
    page.click("#token-create")
    assert page.text_content("#settings-error").startswith("Give the token a name")
    page.fill("#token-name", "laptop")
    page.click("#token-create")
    page.wait_for_selector("#new-token")
    assert "/settings?new=" in page.url  # a redirect: a reload repeats no form
    token = page.text_content("#new-token-value")
    assert (
        page.text_content("#new-token-script")
        == f"BI_DEVICE={device.device} BI_TOKEN={token} python3 script.py"
    )
    assert page.text_content("#new-token-rtai") == f"rtai listen {device.device} --token={token} --play"
    page.click("button[data-copy='new-token-script']")
    page.wait_for_function(
        "document.querySelector(\"button[data-copy='new-token-script']\").textContent === 'Copied'"
    )
    assert page.evaluate("navigator.clipboard.readText()").startswith("BI_DEVICE=")
    page.reload()
    assert page.locator("#new-token").count() == 0  # shown once
    row = page.locator("tr[data-token='laptop']")
    asked: list[str] = []
    page.once("dialog", lambda d: answer(d, asked, accept=False))
    row.locator("button.danger").click()
    assert asked and "Revoke the token laptop?" in asked[0]
    assert page.locator("tr[data-token='laptop']").count() == 1
    page.once("dialog", lambda d: d.accept())
    row.locator("button.danger").click()
    page.wait_for_selector("#settings-notice")
    assert page.text_content("#settings-notice") == "Token laptop revoked."
    assert page.locator("tr[data-token='laptop']").count() == 0


def test_a_token_made_elsewhere_appears_when_the_window_is_looked_at(page: Any, device: Server) -> None:
    page.goto(device.url + "/settings")
    other = Http(device.url)
    assert other.login() == 302
    status, _ = other.json("POST", "/api/v1/tokens", {"name": "from-api"})
    assert status == 201
    page.evaluate("window.dispatchEvent(new Event('focus'))")
    page.wait_for_selector("tr[data-token='from-api']", timeout=WAIT_MS)


def test_sign_out_ends_the_session_on_the_device(browser: Any, device: Server) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    errors = PageErrors(pg)
    try:
        login(pg, device.url)
        cookie = next(c for c in context.cookies() if c["name"] == "micarray_session")
        copy = Http(device.url)
        copy.opener.addheaders = [("Cookie", f"micarray_session={cookie['value']}")]
        assert copy.request("GET", "/api/v1/scripts")[0] == 200  # the copied cookie works while signed in
        pg.click("#btn-logout")
        pg.wait_for_url(device.url + "/login")
        assert copy.request("GET", "/api/v1/scripts")[0] == 403  # and not after signing out
        sessions = json.loads((device.data_dir / "browser-sessions.json").read_text())
        assert all(s.get("created") for s in sessions.values())
        assert stat.S_IMODE((device.data_dir / "browser-sessions.json").stat().st_mode) == 0o600
        errors.check(allow=(r"status of 403",))
    finally:
        context.close()


WATCH_SOCKET_JS = """() => {
  const ws = window.micarray.conn.ws;
  // Kept in sessionStorage: the page goes to the sign-in page right after.
  ws.addEventListener("close", (e) => {
    sessionStorage.setItem("closed", JSON.stringify({ code: e.code, reason: e.reason }));
  });
}"""

OPEN_SOCKET_JS = """(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onopen = () => { ws.close(); resolve("opened"); };
  ws.onclose = () => resolve("refused");
})"""


def test_sign_out_closes_the_open_sockets_of_that_session_a_copied_cookies_too(
    browser: Any, device: Server
) -> None:
    mine = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    copy = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    try:
        pg = mine.new_page()
        errors = PageErrors(pg)
        login(pg, device.url)
        copy.add_cookies([c for c in mine.cookies() if c["name"] == "micarray_session"])
        other = copy.new_page()
        other_errors = PageErrors(other)
        other.goto(device.url + "/")
        other.wait_for_selector("#conn-state.conn-online", timeout=WAIT_MS)
        other.evaluate(WATCH_SOCKET_JS)
        pg.click("#btn-logout")
        pg.wait_for_url(device.url + "/login")
        # The copy's socket is closed by the device (not left open until it next asks).
        # The page then finds its session gone and goes to the sign-in page.
        other.wait_for_url(device.url + "/login", timeout=WAIT_MS)
        closed = json.loads(other.evaluate("sessionStorage.getItem('closed') || 'null'"))
        assert closed == {"code": 4003, "reason": "signed out"}
        ws_url = device.url.replace("http://", "ws://") + "/api/v1/ws"
        assert other.evaluate(OPEN_SOCKET_JS, ws_url) == "refused"
        errors.check(allow=(r"status of 403",))
        other_errors.check(allow=(r"status of 403", r"status of 401", r"WebSocket connection"))
    finally:
        copy.close()
        mine.close()


def test_settings_lists_signed_in_browsers_and_ends_another(page: Any, browser: Any, device: Server) -> None:
    other_context = browser.new_context(user_agent="Another browser 1.0", bypass_csp=True)
    other = other_context.new_page()
    try:
        login(other, device.url)
        page.goto(device.url + "/settings")
        rows = page.locator("#session-table tbody tr")
        assert page.locator("tr[data-session='this']").count() == 1
        theirs = page.locator("tr[data-session='other']", has_text="Another browser 1.0")
        assert theirs.count() == 1
        assert rows.count() >= 2
        page.once("dialog", lambda d: d.accept())
        theirs.locator("button.danger").click()
        page.wait_for_selector("#settings-notice")
        assert page.locator("tr[data-session='other']", has_text="Another browser 1.0").count() == 0
        other.goto(device.url + "/")
        assert other.url == device.url + "/login"
    finally:
        other_context.close()


def test_a_password_change_answers_with_a_page_to_reload(page: Any, device: Server) -> None:
    page.goto(device.url + "/settings")
    form = page.locator("#password-form")
    form.locator("input[name=current]").fill(PASSWORD)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("input[name=confirm]").fill(PASSWORD)
    form.locator("button").click()
    page.wait_for_url(device.url + "/settings?done=password")
    assert page.text_content("#settings-notice") == "Password changed; other browsers must sign in again."
    page.reload()  # a plain GET: no form is sent again
    assert page.url == device.url + "/settings?done=password"
    page.goto(device.url + "/")
    page.wait_for_selector("#conn-state.conn-online", timeout=WAIT_MS)
