"""Browser charts: sustained updates per second on 4 tabs, with and without frame coalescing.

Four visible tabs (a two-series line chart keeping 300 points, a 72-angle polar
area chart, a 32x32 heatmap and a 200x128 spectrogram) in Debian's chromium
(headless) are each fed the same number of JSON messages per second, parsed in
the page as the app parses WebSocket frames. Two ways of drawing:

- ``frames``: the charts module as shipped, applying every message and drawing
  once per animation frame;
- ``each`` (the peer): drawing every message as it arrives.

A rate is sustained when the run ends on time (within 15 %), the page keeps at
least 30 frames per second, and nothing is dropped. Prints figures only.
``python -m bench web_charts`` (after ``make -C appliance/web/frontend``).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from bench import span
from tests.chromium import launch

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "appliance" / "web" / "frontend"
RATES_HZ = [30, 60, 120, 240, 480, 960, 1920, 3840]  # messages per second per tab
SECONDS = span(3.0)
MIN_FPS = 30.0
ON_TIME = 1.15  # a run may take this much longer than planned and still count
PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
    '</head><body><script type="module" src="harness.js"></script></body></html>'
)


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        return


def build(out: Path) -> None:
    """Bundle the test harness (charts, audio, bench helpers) into `out`."""
    esbuild = FRONTEND / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True)
    subprocess.run(
        [str(esbuild), "test/harness.js", "--bundle", "--format=esm", "--target=es2022",
         "--minify", f"--outfile={out / 'harness.js'}", "--log-level=warning"],
        cwd=FRONTEND,
        check=True,
    )  # fmt: skip
    (out / "index.html").write_text(PAGE)


def sustained(result: dict[str, Any]) -> bool:
    """Whether the page kept up with this run's rate."""
    on_time = result["elapsed"] <= result["seconds"] * ON_TIME + 0.1
    return bool(on_time and result["fps"] >= MIN_FPS and not any(result["dropped"].values()))


def ladder(page: Page, mode: str) -> tuple[int, list[dict[str, Any]]]:
    """Run each rate until one is not sustained; the best sustained rate and every run."""
    best = 0
    runs = []
    for rate in RATES_HZ:
        result: dict[str, Any] = page.evaluate(
            "([rate, seconds, mode]) => bench.run(rate, seconds, mode)", [rate, SECONDS, mode]
        )
        runs.append(result)
        ok = sustained(result)
        drawn = ", ".join(f"{k} {v / result['elapsed']:.0f}" for k, v in result["drawn"].items())
        print(
            f"  {mode:6} {rate:4d} msg/s/tab: {result['elapsed']:.2f} s for {SECONDS:.0f} s, "
            f"{result['fps']:.0f} fps, draws/s [{drawn}] {'ok' if ok else 'FELL BEHIND'}",
            flush=True,
        )
        if not ok:
            break
        best = rate
    return best, runs


def main() -> None:
    """Print the sustained rates of both modes and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        build(out)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=tmp))
        thread = threading.Thread(target=httpd.serve_forever, name="bench-http")
        thread.start()
        try:
            with launch() as browser:
                page = browser.new_page(viewport={"width": 900, "height": 640})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
                page.wait_for_function("() => window.bench !== undefined")
                page.evaluate("() => bench.setup()")
                print(f"4 tabs ({', '.join(page.evaluate('() => bench.tabs'))}), {SECONDS:.0f} s per rate")
                best_frames, _ = ladder(page, "frames")
                best_each, _ = ladder(page, "each")
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join()
    top = f">= {best_frames}" if best_frames == RATES_HZ[-1] else str(best_frames)
    print(f"sustained per tab, 4 tabs: drawn once per frame {top} msg/s; drawn per message {best_each} msg/s")
    if best_each:
        print(f"ratio frames/each: {best_frames / best_each:.1f}x")
    if errors:
        print(f"page errors: {errors}")


if __name__ == "__main__":
    main()
