"""Layout, tabs and windows of the web app in Debian's chromium against a real `appliance serve`:
a phone's width, tiles, the split, full screen, ended tabs, several windows, dark theme, export.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import PageErrors
from tests.conftest_web import ROOT, Http, Server, browser, device, login, page
from tests.test_web_browser import WAIT_MS, execute, live_tab, set_code, stop, wait_drawn

__all__ = ["browser", "device", "page"]  # fixtures used by name

pytestmark = pytest.mark.browser

FOUR_TABS = """
import browserinterface as bi
for name in ("One", "Two", "Three", "Four"):
    h = bi.add_handler(name, "base:graph:line", {"xName": "n", "series": ["v"]})
    h.send_data([{"x": 1, "y": 2}])
bi.start()
print("tabs ready", flush=True)
import time
time.sleep(600)
"""


WAVES = """
import math
import browserinterface as bi
PARAMS = {"xName": "t (ms)", "series": ["left", "right"], "min": -1, "max": 1}
h = bi.add_handler("Waves", "base:graph:line", PARAMS)
h.send_data({"x": [t for t in range(200)], "y": [[math.sin(t / 15) for t in range(200)],
                                                [0.6 * math.cos(t / 9) for t in range(200)]]})
bi.start()
print("\\x1b[32mwaves drawn\\x1b[0m", flush=True)
import time
time.sleep(600)
"""


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """docs/NAME with UPDATE_SCREENSHOT=1 (as for the main screenshot), else a scratch file."""
    return ROOT / "docs" / name if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / name


def handler_tabs(pg: Any) -> list[str]:
    return [
        str(t)
        for t in pg.eval_on_selector_all(".handler-tab .tab-name", "els => els.map(e => e.textContent)")
    ]


def test_phone_width_reaches_everything_and_clips_nothing(
    browser: Any, device: Server, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 400, "height": 800}, bypass_csp=True)
    pg = context.new_page()
    errors = PageErrors(pg)
    try:
        login(pg, device.url)
        assert pg.evaluate("document.documentElement.scrollWidth") <= 400
        assert pg.evaluate("document.documentElement.scrollHeight") > 800  # the page scrolls
        for selector in (
            "#btn-execute",
            "#btn-stop",
            "#editor",
            "#console",
            "#btn-clear",
            "#tabstrip",
            "#pane-device",
        ):
            el = pg.locator(selector)
            el.scroll_into_view_if_needed()
            box = el.bounding_box()
            assert box is not None and box["width"] > 0, selector
            assert box["x"] >= 0 and box["x"] + box["width"] <= 400.5, (selector, box)
        console = pg.locator("#console").bounding_box()
        assert console is not None and console["height"] >= 150
        shot = screenshot_path("screenshot-phone.png", tmp_path)
        pg.evaluate("window.scrollTo(0, 0)")
        pg.screenshot(path=str(shot), full_page=True)
        errors.check()
    finally:
        context.close()


def test_tiles_fill_the_pane_the_split_drags_and_a_chart_goes_full_screen(page: Any) -> None:
    set_code(page, FOUR_TABS, "four.py")
    execute(page)
    page.wait_for_function("document.querySelectorAll('.handler-tab').length === 4", timeout=WAIT_MS)
    page.click("#btn-tile")
    panes = page.locator("#tabpanes > .handler-pane")
    boxes = [panes.nth(i).bounding_box() for i in range(4)]
    area = page.locator("#tabpanes").bounding_box()
    assert area is not None and all(b is not None for b in boxes)
    columns = sorted({round(b["x"]) for b in boxes if b})
    rows = sorted({round(b["y"]) for b in boxes if b})
    assert len(columns) == 2 and len(rows) == 2, boxes  # a 2 x 2 grid, not one column
    bottom = max(b["y"] + b["height"] for b in boxes if b)
    assert bottom <= area["y"] + area["height"] + 1  # all in view, no scrolling
    assert bottom >= area["y"] + area["height"] - 20  # and the grid fills the pane
    left = page.locator("#left").bounding_box()
    bar = page.locator("#splitter").bounding_box()
    assert left and bar
    page.mouse.move(bar["x"] + 3, bar["y"] + 100)
    page.mouse.down()
    page.mouse.move(bar["x"] - 200, bar["y"] + 100, steps=5)
    page.mouse.up()
    narrower = page.locator("#left").bounding_box()
    assert narrower and narrower["width"] < left["width"] - 150
    page.click("#btn-tile")
    live_tab(page, "Two").click()
    page.locator("#tabpanes > .handler-pane:not([hidden]) .chart-full").click()
    page.wait_for_function("document.fullscreenElement?.classList.contains('handler-pane')", timeout=WAIT_MS)
    page.evaluate("document.exitFullscreen()")
    stop(page)


def test_rerun_replaces_ended_tabs_and_closing_reaches_every_window(page: Any, device: Server) -> None:
    set_code(page, FOUR_TABS, "four.py")
    execute(page)
    page.wait_for_function("document.querySelectorAll('.handler-tab').length === 4", timeout=WAIT_MS)
    stop(page)
    page.wait_for_function("document.querySelectorAll('.handler-tab.ended').length === 4", timeout=WAIT_MS)
    execute(page)
    page.wait_for_function(
        "document.querySelectorAll('.handler-tab:not(.ended)').length === 4", timeout=WAIT_MS
    )
    page.wait_for_function("document.querySelectorAll('.handler-tab').length === 4", timeout=WAIT_MS)
    second = page.context.new_page()
    errors = PageErrors(second)
    second.goto(device.url + "/")
    second.wait_for_selector("#conn-state.conn-online", timeout=WAIT_MS)
    assert sorted(handler_tabs(second)) == ["Four", "One", "Three", "Two"]
    live_tab(page, "Three").locator(".tab-close").click()
    gone = "![...document.querySelectorAll('.handler-tab')].some(t => /Three/.test(t.textContent))"
    second.wait_for_function(gone, timeout=WAIT_MS)
    stop(page)
    assert second.is_enabled("#btn-close-ended") or second.wait_for_function(
        "!document.querySelector('#btn-close-ended').disabled", timeout=WAIT_MS
    )
    second.click("#btn-close-ended")
    page.wait_for_function("document.querySelectorAll('.handler-tab').length === 0", timeout=WAIT_MS)
    # The strip keeps its tools in view however many tabs there are.
    assert page.is_visible("#btn-tile") and page.is_visible("#btn-close-ended")
    second.close()
    errors.check()


def test_saved_scripts_reach_a_second_window_without_a_reload(page: Any, device: Server) -> None:
    second = page.context.new_page()
    errors = PageErrors(second)
    second.goto(device.url + "/")
    second.wait_for_selector("#conn-state.conn-online", timeout=WAIT_MS)
    set_code(page, "print('shared')\n", "shared.py")
    page.click("#btn-save")
    has = "(n) => [...document.querySelectorAll('#script-list option')].some(o => o.value === n)"
    second.wait_for_function(has, arg="shared.py", timeout=WAIT_MS)
    status, _ = Http(device.url).json("GET", "/api/v1/scripts")  # not signed in: refused
    assert status == 403
    page.once("dialog", lambda d: d.accept())
    page.click("#btn-delete")
    second.wait_for_function(f"!({has})('shared.py')", timeout=WAIT_MS)
    second.close()
    errors.check()


def test_dark_theme_follows_the_system_and_has_a_switch(browser: Any, device: Server, tmp_path: Path) -> None:
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, color_scheme="dark", bypass_csp=True
    )
    pg = context.new_page()
    errors = PageErrors(pg)
    try:
        login(pg, device.url)
        background = "getComputedStyle(document.body).backgroundColor"
        assert pg.evaluate("document.documentElement.dataset.theme") == "dark"
        assert pg.evaluate(background) == "rgb(18, 22, 29)"
        assert (
            pg.evaluate("getComputedStyle(document.querySelector('.cm-editor')).backgroundColor")
            == "rgb(26, 31, 40)"
        )
        set_code(pg, WAVES, "waves.py")
        execute(pg)
        wait_drawn(pg, live_tab(pg, "Waves"), minimum=200)
        pg.screenshot(path=str(screenshot_path("screenshot-dark.png", tmp_path)))
        stop(pg)
        pg.click("#btn-theme")
        assert pg.evaluate("document.documentElement.dataset.theme") == "light"
        assert pg.evaluate(background) == "rgb(243, 245, 249)"
        pg.reload()
        pg.wait_for_selector("#conn-state.conn-online", timeout=WAIT_MS)
        assert pg.evaluate("document.documentElement.dataset.theme") == "light"  # the choice is kept
        errors.check()
    finally:
        context.close()


# The colours ECharts resolved for the newest "Waves" chart, and the page's own.
CHART_COLOURS_JS = """() => {
  const view = [...window.micarray.tabs.handlers.values()].filter((e) => e.info.name === "Waves").at(-1).view;
  const model = view.impl.chart.getModel();
  const x = model.getComponent("xAxis", 0);
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return {
    label: x.get(["axisLabel", "color"]),
    axis: x.get(["axisLine", "lineStyle", "color"]),
    grid: [].concat(model.getComponent("yAxis", 0).get(["splitLine", "lineStyle", "color"]))[0],
    legend: model.getComponent("legend", 0).get(["textStyle", "color"]),
    page: { fg: css("--fg"), muted: css("--muted"), line: css("--line") },
  };
}"""


def test_charts_follow_the_theme(browser: Any, device: Server) -> None:
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, color_scheme="dark", bypass_csp=True
    )
    pg = context.new_page()
    errors = PageErrors(pg)
    try:
        login(pg, device.url)
        set_code(pg, WAVES, "waves.py")
        execute(pg)
        wait_drawn(pg, live_tab(pg, "Waves"), minimum=200)
        seen = {}
        for theme in ("dark", "light"):
            if pg.evaluate("document.documentElement.dataset.theme") != theme:
                pg.click("#btn-theme")  # the same chart, switched in place
            colours = pg.evaluate(CHART_COLOURS_JS)
            page_colours = colours["page"]
            assert colours["label"] == colours["axis"] == page_colours["muted"], (theme, colours)
            assert colours["grid"] == page_colours["line"], (theme, colours)
            assert colours["legend"] == page_colours["fg"], (theme, colours)
            seen[theme] = colours
        assert seen["dark"]["page"] == {"fg": "#e3e7ee", "muted": "#9aa4b5", "line": "#323a48"}
        assert seen["light"]["page"] == {"fg": "#1d2330", "muted": "#6b7280", "line": "#dde2ea"}
        stop(pg)
        errors.check()
    finally:
        context.close()


# [start, end] of the "Waves" chart's zoom in percent (null before it exists).
ZOOM_JS = """() => {
  const entries = [...window.micarray.tabs.handlers.values()];
  const view = entries.filter((e) => e.info.name === "Waves").at(-1)?.view;
  const zoom = view?.impl?.chart?.getOption().dataZoom?.[0];
  return zoom ? [zoom.start, zoom.end] : null;
}"""


def test_a_line_chart_zooms_pans_and_shows_all_again(page: Any) -> None:
    set_code(page, WAVES, "waves.py")
    execute(page)
    wait_drawn(page, live_tab(page, "Waves"), minimum=200)
    pane = page.locator("#tabpanes > .handler-pane:not([hidden]) canvas").first
    box = pane.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    assert page.evaluate(ZOOM_JS) == [0, 100]
    page.mouse.move(cx, cy)
    for _ in range(4):
        page.mouse.wheel(0, -400)  # the wheel zooms in where the pointer is
    page.wait_for_function(f"() => ({ZOOM_JS})()[1] - ({ZOOM_JS})()[0] < 80", timeout=WAIT_MS)
    start, end = page.evaluate(ZOOM_JS)
    assert 0 < start < end < 100, (start, end)
    page.mouse.down()
    page.mouse.move(cx + 150, cy, steps=5)  # dragging right shows earlier x values
    page.mouse.up()
    page.wait_for_function(f"(s) => ({ZOOM_JS})()[0] < s", arg=start, timeout=WAIT_MS)
    moved = page.evaluate(ZOOM_JS)
    assert abs((moved[1] - moved[0]) - (end - start)) < 0.5, (moved, start, end)  # panned, not zoomed
    page.mouse.dblclick(cx, cy)
    page.wait_for_function(f"() => ({ZOOM_JS})().join() === '0,100'", timeout=WAIT_MS)
    stop(page)


def test_a_chart_saves_as_png_and_its_data_as_csv(page: Any) -> None:
    set_code(page, FOUR_TABS, "four.py")
    execute(page)
    tab = live_tab(page, "One")
    tab.wait_for(timeout=WAIT_MS)
    wait_drawn(page, tab, minimum=20)
    pane = page.locator("#tabpanes > .handler-pane:not([hidden])")
    with page.expect_download() as info:
        pane.locator(".chart-png").click()
    png = Path(info.value.path()).read_bytes()
    assert info.value.suggested_filename == "One.png"
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    with page.expect_download() as info:
        pane.locator(".chart-csv").click()
    assert info.value.suggested_filename == "One.csv"
    assert Path(info.value.path()).read_text() == "message,series,n,y\n0,v,1,2\n"
    stop(page)


LAPTOP = """
import browserinterface as bi
bi.inform_browser = True
bi.start()
print("laptop up", flush=True)
bi.loop_callbacks()
"""


def test_a_laptop_run_stopped_from_the_page_says_stopped_and_shows_its_start(
    page: Any, device: Server, tmp_path: Path
) -> None:
    script = tmp_path / "laptop.py"
    script.write_text(LAPTOP)
    env = {**os.environ, "BI_DEVICE": device.device, "BI_TOKEN": device.token("laptop")}
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        page.wait_for_function(
            "[...document.querySelectorAll('#run-select option')]"
            ".some(o => /^laptop\\.py on .* · running · \\d/.test(o.textContent))",
            timeout=WAIT_MS,
        )
        page.select_option(
            "#run-select", label=page.locator("#run-select option", has_text="laptop.py").first.text_content()
        )
        page.click("#btn-stop")
        page.wait_for_function(
            "document.querySelector('#run-state').textContent === 'stopped'", timeout=WAIT_MS
        )
        assert page.text_content("#exit-status") == "stopped from the web app"
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
