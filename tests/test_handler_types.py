"""Every handler type with every data format, drawn by the real bundle in Debian's chromium.

The checks read the canvases' pixels (tests/chart_harness.py), so a chart that
"exists" but drew nothing fails; any console error or uncaught exception fails.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import chart_harness
from tests.chart_harness import CUSTOM_TYPE, FRONTEND, ROOT, Harness

# The harness's fixtures, used here by name.
browser = chart_harness.browser
server = chart_harness.server
harness_dir = chart_harness.harness_dir
shared_harness = chart_harness.shared_harness
harness = chart_harness.harness

pytestmark = pytest.mark.browser

RED, BLUE, GREEN = "#ff0000", "#0000ff", "#00a000"
FIRST_PALETTE = "#5470c6"  # ECharts' colour for a series without one of its own
HEAT_LOW, HEAT_HIGH = "#000004", "#fcfdbf"
TWO_SERIES = [{"name": "left", "color": RED}, {"name": "right", "color": BLUE}]
GRAPH_TYPES = ["base:graph:line", "base:graph:area", "base:graph:bar", "base:graph:plot"]
POLAR_TYPES = ["base:polar:line", "base:polar:area"]


# ---- x/y charts ----------------------------------------------------------------


def wave_y(i: int, k: int) -> float:
    """A smooth, distinct curve per series."""
    return round(5 + 3 * math.sin(i / 3 + k) + 4 * k, 3)


XS = list(range(30))
GRAPH_FORMATS: dict[str, list[Any]] = {
    "append one point per series": [[{"x": i, "y": wave_y(i, 0)}, {"x": i, "y": wave_y(i, 1)}] for i in XS],
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


# ---- polar charts --------------------------------------------------------------

ANGLES = 36


def lobe(i: int, k: int) -> float:
    """A direction-of-arrival-like lobe per series."""
    return round(5 + 3 * math.cos(math.radians(10 * i) - k * 2), 3)


POLAR_FORMATS: dict[str, list[Any]] = {
    "append one value per series": [[{"append": lobe(i, 0)}, {"append": lobe(i, 1)}] for i in range(ANGLES)],
    "replace per series": [
        [{"replace": [lobe(i, k) for i in range(ANGLES)]} for k in (0, 1)],
    ],
}
POLAR_SCALES: dict[str, dict[str, Any]] = {
    "legend": {"legend": {"from": 0, "to": 360, "step": 10}},
    "numPoints": {"numPoints": ANGLES},
}


@pytest.mark.parametrize("scale", list(POLAR_SCALES))
@pytest.mark.parametrize("data_format", list(POLAR_FORMATS))
@pytest.mark.parametrize("handler_type", POLAR_TYPES)
def test_polar_draws_each_format(harness: Harness, handler_type: str, data_format: str, scale: str) -> None:
    parameters = {"title": "direction", "series": TWO_SERIES, "rmin": 0, "rmax": 10} | POLAR_SCALES[scale]
    harness.draw("p", handler_type, parameters, POLAR_FORMATS[data_format])
    assert harness.banner("p") is None
    red, blue = harness.pixels("p", [RED, BLUE])["near"]
    assert red > 40 and blue > 40, f"red {red}, blue {blue} pixels"
    assert harness.js("() => harness.view('p').impl.store.values.map((v) => v.length)") == [ANGLES, ANGLES]
    assert harness.js("() => harness.axisExtent('p', 'radiusAxis')") == [0, 10]
    harness.assert_clean()


def test_polar_append_keeps_one_value_per_angle(harness: Harness) -> None:
    messages = [[{"append": i}] for i in range(100)]
    harness.draw(
        "p", "base:polar:line", {"series": ["s"], "legend": {"from": 0, "to": 180, "step": 18}}, messages
    )
    values = harness.js("() => harness.view('p').impl.store.values[0]")
    assert values == list(range(90, 100))
    assert harness.js("() => harness.view('p').impl.store.angle(9)") == 162
    harness.assert_clean()


def test_polar_orientation_and_direction(harness: Harness) -> None:
    parameters = {"series": ["s"], "numPoints": 8, "orientation": 0, "clockwise": False}
    harness.draw("p", "base:polar:area", parameters, [[{"replace": [1, 2, 3, 4, 5, 6, 7, 8]}]])
    option = harness.js("() => harness.view('p').impl.chart.getOption().angleAxis[0]")
    assert option["startAngle"] == 0 and option["clockwise"] is False
    harness.assert_clean()


def test_polar_replace_longer_than_the_legend_is_refused(harness: Harness) -> None:
    # N + 1 values close the circle (easy-dsp's scripts send them); N + 2 are refused.
    harness.draw(
        "p", "base:polar:line", {"series": ["s"], "numPoints": 4}, [[{"replace": [1, 2, 3, 4, 5, 6]}]]
    )
    assert harness.banner("p") == (
        "bad data (base:polar:line): data[0].replace has 6 values but the chart has 4 angles"
        " (5 closes the circle: the last value is at one full turn)"
    )
    harness.assert_clean()


# ---- heatmap and spectrogram ---------------------------------------------------


def test_heatmap_draws_rows_on_the_range(harness: Harness) -> None:
    rows = [[(r * c) / (19 * 29) for c in range(30)] for r in range(20)]
    harness.draw("h", "base:heatmap", {"min": 0, "max": 1}, [rows])
    assert harness.banner("h") is None
    low, high = harness.pixels("h", [HEAT_LOW, HEAT_HIGH])["near"]
    assert low > 300 and high > 300, f"dark {low}, bright {high} pixels"
    # The same rows on a range twice as wide reach only half way: no bright
    # cells, only the top of the colour scale.
    harness.draw("wide", "base:heatmap", {"min": 0, "max": 2}, [rows])
    assert harness.pixels("wide", [HEAT_HIGH])["near"][0] < high / 4
    harness.assert_clean()


def test_heatmap_min_zero_is_honoured(harness: Harness) -> None:
    rows = [[5, 6], [7, 8]]
    harness.draw("h", "base:heatmap", {"min": 0, "max": 8}, [rows])
    option = harness.js("() => harness.view('h').impl.chart.getOption().visualMap[0]")
    assert (option["min"], option["max"]) == (0, 8)
    harness.assert_clean()


def test_heatmap_ragged_rows_are_refused(harness: Harness) -> None:
    harness.draw("h", "base:heatmap", {}, [[[1, 2, 3], [4, 5]]])
    assert harness.banner("h") == (
        "bad data (base:heatmap): row 1 has 2 values but row 0 has 3; rows must be the same length"
    )
    harness.assert_clean()


SPEC = {"width": 100, "height": 64, "min": 0, "max": 1, "delta_freq": 125}


def spectrogram_rgb(harness: Harness, fraction: float) -> list[int]:
    """The colour at `fraction` of the plot's width, half-way up."""
    x = 64 + fraction * (640 - 64 - 96)
    y = 14 + (360 - 14 - 40) / 2
    rgba: list[int] = harness.js("([x, y]) => harness.pixelAt('s', x, y)", [x, y])
    return rgba[:3]


