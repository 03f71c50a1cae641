"""A page with the front end's charts and audio modules in Debian's chromium, for tests.

The page is appliance/web/frontend/test/harness.js bundled with the project's esbuild and
served by a local http.server with the device's security policy. Test modules
import the fixtures (`harness` gives an emptied page that fails the test on any
JavaScript error) and the Harness helpers that feed views and read pixels.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.chromium import PageErrors, launch

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "appliance" / "web" / "frontend"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="favicon.svg"><title>handler types</title></head>
<body><script type="module" src="harness.js"></script></body></html>
"""

CUSTOM_TYPE = """
window.micarray.registerHandlerType("demo:text", (container, parameters) => {
  const list = document.createElement("ol");
  list.id = "demo-list";
  container.append(list);
  return {
    newData(data) {
      if (data === "boom") throw new Error("demo cannot show boom");
      const item = document.createElement("li");
      item.textContent = parameters.prefix + JSON.stringify(data);
      list.append(item);
    },
  };
});
"""

CSP = "default-src 'self'"  # what the device sends (appliance/web/base.py)
FAVICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>'


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves the harness with the device's security policy, without a log line per request."""

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def harness_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The harness bundle and its page, built with the project's esbuild."""
    out = tmp_path_factory.mktemp("harness")
    esbuild = FRONTEND / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True)
    subprocess.run(
        [
            str(esbuild),
            "test/harness.js",
            "--bundle",
            "--format=esm",
            "--target=es2022",
            f"--outfile={out / 'harness.js'}",
            "--log-level=warning",
        ],
        cwd=FRONTEND,
        check=True,
    )
    (out / "index.html").write_text(PAGE)
    (out / "demo-type.js").write_text(CUSTOM_TYPE.replace("demo:text", "demo:file"))
    (out / "favicon.svg").write_text(FAVICON)
    return out


@pytest.fixture(scope="module")
def server(harness_dir: Path) -> Iterator[str]:
    """A static server on 127.0.0.1, stopped and joined afterwards."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(harness_dir)))
    thread = threading.Thread(target=httpd.serve_forever, name="harness-http")
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless."""
    with launch() as chromium:
        yield chromium


class Harness:
    """One page of the harness, recording every console error and page error."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors = PageErrors(page, uncaught="pageerror").errors

    def js(self, expression: str, arg: Any = None) -> Any:
        """Evaluate `expression` (a function of one argument) in the page."""
        return self.page.evaluate(expression, arg)

    def draw(
        self,
        view: str,
        handler_type: str,
        parameters: dict[str, Any],
        messages: list[Any],
        **box: Any,
    ) -> None:
        """Create a view, feed it every message, and wait until it has drawn."""
        self.js(
            "([id, type, params, box]) => harness.create(id, type, params, box)",
            [view, handler_type, parameters, box],
        )
        self.feed(view, messages)

    def feed(self, view: str, messages: list[Any]) -> None:
        """Feed messages and wait two animation frames (the view draws in the first)."""
        self.js("([id, messages]) => harness.feed(id, messages)", [view, messages])
        self.js("() => harness.frames(2)")

    def pixels(self, view: str, colors: list[str] | None = None) -> dict[str, Any]:
        """Counts of painted pixels and of pixels near each colour."""
        result: dict[str, Any] = self.js("([id, colors]) => harness.pixels(id, colors)", [view, colors or []])
        return result

    def banner(self, view: str) -> str | None:
        """The problem shown in the tab, if any."""
        text: str | None = self.js("(id) => harness.banner(id)", view)
        return text

    def assert_clean(self) -> None:
        """No console error and no uncaught exception so far."""
        assert self.errors == []


@pytest.fixture(scope="module")
def shared_harness(browser: Browser, server: str) -> Iterator[Harness]:
    """One harness page for the module (loading the bundle is most of a test's time)."""
    page = browser.new_page(viewport={"width": 900, "height": 700})
    try:
        h = Harness(page)
        page.goto(f"{server}/index.html")
        page.wait_for_function("() => window.harness !== undefined")
        yield h
    finally:
        page.close()


@pytest.fixture
def harness(shared_harness: Harness) -> Iterator[Harness]:
    """The harness page emptied of views; fails the test on any JavaScript error."""
    shared_harness.errors.clear()
    shared_harness.page.mouse.move(0, 0)
    shared_harness.js("() => harness.reset()")
    yield shared_harness
    shared_harness.assert_clean()
