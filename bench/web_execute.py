"""Web app: Execute click to first chart update, and sustained chart updates per tab.

Runs a real `appliance serve --source sim` and Debian's chromium (headless):

1. Execute latency: the time from the click on Execute to the first frame the
   page draws for the script's tab, over several runs.
2. Sustained drawing: with the charts tiled (all visible), a script feeds 1
   and then 4 line-chart tabs at a fixed message rate; the page's own
   counters give the messages received and the frames drawn per second per
   tab, and whether anything was dropped. The 1-tab run is the peer the 4-tab
   run is compared with.

Prints figures only; never passes or fails on a time.
`python -m bench web_execute`
"""

from __future__ import annotations

import statistics
from typing import Any

from playwright.sync_api import sync_playwright

from bench import count, span
from tests.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest_web import login, running_server

EXECUTE_RUNS = count(5)
FEED_SECONDS = span(6.0, smoke=1.0)
FEED_RATE_HZ = 60  # messages per second per tab

FIRST_CHART = """
import browserinterface as bi
chart = bi.add_handler("first", "base:graph:line", {"xName": "n", "series": ["v"]})
chart.send_data([{"x": 0, "y": 1}])
bi.start()
"""

FEEDER = """
import time
import browserinterface as bi
TABS, RATE, SECONDS = %d, %d, %f
PARAMS = {"xName": "n", "series": ["a", "b"], "xLimitNb": 300}
charts = [bi.add_handler(f"feed {i}", "base:graph:line", PARAMS) for i in range(TABS)]
bi.start()
time.sleep(1.0)
print("feeding", flush=True)
start = time.monotonic()
n = 0
while time.monotonic() - start < SECONDS:
    for c in charts:
        c.send_data([{"x": n, "y": n %% 17}, {"x": n, "y": (3 * n) %% 23}])
    n += 1
    time.sleep(max(0.0, start + n / RATE - time.monotonic()))
print("fed", n, flush=True)
"""

CLICK_TO_FIRST_DRAW_JS = """async () => {
  const before = window.micarray.chartTotals().drawn;
  const t0 = performance.now();
  document.querySelector('#btn-execute').click();
  return await new Promise((resolve) => {
    const check = () => {
      if (window.micarray.chartTotals().drawn > before) resolve(performance.now() - t0);
      else requestAnimationFrame(check);
    };
    check();
  });
}"""

TAB_STATS_JS = """() => [...window.micarray.tabs.handlers.values()]
  .filter((e) => e.info.name.startsWith('feed '))
  .map((e) => ({name: e.info.name, ...e.view.stats()}))"""


def _set_code(page: Any, code: str, name: str) -> None:
    page.fill("#script-name", name)
    page.evaluate("(c) => window.micarray.editor.setCode(c)", code)


def _stop(page: Any) -> None:
    if page.text_content("#run-state") == "running":
        page.click("#btn-stop")
    page.wait_for_function("document.querySelector('#run-state').textContent !== 'running'")


def _close_tabs(page: Any) -> None:
    page.evaluate(
        "() => [...window.micarray.tabs.handlers.keys()].forEach((id) => window.micarray.tabs.close(id))"
    )


def _execute_latency(page: Any) -> list[float]:
    _set_code(page, FIRST_CHART, "first_chart.py")
    times = []
    for _ in range(EXECUTE_RUNS):
        times.append(float(page.evaluate(CLICK_TO_FIRST_DRAW_JS)))
        _stop(page)
        _close_tabs(page)
    return times


def _sustained(page: Any, tabs: int) -> dict[str, float]:
    _set_code(page, FEEDER % (tabs, FEED_RATE_HZ, FEED_SECONDS), f"feed{tabs}.py")
    page.click("#btn-execute")
    page.wait_for_function(
        """([name, tabs]) =>
          document.querySelector('#run-select').selectedOptions[0]?.textContent.includes(name)
          && [...document.querySelectorAll('#console .line')].some(l => l.textContent === 'feeding')
          && [...window.micarray.tabs.handlers.values()]
               .filter((e) => e.info.name.startsWith('feed ')).length === tabs""",
        arg=[f"feed{tabs}.py", tabs],
        timeout=30_000,
    )
    before = {s["name"]: s for s in page.evaluate(TAB_STATS_JS)}
    t0 = page.evaluate("performance.now()")
    page.wait_for_function(
        "[...document.querySelectorAll('#console .line')].some(l => l.textContent.startsWith('fed '))",
        timeout=60_000,
    )
    page.wait_for_timeout(300)  # let the last messages arrive and draw
    seconds = (page.evaluate("performance.now()") - t0) / 1000
    after = page.evaluate(TAB_STATS_JS)
    received = [a["received"] - before[a["name"]]["received"] for a in after]
    drawn = [a["drawn"] - before[a["name"]]["drawn"] for a in after]
    dropped = sum(a["dropped"] for a in after)
    _stop(page)
    _close_tabs(page)
    return {
        "received_per_s": statistics.mean(received) / seconds,
        "drawn_per_s": statistics.mean(drawn) / seconds,
        "drawn_min_per_s": min(drawn) / seconds,
        "dropped": float(dropped),
    }


def main() -> None:
    """Print the figures."""
    with running_server(password=True) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        login(page, server.url)
        times = _execute_latency(page)
        page.click("#btn-tile")  # every chart visible at once, as a user watching 4 tabs would
        one = _sustained(page, 1)
        four = _sustained(page, 4)
        browser.close()
    print(
        f"Execute click to first chart update: median {statistics.median(times):.0f} ms, "
        f"min {min(times):.0f} ms, max {max(times):.0f} ms over {len(times)} runs"
    )
    for label, r in (("1 tab ", one), ("4 tabs", four)):
        print(
            f"{label}: {r['received_per_s']:.1f} messages/s received per tab, "
            f"{r['drawn_per_s']:.1f} frames/s drawn per tab (slowest tab {r['drawn_min_per_s']:.1f}), "
            f"{r['dropped']:.0f} dropped "
            f"(fed at {FEED_RATE_HZ}/s per tab)"
        )
    print(
        f"4 tabs vs 1 tab: received per tab x{four['received_per_s'] / one['received_per_s']:.2f}, "
        f"drawn per tab x{four['drawn_per_s'] / max(one['drawn_per_s'], 1e-9):.2f}"
    )


if __name__ == "__main__":
    main()
