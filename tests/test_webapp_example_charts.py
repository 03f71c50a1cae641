"""The device's examples, run for real against the simulator in Debian's chromium:
each chart's picture agrees with what the simulator renders and with the units the
example computes in (bars grow up from the floor, colour scales carry their numbers,
the heatmap's x axis is in Hz).

The simulator's truth (``appliance.capture.sources.simulator``): one source of band
noise from 200 Hz to 4 kHz, RMS 3000 and peaks under 24000 (int16), and sensor noise
of RMS 60 on every channel.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import pytest

from appliance.capture.sources import simulator
from appliance.capture.sources.arrays import DEFAULT_PRESET, get_preset
from tests.conftest_web import ROOT, browser, device, page
from tests.test_web_browser import WAIT_MS, execute, stop, wait_drawn

__all__ = ["browser", "device", "page"]  # fixtures used by name

pytestmark = pytest.mark.browser
DOCS = ROOT / "docs"
BAND_LOW_HZ, BAND_HIGH_HZ = simulator.BAND_HZ


def run_example(pg: Any, example: str, tab_prefix: str) -> Any:
    """Load an example from the list, Execute it, and wait for its tab to draw; returns the tab."""
    while pg.locator(".handler-tab .tab-close").count():
        pg.locator(".handler-tab .tab-close").first.click()
    pg.select_option("#examples", example)
    pg.wait_for_function("(n) => document.querySelector('#script-name').value === n", arg=example)
    execute(pg)
    named = pg.locator(".tab-name", has_text=re.compile(f"^{re.escape(tab_prefix)}"))
    tab = pg.locator(".handler-tab", has=named).last
    tab.wait_for(timeout=WAIT_MS)
    wait_drawn(pg, tab, minimum=50)
    return tab


def in_view(pg: Any, prefix: str, expression: str) -> Any:
    """Evaluate ``expression`` on ``view``, the HandlerView of the newest tab named ``prefix``..."""
    return pg.evaluate(
        f"""(prefix) => {{
          const all = [...window.micarray.tabs.handlers.values()];
          const view = all.filter((e) => e.info.name.startsWith(prefix)).at(-1)?.view;
          return view ? ({expression}) : null;
        }}""",
        prefix,
    )


def screenshot(pg: Any, tab: Any, name: str, tmp_path: Path) -> None:
    """The tab's picture: docs/NAME with UPDATE_SCREENSHOT=1 (as for the other screenshots), else scratch."""
    path = DOCS / name if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / name
    pg.locator(f'[data-pane="{tab.get_attribute("data-tab")}"]').screenshot(path=str(path))


# Every bar's base and top on screen, next to the pixels of the floor and of its value.
BARS_JS = """(() => {
  const chart = view.impl.chart;
  const data = chart.getModel().getSeriesByIndex(0).getData();
  const floor = chart.convertToPixel({ yAxisIndex: 0 }, view.impl.min);
  const bars = [];
  for (let i = 0; i < data.count(); i++) {
    const { y, height } = data.getItemLayout(i);
    const value = data.get("y", i);
    const valuePixel = chart.convertToPixel({ yAxisIndex: 0 }, value);
    bars.push({ value, base: y, top: y + height, valuePixel });
  }
  return { floor, bars };
})()"""


def test_the_level_meter_grows_up_from_the_floor(page: Any, tmp_path: Path) -> None:
    tab = run_example(page, "level_meter.py", "Levels")
    state = in_view(page, "Levels", BARS_JS)
    bars = state["bars"]
    # The simulator's truth: the microphones hear the source (peaks under 24000, far
    # above the sensor noise); the loopback channels only the noise (peaks near 4 x 60).
    preset = get_preset(DEFAULT_PRESET)
    assert len(bars) == preset.channels, bars
    top_db = 20 * math.log10(simulator.PEAK / 32768)
    noise_db = 20 * math.log10(6 * simulator.NOISE_RMS / 32768)
    for channel, bar in enumerate(bars):
        if channel in preset.mic_channels:
            assert noise_db + 10 < bar["value"] <= top_db + 0.5, (channel, bars)
        else:
            assert bar["value"] < noise_db, (channel, bars)
        assert abs(bar["base"] - state["floor"]) < 1.5, (bar, state["floor"])  # from the floor ...
        assert abs(bar["top"] - bar["valuePixel"]) < 1.5, bar  # ... up to the value
        assert bar["top"] < bar["base"], bar  # upwards on screen
    # Louder = taller.
    ordered = sorted(bars, key=lambda b: b["value"])
    heights = [b["base"] - b["top"] for b in ordered]
    assert heights == sorted(heights), ordered
    screenshot(page, tab, "example-level-meter.png", tmp_path)
    stop(page)


