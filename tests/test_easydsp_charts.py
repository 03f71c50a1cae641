"""easy-dsp's charts on a real device, in Debian's chromium (issue 12, items 1, 7, 8, 9).

Scripts in the style of the original examples run against a real
``appliance serve --source sim``; the signed-in page draws their tabs, and
the checks read what the page drew (store contents, pixel positions of the
polar lobes). The polar pictures are saved under docs/ to be looked at.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_login import login as browser_cookie
from tests.chromium import PageErrors
from tests.conftest_web import ROOT, Server, browser, device, login, page
from tests.test_web_browser import WAIT_MS, execute, set_code, stop, wait_drawn

__all__ = ["browser", "device", "page"]  # fixtures used by name

pytestmark = pytest.mark.browser
DOCS = ROOT / "docs"
_TOKENS = itertools.count(1)


@pytest.fixture
def terminal_script(device: Server, tmp_path: Path) -> Iterator[Any]:
    """``run(code)``: a script started from a terminal against the device (inform_browser set)."""
    token = device.token(f"easydsp-{next(_TOKENS)}")  # the device is shared by the module
    procs: list[subprocess.Popen[bytes]] = []

    def run(code: str, name: str = "original.py") -> subprocess.Popen[bytes]:
        path = tmp_path / name
        path.write_text("import browserinterface\nbrowserinterface.inform_browser = True\n" + code)
        env = {**os.environ, "BI_DEVICE": device.device, "BI_TOKEN": token}
        proc = subprocess.Popen([sys.executable, "-u", str(path)], env=env, cwd=tmp_path)
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def tab(pg: Any, name: str) -> Any:
    """The newest tab named exactly ``name``."""
    named = pg.locator(".tab-name", has_text=re.compile(f"^{re.escape(name)}$"))
    locator = pg.locator(".handler-tab", has=named).last
    locator.wait_for(timeout=WAIT_MS)
    return locator


def view_state(pg: Any, name: str, expression: str) -> Any:
    """Evaluate ``expression`` (on ``view``, the tab's HandlerView) for the newest tab named ``name``."""
    return pg.evaluate(
        f"""(name) => {{
          const all = [...window.micarray.tabs.handlers.values()];
          const found = all.filter((e) => e.info.name === name).at(-1);
          const view = found && found.view;
          return view ? ({expression}) : null;
        }}""",
        name,
    )


PEAK_JS = """(() => {
  const chart = view.impl.chart;
  const polar = chart.getModel().getComponent("polar").coordinateSystem;
  const data = chart.getOption().series[0].data;
  let best = data[0];
  for (const point of data) if (point[0] > best[0]) best = point;
  const [x, y] = chart.convertToPixel({ seriesIndex: 0 }, best);
  const axis = chart.getOption().angleAxis[0];
  return { angle: best[1], screen: (Math.atan2(polar.cy - y, x - polar.cx) * 180 / Math.PI + 360) % 360,
           startAngle: axis.startAngle, clockwise: axis.clockwise, values: view.impl.store.values[0].length };
})()"""


def angle_gap(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


# ---- 1. polar charts with N+1 values, in the original's orientation -------------------

ORIGINAL_POLAR = """
import numpy as np

num_angles = 60
doa = browserinterface.add_handler(name="Directions", type='base:polar:line',
    parameters={'title': 'Direction', 'series': ['Intensity'], 'numPoints': num_angles})
beam = browserinterface.add_handler("Beam pattern", 'base:polar:area',
    {'title': 'Beam pattern', 'series': ['Intensity'], 'legend': {'from': 0, 'to': 360, 'step': 10}})

def lobe(grid_deg, at_deg):
    gap = (grid_deg - at_deg + 180) % 360 - 180
    return 0.1 + 0.9 * np.exp(-gap ** 2 / 300.0)

values = lobe(np.arange(num_angles) * 360.0 / num_angles, 90.0).tolist()
values.append(values[0])        # "close" the circle, as the original examples do
doa.send_data([{'replace': values}])
pattern = lobe(np.arange(0, 360, 10), 0.0).tolist()
pattern.append(pattern[0])
beam.send_data([{'replace': pattern}])
browserinterface.start()
"""


def shot_path(name: str, tmp_path: Path) -> str:
    """docs/NAME with UPDATE_SCREENSHOT=1, else a scratch file: a test run leaves docs/ alone."""
    return str(DOCS / name if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / name)


def test_original_polar_scripts_draw_the_closed_circle(
    page: Any, terminal_script: Any, tmp_path: Path
) -> None:
    terminal_script(ORIGINAL_POLAR, "doa_original.py")
    for name, angles, peak_deg in (("Directions", 60, 90.0), ("Beam pattern", 36, 0.0)):
        assert wait_drawn(page, tab(page, name)) >= 50, name  # fails on a banner too
        state = view_state(page, name, PEAK_JS)
        assert state["values"] == angles, state
        # The original's orientation: 0 degrees at the top (north), angles growing clockwise,
        # so 90 degrees is drawn at 3 o'clock (screen angle 0) and 0 degrees at 12 o'clock.
        assert (state["startAngle"], state["clockwise"]) == (90, True), state
        assert angle_gap(state["angle"], peak_deg) < 1e-6, state
        assert angle_gap(state["screen"], (90 - peak_deg) % 360) < 3, state
        page.locator(f'[data-pane="{tab(page, name).get_attribute("data-tab")}"]').screenshot(
            path=shot_path(f"easydsp-polar-{angles}.png", tmp_path)
        )


def test_our_doa_example_draws_in_the_arrays_frame(page: Any, tmp_path: Path) -> None:
    code = (ROOT / "appliance" / "examples" / "direction_of_arrival.py").read_text()
    set_code(page, code, "direction_of_arrival.py")
    execute(page)
    name = "Direction of arrival"
    assert wait_drawn(page, tab(page, name)) >= 50
    state = view_state(page, name, PEAK_JS)
    # 0 degrees along +x (3 o'clock), counter-clockwise: the screen angle of the loudest
    # direction is its azimuth in the array's frame, the simulator's convention.
    assert (state["startAngle"], state["clockwise"]) == (0, False), state
    assert angle_gap(state["screen"], state["angle"]) < 3, state
    page.locator(f'[data-pane="{tab(page, name).get_attribute("data-tab")}"]').screenshot(
        path=shot_path("easydsp-doa-example.png", tmp_path)
    )
    stop(page)


# ---- 7. xLimitNb over the distinct x values of all series -------------------------------

PLACEHOLDERS_THEN_LIVE = """
import math

chart = browserinterface.add_handler("Live signal", 'base:graph:line',
    {'xName': 'block', 'xLimitNb': 20,
     'series': [{'name': 'live', 'color': '#ff0000'}, {'name': 'placeholder', 'color': '#0000ff'}]})
chart.send_data([{'x': 0, 'y': 0}, {'x': 0, 'y': 0}])     # placeholders, as the original examples sent
for i in range(1, 101):
    chart.send_data([{'x': i, 'y': math.sin(i / 4)}])
browserinterface.start()
"""


def test_xlimitnb_keeps_the_last_distinct_x_values(page: Any, terminal_script: Any) -> None:
    terminal_script(PLACEHOLDERS_THEN_LIVE, "xlimit.py")
    name = "Live signal"
    wait_drawn(page, tab(page, name))
    expression = "view.impl.store.series.map((s) => s.map((p) => p[0]))"
    deadline = time.monotonic() + WAIT_MS / 1000
    while (xs := view_state(page, name, expression)) and xs[0][-1:] != [100] and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert xs == [list(range(81, 101)), []], xs  # the placeholder at x=0 is gone from the axis
    extent = view_state(
        page, name, "view.impl.chart.getModel().getComponent('xAxis', 0).axis.scale.getExtent()"
    )
    assert extent[0] >= 81, extent


# ---- 8. one malformed series: the others are drawn, the problem shown once ---------------

ONE_BAD_SERIES = """
two = [{'name': 'good', 'color': '#ff0000'}, {'name': 'bad', 'color': '#0000ff'}]
chart = browserinterface.add_handler("Partly bad", 'base:graph:line', {'xName': 'n', 'series': two})
for i in range(30):
    second = {'x': i, 'y': 'oops'} if i == 10 else {'x': i, 'y': 5 + i % 3}
    chart.send_data([{'x': i, 'y': i % 4}, second])
polar = browserinterface.add_handler("Polar partly bad", 'base:polar:line',
    {'series': ['good', 'bad'], 'numPoints': 8})
polar.send_data([{'replace': [1, 2, 3, 4, 5, 6, 7, 8, 1]}, {'replace': 'oops'}])
browserinterface.start()
"""


def test_a_malformed_series_leaves_the_others_drawn(page: Any, terminal_script: Any) -> None:
    terminal_script(ONE_BAD_SERIES, "partly_bad.py")
    line = tab(page, "Partly bad")
    line.click()
    pane = page.locator(f'[data-pane="{line.get_attribute("data-tab")}"]')
    banner = pane.locator(".micarray-handler-error")
    banner.wait_for(state="visible", timeout=WAIT_MS)
    deadline = time.monotonic() + WAIT_MS / 1000
    while (
        view_state(page, "Partly bad", "view.impl.store.sizes()") != [30, 29] and time.monotonic() < deadline
    ):
        page.wait_for_timeout(50)
    assert view_state(page, "Partly bad", "view.impl.store.sizes()") == [30, 29]
    assert banner.locator("span").text_content() == (
        'bad data (base:graph:line): drew the other series; data[1].y is "oops"; expected a finite number'
    )
    assert view_state(page, "Partly bad", "view.stats().errors") == 1  # reported once
    polar = tab(page, "Polar partly bad")
    polar.click()
    polar_banner = page.locator(f'[data-pane="{polar.get_attribute("data-tab")}"] .micarray-handler-error')
    polar_banner.wait_for(state="visible", timeout=WAIT_MS)
    assert 'drew the other series; data[1].replace is "oops"; expected a list of numbers' in (
        polar_banner.text_content() or ""
    )
    assert view_state(page, "Polar partly bad", "view.impl.store.values.map((v) => v.length)") == [8, 0]


# ---- 9. custom handler types written for the original page ---------------------------------

ORIGINAL_HANDLER_FILE = r"""
// Written for easy-dsp's page (js/myHandlers.js), with plain DOM instead of jQuery.
function myDataHandler(html, parameters) {
  var list = document.createElement('ul');
  list.className = 'my-handler';
  html.appendChild(list);
  var head = document.createElement('li');
  head.textContent = 'parameters ' + JSON.stringify(parameters);
  list.appendChild(head);
  return {
    newData: function (data) {
      var item = document.createElement('li');
      item.textContent = 'data ' + JSON.stringify(data);
      list.appendChild(item);
    }
  };
}
dataHandlers.registerNewType('customtype', myDataHandler);
"""

CUSTOM_SCRIPT = """
mine = browserinterface.add_handler("Custom thing", 'customtype', {'param1': True, 'param2': 'hello'})
mine.send_data({'newData': {'i': 1}})
mine.send_data(['an', 'array', 'this', 'time'])
browserinterface.start()
"""


def http_status(url: str, cookie: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as err:
        with err:
            return err.code


def test_original_custom_handler_file_on_the_device_loads_with_the_page(
    browser: Any, device: Server, terminal_script: Any
) -> None:
    folder = device.data_dir / "handlers"
    folder.mkdir(exist_ok=True)
    (folder / "myHandlers.js").write_text(ORIGINAL_HANDLER_FILE)
    # Only the signed-in page gets them, and only names that are plain file names.
    assert http_status(f"{device.url}/handlers/myHandlers.js") == 403
    assert http_status(f"{device.url}/api/v1/handler-files") == 403
    cookie = browser_cookie(device.port, device.data_dir)
    assert http_status(f"{device.url}/api/v1/handler-files", cookie) == 200
    assert http_status(f"{device.url}/handlers/..%2Fsecret.js", cookie) == 400
    assert http_status(f"{device.url}/handlers/missing.js", cookie) == 404
    terminal_script(CUSTOM_SCRIPT, "custom.py")
    # The device's own security policy, not bypassed: the file must load under it.
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    pg = context.new_page()
    errors = PageErrors(pg)
    try:
        login(pg, device.url)
        custom = tab(pg, "Custom thing")
        custom.click()
        items = pg.locator(f'[data-pane="{custom.get_attribute("data-tab")}"] ul.my-handler li')
        items.nth(2).wait_for(timeout=WAIT_MS)
        assert items.all_text_contents() == [
            'parameters {"param1":true,"param2":"hello"}',
            'data {"newData":{"i":1}}',
            'data ["an","array","this","time"]',
        ]
        assert pg.evaluate("typeof window.dataHandlers.registerNewType") == "function"
        errors.check()
    finally:
        context.close()
        (folder / "myHandlers.js").unlink()
