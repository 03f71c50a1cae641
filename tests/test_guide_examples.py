"""Each example of the browserinterface guide, as a separate process against a real device."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.guide import Script, guide_examples
from tests.server import ApplianceProcess
from tests.wsclient import browser, receive, shut

EXAMPLES = guide_examples()


@pytest.fixture
def run_example(appliance: ApplianceProcess, tmp_path: Path) -> Iterator[object]:
    token = appliance.token("guide")
    started: list[Script] = []

    def run(name: str) -> Script:
        path = tmp_path / f"{name}.py"
        path.write_text(EXAMPLES[name])
        script = Script(path, {"BI_DEVICE": appliance.device, "BI_TOKEN": token})
        started.append(script)
        return script

    yield run
    for script in started:
        if script.proc.poll() is None:
            script.proc.kill()
        script.wait()


def test_the_guide_has_every_example() -> None:
    assert set(EXAMPLES) == {"minimal", "config", "change_config", "record_audio", "add_handler", "devices"}


def test_a_device_object_gives_block_details_and_starts_again(run_example: Callable[[str], Any]) -> None:
    script = run_example("devices")
    seq, when, lost = script.expect(r"^block (\d+) captured at ([\d.]+) lost before it (\d+)$").groups()
    assert int(seq) >= 0 and float(when) > 1.7e9 and int(lost) >= 0
    assert int(script.expect(r"^channels (\d+)$").group(1)) > 0
    assert script.wait() == 0, script.output()


def test_minimal_gets_int16_buffers_of_the_configured_shape(run_example) -> None:  # type: ignore[no-untyped-def]
    watcher = run_example("config")
    frames, rate, channels, _ = map(int, watcher.expect(r"^config (\d+) (\d+) (\d+) (\d+)$").groups())
    script = run_example("minimal")
    match = script.expect(r"^buffer \((\d+), (\d+)\) int16 at (\d+) Hz$")
    assert tuple(map(int, match.groups())) == (frames, channels, rate)
    for _ in range(3):  # it keeps running after start() returned
        script.expect(r"^buffer ")
    assert script.interrupt() in (0, 130), script.output()
    assert "Traceback" not in script.output()


def test_config_change_is_seen_by_a_second_script(run_example) -> None:  # type: ignore[no-untyped-def]
    watcher = run_example("config")
    first = watcher.expect(r"^config (\d+) (\d+) (\d+) (\d+)$").groups()
    changer = run_example("change_config")
    changer.expect(r"^now 16000 Hz, 1024 frames$")
    assert changer.wait() == 0, changer.output()
    second = watcher.expect(r"^config 1024 16000 (\d+) (\d+)$").groups()
    assert second == (first[2], first[3])  # channels and volume kept
    assert watcher.interrupt() in (0, 130)


def test_record_audio_is_at_least_as_long_as_asked(run_example) -> None:  # type: ignore[no-untyped-def]
    script = run_example("record_audio")
    _frames, seconds = script.expect(r"^recorded (\d+) frames = ([\d.]+) s$").groups()
    assert float(seconds) >= 1.5
    assert script.wait() == 0, script.output()


async def test_add_handler_data_reaches_a_browser_opened_later(
    run_example: Callable[[str], Any],
    appliance: ApplianceProcess,
) -> None:
    script = run_example("add_handler")
    await asyncio.to_thread(script.expect, r"^sent 20$")
    ws, welcome = await browser(appliance)
    tabs = [h for h in welcome["handlers"] if h["name"] == "Level"]
    assert len(tabs) == 1, welcome["handlers"]
    tab = tabs[0]
    assert tab["handler_type"] == "base:graph:line"
    assert tab["parameters"]["series"] == ["rms"] and tab["parameters"]["min"] == 0
    assert tab["owner"]["kind"] == "script" and tab["owner"]["name"] == "add_handler.py"
    assert len(tab["history"]) >= 20  # sent before any browser was open, and kept
    first = tab["history"][0]
    assert first[0]["x"] == 1 and first[0]["y"] > 0
    live = await receive(ws, "handler_data")
    assert live["handler"] == tab["id"] and live["data"][0]["x"] > 20
    assert any(r["name"] == "add_handler.py" and r.get("remote") for r in welcome["runs"])
    await shut(ws)
    assert script.interrupt() in (0, 130)
    await asyncio.to_thread(script.wait)