# The colour scale's words, the x axis, and the brightness of the painted picture at
# frequencies given in Hz (through the axis, so the raster and the axis must agree).
RASTER_JS = """((hzs) => {
  const chart = view.impl.chart;
  const option = chart.getOption();
  const x = chart.getModel().getComponent("xAxis", 0);
  const y = chart.getModel().getComponent("yAxis", 0);
  const screen = view.impl.screen;
  const box = screen.getBoundingClientRect();
  const host = chart.getDom().getBoundingClientRect();
  const ctx = screen.getContext("2d");
  const brightness = (hz, axis) => {
    const ratio = screen.width / box.width;
    let px;
    let py;
    if (axis === "x") {
      px = (chart.convertToPixel({ xAxisIndex: 0 }, hz) - (box.left - host.left)) * ratio;
      py = screen.height / 2;
    } else {
      px = screen.width - 2;
      py = (chart.convertToPixel({ yAxisIndex: 0 }, hz) - (box.top - host.top)) * ratio;
    }
    const [r, g, b] = ctx.getImageData(Math.round(px), Math.round(py), 1, 1).data;
    return r + g + b;
  };
  return {
    text: option.visualMap[0].text,
    xType: x.get("type"), xMin: x.get("min"), xMax: x.get("max"), xName: x.get("name"),
    yName: y.get("name"), yMax: y.get("max"),
    bright: hzs.map(([hz, axis]) => brightness(hz, axis)),
  };
})"""


def test_the_heatmap_is_in_hz_with_a_numbered_colour_scale(page: Any, tmp_path: Path) -> None:
    tab = run_example(page, "heatmap.py", "Channel x band energy")
    rate = int(re.search(r"(\d+) Hz", tab.text_content() or "").group(1))  # type: ignore[union-attr]
    probes = [[1000, "x"], [2000, "x"], [0.45 * rate, "x"]]
    state = in_view(page, "Channel x band energy", f"{RASTER_JS}({probes})")
    assert state["text"] == ["-20 dBFS", "-110 dBFS"], state
    axis = (state["xType"], state["xMin"], state["xMax"], state["xName"])
    assert axis == ("log", 100, rate / 2, "Hz"), state
    assert state["yName"] == "channel", state
    # Inside the source's band (200 Hz to 4 kHz) the picture is bright; near half the
    # rate only sensor noise is left, so it is dark there.
    assert BAND_LOW_HZ < 1000 < 2000 < BAND_HIGH_HZ < 0.45 * rate
    in_band, in_band2, above = state["bright"]
    assert min(in_band, in_band2) > above + 150, state
    screenshot(page, tab, "example-heatmap.png", tmp_path)
    stop(page)


def test_the_spectrogram_scale_has_its_numbers_and_hz(page: Any, tmp_path: Path) -> None:
    tab = run_example(page, "spectrogram.py", "Spectrogram")
    top = in_view(page, "Spectrogram", "view.impl.chart.getModel().getComponent('yAxis', 0).get('max')")
    probes = [[1000, "y"], [min(top * 0.95, 7500), "y"]]
    page.wait_for_function(
        "(prefix) => [...window.micarray.tabs.handlers.values()]"
        ".some((e) => e.info.name.startsWith(prefix) && e.view.impl.ring.filled >= 20)",
        arg="Spectrogram",
        timeout=WAIT_MS,
    )
    state = in_view(page, "Spectrogram", f"{RASTER_JS}({probes})")
    assert state["text"] == ["-10 dBFS", "-110 dBFS"], state
    assert state["yName"] == "Hz" and state["yMax"] == top, state
    assert top * 0.95 > BAND_HIGH_HZ, top
    in_band, above = state["bright"]
    assert in_band > above + 150, state
    screenshot(page, tab, "example-spectrogram.png", tmp_path)
    stop(page)