def is_near(rgb: list[int], hex_colour: str, tolerance: int = 40) -> bool:
    target = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return sum(abs(a - b) for a, b in zip(rgb, target, strict=True)) <= tolerance


def test_spectrogram_scrolls_new_columns_in_from_the_right(harness: Harness) -> None:
    bright = [[1.0] * 64 for _ in range(50)]
    harness.draw("s", "base:spectrogram", SPEC, bright)
    assert is_near(spectrogram_rgb(harness, 0.75), HEAT_HIGH)
    assert not is_near(spectrogram_rgb(harness, 0.25), HEAT_HIGH), "the left half is still empty"
    harness.feed("s", [[0.0] * 64 for _ in range(50)])
    assert is_near(spectrogram_rgb(harness, 0.25), HEAT_HIGH), "the bright columns moved left"
    assert is_near(spectrogram_rgb(harness, 0.75), HEAT_LOW)
    harness.feed("s", [[[0.5] * 64 for _ in range(30)]])  # several columns in one message
    ring = harness.js("() => { const r = harness.view('s').impl.ring; return [r.filled, r.total]; }")
    assert ring == [100, 130]
    assert harness.js("() => harness.axisExtent('s')") == [0, 64 * 125]
    harness.assert_clean()


def test_spectrogram_column_of_the_wrong_height_is_refused(harness: Harness) -> None:
    harness.draw("s", "base:spectrogram", SPEC, [[0.5] * 10])
    assert harness.banner("s") == (
        "bad data (base:spectrogram): data has 10 values; this spectrogram's height is 64 bins"
    )
    harness.assert_clean()


