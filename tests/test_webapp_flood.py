"""A print flood against a real `appliance serve` in Debian's chromium: the device
gathers the page's messages into few WebSocket frames, the page keeps bounded lists,
and typing still reaches the editor while the flood goes on.
(`bench/web_input_latency.py` measures the latency itself; a test never fails on a time.)
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest_web import browser, device, page
from tests.test_web_browser import WAIT_MS, execute, set_code, stop

__all__ = ["browser", "device", "page"]  # fixtures used by name

pytestmark = pytest.mark.browser

FLOOD = """
import browserinterface as bi

chart = bi.add_handler("Flood", "base:graph:line", {"xName": "n", "series": ["v"], "xLimitNb": 500})
bi.start()
n = 0
while True:
    print("line", n, "\\x1b[32mgreen\\x1b[0m")
    if n % 10 == 0:
        chart.send_data([{"x": n, "y": n % 7}])
    n += 1
"""

# Frames and messages the page receives from now on (a frame may hold a JSON array of messages).
COUNT_JS = """() => {
  window.__frames = 0;
  window.__messages = 0;
  window.micarray.conn.ws.addEventListener("message", (event) => {
    if (typeof event.data !== "string") return;
    window.__frames += 1;
    const parsed = JSON.parse(event.data);
    window.__messages += Array.isArray(parsed) ? parsed.length : 1;
  });
}"""

BOUNDS_JS = """() => {
  const tab = [...window.micarray.tabs.handlers.values()].find((e) => e.info.name === "Flood");
  const run = window.micarray.runs.selectedRun();
  return { replay: tab.replay.length, received: tab.view.stats().received, lines: run.lines.length,
           dom: document.querySelectorAll("#console .line").length };
}"""


def test_a_print_flood_comes_in_few_frames_and_the_page_stays_bounded(page: Any) -> None:
    set_code(page, FLOOD, "flood.py")
    execute(page)
    page.wait_for_function(
        "[...document.querySelectorAll('#console .line.notice')]"
        ".some(l => /lines dropped/.test(l.textContent))",
        timeout=WAIT_MS,
    )
    page.evaluate(COUNT_JS)
    page.wait_for_function("window.__messages >= 3000", timeout=WAIT_MS)
    frames, messages = page.evaluate("[window.__frames, window.__messages]")
    # One frame per message would cost the page a task each: thousands a second.
    assert messages >= 5 * frames, (frames, messages)
    # Typing reaches the editor while the flood goes on.
    page.click("#editor .cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.type("\n# typed during the flood")
    page.wait_for_function(
        "window.micarray.editor.getCode().includes('# typed during the flood')", timeout=WAIT_MS
    )
    # Bounded lists: the tab's kept data, the run's lines, the lines drawn.
    page.wait_for_function(
        "[...window.micarray.tabs.handlers.values()]"
        ".find((e) => e.info.name === 'Flood').view.stats().received > 5000",
        timeout=WAIT_MS,
    )
    bounds = page.evaluate(BOUNDS_JS)
    assert bounds["replay"] < 4000 and bounds["lines"] <= 6000 and bounds["dom"] <= 501, bounds
    stop(page)
