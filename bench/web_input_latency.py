"""Web app: input latency while a script floods the console with print().

Runs a real `appliance serve --source sim` and Debian's chromium (headless).
For tab clicks and for typing in the editor it measures, in the page, the time
from the input event's creation (``event.timeStamp``) to the next frame drawn
after it was handled, which is what a user feels as lag; the wall time of
Playwright's click (which also waits for the page to draw the target steadily);
and the wall time to type a 21-character line (the median of five). First with
nothing running (the peer), then while a script prints in a tight loop and
feeds a chart. Without input it also counts,
over a few seconds, the CPU time of the page's renderer (less at the mercy of a
loaded machine than wall times are) and the text frames the page receives.
Prints the figures and the flood/idle ratios; never passes or fails on a time.
`python -m bench web_input_latency`
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from bench import count, span
from tests.chromium import CHROMIUM_ARGS
from tests.conftest_web import CHROMIUM, login, running_server

CLICKS = count(10, smoke=2)
TYPINGS = count(5, smoke=1)  # the typed line's time is the median of this many lines
TYPED = "x = bi.rate * 2  # ok\n"[:21]
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

# Input event -> next animation frame after its handlers ran, per event, in ms.
PROBE_JS = """() => {
  window.__lag = [];
  for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, (event) => {
      const t0 = event.timeStamp;
      requestAnimationFrame(() => window.__lag.push(performance.now() - t0));
    }, true);
  }
}"""


# Text frames the page receives from now on.
FRAMES_JS = """() => {
  window.__frames = 0;
  const ws = window.micarray.conn.ws;
  ws.addEventListener("message", (e) => { if (typeof e.data === "string") window.__frames++; });
}"""


def _cpu_s(marker: bytes) -> float:
    """CPU seconds used so far by the processes this one started whose command line holds ``marker``."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    total = 0.0
    for pid, used in cpu.items():
        ancestor = pid
        while ancestor not in (0, 1, os.getpid()):
            ancestor = parents.get(ancestor, 0)
        try:
            matches = marker in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if ancestor == os.getpid() and matches:
            total += used
    return total


RENDERER = b"--type=renderer"
SERVICE = b"--http-port"


TASK = "ThreadControllerImpl::RunTask"


def _main_thread_ms(trace: bytes) -> tuple[float, float]:
    """Wall and CPU time (ms) the page's main thread spent in tasks, from a trace of "toplevel" events."""
    events = json.loads(trace)
    events = events["traceEvents"] if isinstance(events, dict) else events
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    tasks = [
        e for e in events if e.get("ph") == "X" and e.get("name") == TASK and (e["pid"], e["tid"]) in main
    ]
    return sum(e.get("dur", 0) for e in tasks) / 1000, sum(e.get("tdur", 0) for e in tasks) / 1000


def _quiet(browser: Any, page: Any) -> dict[str, float]:
    """Main thread busy and CPU (% of a core), text frames a second; no input, a few seconds."""
    seconds = span(4.0)
    page.evaluate(FRAMES_JS)
    browser.start_tracing(page=page, categories=["toplevel"])
    renderer, service, start = _cpu_s(RENDERER), _cpu_s(SERVICE), time.monotonic()
    page.wait_for_timeout(1000 * seconds)
    wall = time.monotonic() - start
    renderer, service = _cpu_s(RENDERER) - renderer, _cpu_s(SERVICE) - service
    frames = page.evaluate("window.__frames")
    busy_ms, cpu_ms = _main_thread_ms(browser.stop_tracing())
    return {
        "main_busy_pct": busy_ms / wall / 10,
        "main_cpu_pct": cpu_ms / wall / 10,
        "renderer_cpu_pct": 100 * renderer / wall,
        "service_cpu_pct": 100 * service / wall,
        "text_frames_per_s": frames / wall,
    }


def _measure(page: Any) -> dict[str, float]:
    page.evaluate("window.__lag = []")
    walls = []
    for i in range(CLICKS):
        start = time.monotonic()
        page.click('[data-tab="audio"]' if i % 2 == 0 else '[data-tab="device"]')
        walls.append(1000 * (time.monotonic() - start))
    page.wait_for_function(f"window.__lag.length >= {CLICKS}")
    clicks = page.evaluate("window.__lag.splice(0)")
    page.click("#editor .cm-content")
    page.keyboard.press("Control+End")
    page.wait_for_function("window.__lag.length >= 1")
    keys: list[float] = []
    typings = []
    for _ in range(TYPINGS):
        page.evaluate("window.__lag = []")
        start = time.monotonic()
        page.keyboard.type(TYPED)
        page.wait_for_function(f"window.__lag.length >= {len(TYPED)}")
        typings.append(time.monotonic() - start)
        keys += page.evaluate("window.__lag.splice(0)")
    typing_s = statistics.median(typings)
    return {
        "click_median_ms": statistics.median(clicks),
        "click_wall_med_ms": statistics.median(walls),
        "click_max_ms": max(clicks),
        "key_median_ms": statistics.median(keys),
        "key_max_ms": max(keys),
        "typing_s": typing_s,
    }


def main() -> None:
    with running_server(password=True) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
            page = context.new_page()
            page.set_default_timeout(120_000)  # a loaded machine must slow the figures, not end the run
            login(page, server.url)
            page.evaluate(PROBE_JS)
            idle = {**_measure(page), **_quiet(browser, page)}
            page.evaluate("(c) => window.micarray.editor.setCode(c)", FLOOD)
            page.fill("#script-name", "flood.py")
            page.click("#btn-execute")
            page.wait_for_function(
                "[...document.querySelectorAll('#console .line')]"
                ".some(l => /lines dropped/.test(l.textContent))",
                timeout=60_000,
            )
            flood = {**_measure(page), **_quiet(browser, page)}
            page.click("#btn-stop")
        finally:
            browser.close()
    print(f"{'':18}{'idle':>10}{'flood':>10}{'ratio':>8}")
    for key, quiet in idle.items():
        ratio = flood[key] / quiet if quiet else float("nan")
        print(f"{key:18}{quiet:10.2f}{flood[key]:10.2f}{ratio:8.2f}")


if __name__ == "__main__":
    main()