def test_spectrogram_without_height_says_so(harness: Harness) -> None:
    harness.draw("s", "base:spectrogram", {"width": 10}, [[1, 2]])
    assert harness.banner("s") == (
        "cannot create this chart (base:spectrogram): parameter height (frequency bins per column) is missing"
    )
    harness.assert_clean()


# ---- robustness: bad data, unknown and custom types, floods --------------------


def test_bad_data_is_shown_and_good_data_still_draws(harness: Harness) -> None:
    harness.draw("g", "base:graph:line", {"series": TWO_SERIES}, [[{"x": 0, "y": "high"}]])
    assert harness.banner("g") == (
        'bad data (base:graph:line): data[0].y is "high"; expected a finite number'
    )
    harness.feed("g", GRAPH_FORMATS["x and y columns"])
    assert harness.pixels("g", [RED])["near"][0] > 40
    stats = harness.js("() => harness.stats('g')")
    assert stats["errors"] == 1 and stats["received"] == 2
    harness.assert_clean()


def test_more_entries_than_series_is_refused(harness: Harness) -> None:
    harness.draw("g", "base:graph:bar", {"series": ["a"]}, [[{"x": 1, "y": 1}, {"x": 1, "y": 2}]])
    assert harness.banner("g") == "bad data (base:graph:bar): data has 2 entries but the chart has 1 series"
    harness.assert_clean()


def test_unknown_type_names_the_known_ones_and_draws_once_registered(harness: Harness) -> None:
    harness.draw("u", "demo:late", {"prefix": "late "}, [1, 2])
    banner = harness.banner("u")
    assert banner is not None
    assert banner.startswith(
        'waiting for this type (demo:late): unknown handler type "demo:late"; known types: '
    )
    assert "base:spectrogram" in banner
    assert banner.endswith("Register it (docs/handlers.md) and this tab draws.")
    harness.page.evaluate(CUSTOM_TYPE.replace("demo:text", "demo:late"))
    harness.js("() => harness.frames(2)")
    assert harness.banner("u") is None
    assert harness.js("() => [...document.querySelectorAll('#u li')].map((li) => li.textContent)") == [
        "late 1",
        "late 2",
    ]
    harness.assert_clean()


def test_bad_parameter_is_named(harness: Harness) -> None:
    harness.draw("g", "base:graph:line", {"series": ["a"], "xLimitNb": 0}, [])
    assert harness.banner("g") == (
        "cannot create this chart (base:graph:line): parameter xLimitNb is 0; "
        "expected a whole number of at least 1"
    )
    harness.assert_clean()


def test_custom_type_registered_from_a_pasted_script(harness: Harness) -> None:
    harness.page.evaluate(CUSTOM_TYPE)  # as typed into the browser's console
    assert "demo:text" in harness.js("() => window.micarray.handlerTypes()")
    harness.draw("c", "demo:text", {"prefix": "got "}, [{"a": 1}, [2, 3], "boom"])
    assert harness.js(
        "() => [...document.querySelectorAll('#demo-list li')].map((li) => li.textContent)"
    ) == [
        'got {"a":1}',
        "got [2,3]",
    ]
    assert harness.banner("c") == "bad data (demo:text): demo cannot show boom"
    harness.assert_clean()


def test_custom_type_loaded_from_a_file_on_the_device(harness: Harness) -> None:
    added = harness.js("() => window.micarray.loadHandlerTypes('demo-type.js')")
    assert added == ["demo:file"]
    harness.draw("c", "demo:file", {"prefix": "#"}, [1])
    assert harness.js("() => document.querySelector('#demo-list li').textContent") == "#1"
    error = harness.js(
        """async () => {
            try { await window.micarray.loadHandlerTypes('https://example.invalid/x.js'); }
            catch (e) { return e.message; }
        }"""
    )
    assert error == (
        "handler types load only from this device; https://example.invalid/x.js is on another origin"
    )
    harness.assert_clean()


