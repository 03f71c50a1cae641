"""Every handler type with every data format, drawn by the real bundle in Debian's chromium.

The test page is the charts and audio modules (web/frontend/test/harness.js,
bundled with the project's esbuild) served by a local http.server; the checks
read the canvases' pixels, so a chart that "exists" but drew nothing fails.
"""

from __future__ import annotations

import base64
import io
import math
import subprocess
import threading
import wave
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from browserinterface.protocol import KIND_CAPTURE, KIND_PLAYBACK, encode_audio

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "web" / "frontend"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>handler types</title></head>
<body style="margin:0;background:#fff"><script type="module" src="harness.js"></script></body></html>
"""

RED, BLUE, GREEN = "#ff0000", "#0000ff", "#00a000"
FIRST_PALETTE = "#5470c6"  # ECharts' colour for a series without one of its own
HEAT_LOW, HEAT_HIGH = "#000004", "#fcfdbf"
TWO_SERIES = [{"name": "left", "color": RED}, {"name": "right", "color": BLUE}]
GRAPH_TYPES = ["base:graph:line", "base:graph:area", "base:graph:bar", "base:graph:plot"]
POLAR_TYPES = ["base:polar:line", "base:polar:area"]


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves the harness without writing a line per request to stderr."""

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
        [str(esbuild), "test/harness.js", "--bundle", "--format=esm", "--target=es2022",
         f"--outfile={out / 'harness.js'}", "--log-level=warning"],
        cwd=FRONTEND,
        check=True,
    )
    (out / "index.html").write_text(PAGE)
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
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Harness:
    """One page of the harness, recording every console error and page error."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console.error: {message.text}")

    def js(self, expression: str, arg: Any = None) -> Any:
        """Evaluate `expression` (a function of one argument) in the page."""
        return self.page.evaluate(expression, arg)

    def draw(
        self, view: str, handler_type: str, parameters: dict[str, Any], messages: list[Any],
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
        result: dict[str, Any] = self.js(
            "([id, colors]) => harness.pixels(id, colors)", [view, colors or []]
        )
        return result

    def banner(self, view: str) -> str | None:
        """The problem shown in the tab, if any."""
        text: str | None = self.js("(id) => harness.banner(id)", view)
        return text

    def assert_clean(self) -> None:
        """No console error and no uncaught exception so far."""
        assert self.errors == []


@pytest.fixture
def harness(browser: Browser, server: str) -> Iterator[Harness]:
    """A fresh harness page; fails the test on any JavaScript error."""
    page = browser.new_page(viewport={"width": 900, "height": 700})
    try:
        h = Harness(page)
        page.goto(f"{server}/index.html")
        page.wait_for_function("() => window.harness !== undefined")
        yield h
        h.assert_clean()
    finally:
        page.close()


# ---- x/y charts ----------------------------------------------------------------


def wave_y(i: int, k: int) -> float:
    """A smooth, distinct curve per series."""
    return round(5 + 3 * math.sin(i / 3 + k) + 4 * k, 3)


XS = list(range(30))
GRAPH_FORMATS: dict[str, list[Any]] = {
    "append one point per series": [
        [{"x": i, "y": wave_y(i, 0)}, {"x": i, "y": wave_y(i, 1)}] for i in XS
    ],
    "add per series": [
        {"add": [{"x": XS[:15], "y": [wave_y(i, k) for i in XS[:15]]} for k in (0, 1)]},
        {"add": [{"x": XS[15:], "y": [wave_y(i, k) for i in XS[15:]]} for k in (0, 1)]},
    ],
    "replace with x/y lists": [
        {"replace": [{"x": XS, "y": [0] * 30}, {"x": XS, "y": [1] * 30}]},
        {"replace": [{"x": XS, "y": [wave_y(i, k) for i in XS]} for k in (0, 1)]},
    ],
    "replace with point lists": [
        {"replace": [[{"x": i, "y": wave_y(i, k)} for i in XS] for k in (0, 1)]},
    ],
    "x and y columns": [{"x": XS, "y": [[wave_y(i, k) for i in XS] for k in (0, 1)]}],
}


@pytest.mark.parametrize("data_format", list(GRAPH_FORMATS))
@pytest.mark.parametrize("handler_type", GRAPH_TYPES)
def test_graph_draws_each_format_in_series_colours(
    harness: Harness, handler_type: str, data_format: str
) -> None:
    harness.draw("g", handler_type, {"xName": "time", "series": TWO_SERIES}, GRAPH_FORMATS[data_format])
    assert harness.banner("g") is None
    counts = harness.pixels("g", [RED, BLUE])
    assert counts["canvases"] >= 1
    red, blue = counts["near"]
    assert red > 40, f"series 'left' ({RED}) drew {red} pixels"
    assert blue > 40, f"series 'right' ({BLUE}) drew {blue} pixels"
    assert harness.js("() => harness.view('g').impl.sizes()") == [30, 30]
    harness.assert_clean()


def test_graph_series_as_names_use_the_palette(harness: Harness) -> None:
    harness.draw("g", "base:graph:line", {"series": ["only"]}, [[{"x": i, "y": i % 7}] for i in XS])
    assert harness.pixels("g", [FIRST_PALETTE])["near"][0] > 40
    harness.assert_clean()


def test_graph_without_series_has_one(harness: Harness) -> None:
    harness.draw("g", "base:graph:plot", {}, [{"x": 1, "y": 2}, {"x": 2, "y": 3}])
    assert harness.js("() => harness.view('g').impl.sizes()") == [2]
    assert harness.pixels("g", [FIRST_PALETTE])["near"][0] > 20
    harness.assert_clean()


def test_x_limit_nb_keeps_the_last_points(harness: Harness) -> None:
    messages = [[{"x": i, "y": i % 5}, {"x": i, "y": 1}] for i in range(50)]
    harness.draw("g", "base:graph:line", {"series": TWO_SERIES, "xLimitNb": 10}, messages)
    kept = harness.js("() => harness.view('g').impl.store.series[0].map((p) => p[0])")
    assert kept == list(range(40, 50))
    assert harness.axisExtent("g", "xAxis") == [40, 49] if hasattr(harness, "axisExtent") else True
    assert harness.js("() => harness.axisExtent('g', 'xAxis')") == [40, 49]
    harness.assert_clean()


def test_x_limit_distance_keeps_an_x_span(harness: Harness) -> None:
    messages = [[{"x": i * 0.5, "y": i % 3}] for i in range(40)]
    harness.draw("g", "base:graph:area", {"series": ["a"], "xLimitDistance": 5}, messages)
    kept = harness.js("() => harness.view('g').impl.store.series[0].map((p) => p[0])")
    assert kept[0] == 14.5 and kept[-1] == 19.5
    harness.assert_clean()


def test_min_zero_and_max_are_honoured(harness: Harness) -> None:
    messages = [[{"x": i, "y": 5 + i % 5}] for i in range(20)]
    harness.draw("zero", "base:graph:line", {"series": ["a"], "min": 0, "max": 12}, messages)
    harness.draw("auto", "base:graph:line", {"series": ["a"]}, messages)
    assert harness.js("() => harness.axisExtent('zero')") == [0, 12]
    low, _ = harness.js("() => harness.axisExtent('auto')")
    assert low > 0, "without min the axis follows the data, so min 0 above really came from the parameter"
    harness.assert_clean()


def test_category_x_values(harness: Harness) -> None:
    messages = [[{"x": name, "y": i + 1}] for i, name in enumerate(["mon", "tue", "wed", "thu"])]
    harness.draw("g", "base:graph:bar", {"series": [{"name": "n", "color": GREEN}]}, messages)
    assert harness.pixels("g", [GREEN])["near"][0] > 200
    harness.assert_clean()
