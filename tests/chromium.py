"""Debian's chromium driven by Playwright, for tests and benchmarks (never `playwright install`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking switches chromium keeps trying hosts this
# machine cannot reach; the sandbox needs user namespaces that root has not.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def launch() -> Iterator[Browser]:
    """A headless chromium, always closed."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageErrors:
    """Every console error and uncaught exception of a page."""

    def __init__(self, page: Any, uncaught: str = "uncaught") -> None:
        self.errors: list[str] = []
        self._uncaught = uncaught
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"{self._uncaught}: {exc}"))

    def _console(self, msg: Any) -> None:
        if msg.type == "error":
            self.errors.append(f"console.error: {msg.text}")

    def check(self, allow: tuple[str, ...] = ()) -> None:
        """Fail on any error not matching an ``allow`` pattern."""
        bad = [e for e in self.errors if not any(re.search(p, e) for p in allow)]
        assert not bad, "JavaScript errors:\n" + "\n".join(bad)