def test_tooltip_obeys_the_security_policy(harness: Harness) -> None:
    harness.draw("g", "base:graph:line", {"series": TWO_SERIES}, GRAPH_FORMATS["x and y columns"])
    before = harness.pixels("g")["painted"]
    box = harness.page.locator("#g").bounding_box()
    assert box is not None
    harness.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    # The tooltip is drawn on the canvas (an HTML one would need inline styles).
    harness.page.wait_for_function(f"() => harness.pixels('g').painted > {before} + 500")
    harness.assert_clean()


def test_flood_is_coalesced_into_one_frame(harness: Harness) -> None:
    harness.js("() => harness.create('g', 'base:graph:line', {series: ['a'], xLimitNb: 100})")
    harness.js("() => harness.frames(2)")  # the empty chart (axes) is drawn first
    drawn_empty = harness.js("() => harness.stats('g').drawn")
    harness.js("() => { for (let i = 0; i < 500; i++) harness.feed('g', [[{x: i, y: i % 10}]]); }")
    harness.js("() => harness.frames(2)")
    stats = harness.js("() => harness.stats('g')")
    assert stats["received"] == 500
    assert stats["coalesced"] == 499
    assert stats["drawn"] == drawn_empty + 1
    assert harness.js("() => harness.chartTotals().coalesced") >= 499
    harness.assert_clean()


def test_hidden_tab_keeps_data_drops_the_oldest_and_draws_when_shown(harness: Harness) -> None:
    limit = 5000  # MAX_PENDING in appliance/web/frontend/src/charts/view.js
    harness.js(
        "() => harness.create('g', 'base:graph:line', "
        "{series: [{name: 'a', color: '#ff0000'}]}, {hidden: true})"
    )
    harness.js("() => harness.frames(2)")
    # A hidden chart asks for no animation frames: each one makes the page draw a frame.
    harness.js(
        "() => { window.__frames = 0; const raf = window.requestAnimationFrame.bind(window);"
        " window.requestAnimationFrame = (fn) => { window.__frames++; return raf(fn); }; }"
    )
    harness.js(
        "(n) => { for (let i = 0; i < n; i++) harness.feed('g', [[{x: i, y: i % 10}]]); }", limit + 1000
    )
    # It takes its data in on a timer instead (HIDDEN_INGEST_MS).
    harness.page.wait_for_function(f"() => harness.view('g').impl.sizes()[0] === {limit}", polling=100)
    assert harness.js("() => window.__frames") == 0
    stats = harness.js("() => harness.stats('g')")
    assert stats["drawn"] == 0 and stats["dropped"] == 1000
    assert harness.js("() => harness.view('g').impl.sizes()") == [limit]
    harness.js("() => harness.show('g')")
    harness.page.wait_for_function("() => harness.stats('g').drawn === 1")
    assert harness.pixels("g", [RED])["near"][0] > 40
    harness.assert_clean()


def test_destroy_removes_the_view(harness: Harness) -> None:
    harness.draw("g", "base:polar:line", {"numPoints": 4}, [[{"replace": [1, 2, 3, 4]}]])
    harness.js("() => { const v = harness.view('g'); v.destroy(); v.update([{append: 1}]); }")
    harness.js("() => harness.frames(2)")
    assert harness.js("() => document.querySelectorAll('#g .micarray-handler').length") == 0
    harness.assert_clean()


