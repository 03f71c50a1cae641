"""Chart tabs: retained data is bounded, ownership is enforced, finished tabs are replaced."""

from __future__ import annotations

import json
from typing import Any

import pytest

from appliance.sessions import handlers as H
from appliance.sessions.handler_params import ParameterError
from appliance.sessions.handlers import HandlerError, HandlerRegistry, Owner

RUN = Owner("run", "r1", "doa.py", "device", run="r1")
LAPTOP = Owner("script", "s7", "mine.py", "laptop")


def registry() -> tuple[HandlerRegistry, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []

    def notify(msg: dict[str, Any] | str) -> None:
        # handler_data arrives as its JSON frame, encoded once for every browser.
        events.append(json.loads(msg) if isinstance(msg, str) else msg)

    return HandlerRegistry(notify), events


def test_history_is_bounded_and_keeps_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(H, "HISTORY_MESSAGES", 5)
    reg, events = registry()
    tab = reg.add("Level", "base:graph:line", {"series": ["a"]}, RUN, visible=True)
    for i in range(12):
        reg.data(tab.id, [{"x": i, "y": 0}], "r1")
    [shown] = reg.visible()
    assert [d[0]["x"] for d in shown["history"]] == [7, 8, 9, 10, 11]
    assert [e["type"] for e in events].count("handler_data") == 12


def test_history_is_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(H, "HISTORY_BYTES", 1000)
    reg, _ = registry()
    tab = reg.add("Heat", "base:heatmap", {}, RUN, visible=True)
    for _ in range(10):
        reg.data(tab.id, [[0.5] * 60], "r1")
    assert 0 < tab.history_bytes <= 1000


def test_only_the_owner_may_send_and_bad_data_is_refused() -> None:
    reg, _ = registry()
    tab = reg.add("Level", "base:graph:line", None, RUN, visible=True)
    with pytest.raises(HandlerError, match="does not exist or is not yours"):
        reg.data(tab.id, 1, "s7")
    with pytest.raises(HandlerError, match="without NaN"):
        reg.data(tab.id, float("nan"), "r1")
    with pytest.raises(HandlerError, match="parameters must be an object"):
        reg.add("x", "base:heatmap", [1], RUN, visible=True)


def test_invisible_tabs_tell_browsers_nothing() -> None:
    reg, events = registry()
    tab = reg.add("Quiet", "base:graph:bar", {}, LAPTOP, visible=False)
    reg.data(tab.id, [{"x": 1, "y": 1}], "s7")
    assert events == [] and reg.visible() == []


def test_a_new_run_replaces_its_finished_tab_of_the_same_name() -> None:
    reg, events = registry()
    old = reg.add("Level", "base:graph:line", {}, RUN, visible=True)
    reg.end_owner("r1")
    assert reg.visible()[0]["ended"]
    new = reg.add(
        "Level", "base:graph:line", {}, Owner("run", "r2", "doa.py", "device", run="r2"), visible=True
    )
    assert [h["id"] for h in reg.visible()] == [new.id]
    assert {"type": "handler_removed", "handler": old.id} in events


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"numPoints": 0}, "numPoints must be a whole number from 1 to 100000, not 0"),
        ({"numPoints": 2.5}, "numPoints must be a whole number from 1 to 100000, not 2.5"),
        ({"numPoints": True}, "numPoints must be a whole number from 1 to 100000, not True"),
        ({"numPoints": 10**9}, "numPoints must be a whole number from 1 to 100000, not 1000000000"),
        ({"legend": [0, 360, 10]}, "legend must be {from, to, step} in degrees, not [0, 360, 10]"),
        ({"legend": {"from": 10, "to": 0, "step": 5}}, "does not give angles; expected from < to and a step"),
        ({"legend": {"from": 0, "to": 360, "step": 0.001}}, "gives 360000 angles; at most 100000"),
        ({"orientation": "north"}, "orientation must be degrees (counter-clockwise from 3 o'clock) or"),
        ({"rmax": "big"}, "rmax must be a number, not 'big'"),
    ],
)
def test_polar_parameters_that_cannot_work_are_refused_at_add_handler(
    parameters: dict[str, Any], message: str
) -> None:
    reg, events = registry()
    with pytest.raises(ParameterError) as caught:
        reg.add("DOA", "base:polar:line", {"series": ["p"], **parameters}, RUN, visible=True)
    assert message in str(caught.value)
    assert events == [] and reg.visible() == []


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"xRange": [100]}, "xRange must be [left, right] with left < right"),
        ({"xRange": [8000, 100]}, "xRange must be [left, right] with left < right"),
        ({"xRange": [0, 8000], "xLog": True}, "left above 0 for xLog, not [0, 8000]"),
        ({"xRange": ["a", 2]}, "not ['a', 2]"),
        ({"unit": "decibels relative to full scale"}, "unit must be a short text such as 'dB'"),
    ],
)
def test_heatmap_axes_that_cannot_work_are_refused_at_add_handler(
    parameters: dict[str, Any], message: str
) -> None:
    reg, events = registry()
    with pytest.raises(ParameterError) as caught:
        reg.add("Bands", "base:heatmap", parameters, RUN, visible=True)
    assert message in str(caught.value)
    assert events == [] and reg.visible() == []


def test_heatmap_axes_in_hz_are_accepted() -> None:
    reg, _ = registry()
    parameters = {"xName": "Hz", "xRange": [100, 8000.0], "xLog": True, "unit": "dBFS", "yName": "channel"}
    reg.add("Bands", "base:heatmap", parameters, RUN, visible=True)
    reg.add("Spec", "base:spectrogram", {"height": 4, "unit": "dBFS"}, RUN, visible=True)
    assert len(reg.visible()) == 2


def test_easy_dsp_polar_parameters_are_accepted() -> None:
    reg, _ = registry()
    for parameters in (
        {"title": "Direction", "series": ["Intensity"], "numPoints": 60},
        {"series": ["Intensity"], "legend": {"from": 0, "to": 360, "step": 10}, "rmin": 0, "rmax": 1},
        {"series": ["s"], "numPoints": 72, "orientation": 0, "clockwise": False},
        {"series": ["s"], "orientation": "counterclockwise"},
    ):
        reg.add(f"p{len(reg.visible())}", "base:polar:area", parameters, RUN, visible=True)
    assert len(reg.visible()) == 4