GALLERY: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("base:graph:line", {"xName": "time", "series": TWO_SERIES}, GRAPH_FORMATS["x and y columns"]),
    ("base:graph:area", {"xName": "time", "series": TWO_SERIES}, GRAPH_FORMATS["add per series"]),
    ("base:graph:bar", {"xName": "band", "series": TWO_SERIES, "min": 0}, GRAPH_FORMATS["x and y columns"]),
    ("base:graph:plot", {"xName": "time", "series": TWO_SERIES},
     GRAPH_FORMATS["append one point per series"]),
    ("base:polar:line", {"title": "direction", "series": TWO_SERIES, "numPoints": ANGLES},
     POLAR_FORMATS["replace per series"]),
    ("base:polar:area", {"title": "direction", "series": TWO_SERIES, **POLAR_SCALES["legend"]},
     POLAR_FORMATS["append one value per series"]),
    ("base:heatmap", {"min": 0, "max": 1},
     [[[(math.sin(r / 4) * math.cos(c / 5) + 1) / 2 for c in range(40)] for r in range(24)]]),
    ("base:spectrogram", {"width": 120, "height": 64, "min": -1, "max": 1, "delta_freq": 125},
     [[math.sin(b / 6 + i / 9) * math.cos(i / 23) for b in range(64)] for i in range(120)]),
]  # fmt: skip


def test_every_type_side_by_side(harness: Harness, tmp_path: Path) -> None:
    """All types on one page draw; the picture is docs/handler-types.png (UPDATE_DOCS=1 refreshes it)."""
    harness.js("() => { document.body.style.cssText = 'margin:0;display:flex;flex-wrap:wrap;'; }")
    for index, (handler_type, parameters, messages) in enumerate(GALLERY):
        harness.draw(f"v{index}", handler_type, parameters, messages, width=440, height=260)
    for index, (handler_type, _, _) in enumerate(GALLERY):
        assert harness.banner(f"v{index}") is None
        assert harness.pixels(f"v{index}")["painted"] > 5000, handler_type
    harness.page.set_viewport_size({"width": 1320, "height": 780})
    harness.js("() => harness.frames(3)")
    shot = tmp_path / "handler-types.png"
    harness.page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1320, "height": 780})
    if os.environ.get("UPDATE_DOCS") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "handler-types.png")
    harness.page.set_viewport_size({"width": 900, "height": 700})
    harness.js("() => { document.body.style.cssText = ''; }")
    harness.assert_clean()


def test_pure_logic_passes_nodes_test_runner() -> None:
    """The data models, frame header and WAV writer under node --test (appliance/web/frontend/test/unit)."""
    result = subprocess.run(
        ["node", "--test", "test/unit/"],
        cwd=FRONTEND,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
    # A runner that found no test passes too: that must not count as green.
    tests = re.search(r"^# tests (\d+)$", result.stdout, re.M)
    assert tests is not None and int(tests.group(1)) >= 10, result.stdout[-1000:]


def test_a_single_point_is_visible(harness: Harness) -> None:
    harness.draw("g", "base:graph:line", {"series": [{"name": "a", "color": RED}]}, [[{"x": 1, "y": 1}]])
    assert harness.pixels("g", [RED])["near"][0] > 10
    harness.assert_clean()


def test_raster_readout_names_the_value_under_the_pointer(harness: Harness) -> None:
    harness.draw("h", "base:heatmap", {"min": 0, "max": 9}, [[[0, 1, 2], [3, 4, 5]]])
    harness.draw("s", "base:spectrogram", {"width": 4, "height": 2, "delta_freq": 100}, [[1, 2], [3, 4]])
    heat = harness.js("() => harness.view('h').impl.describeCell(2, 1)")
    assert heat == "row 1, column 2: 5"
    # The newest column is at the right (x 3), its top bin (y 0) is bin 1.
    assert harness.js("() => harness.view('s').impl.describeCell(3, 0)") == "100 Hz, newest column: 4"
    assert harness.js("() => harness.view('s').impl.describeCell(2, 1)") == "0 Hz, 1 column ago: 1"
    assert harness.js("() => harness.view('s').impl.describeCell(0, 1)") is None  # not filled yet
    box = harness.page.locator("#h").bounding_box()
    assert box is not None
    harness.page.mouse.move(box["x"] + 64 + 5, box["y"] + 14 + 5)  # inside row 0, column 0
    harness.page.wait_for_function(
        "() => document.querySelector('#h .micarray-raster-readout').textContent === 'row 0, column 0: 0'"
    )
    harness.assert_clean()
