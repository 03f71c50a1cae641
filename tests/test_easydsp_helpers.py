"""easy-dsp's examples import helper packages kept beside them (issue 12, item 10).

The original examples do ``import algorithms as rt``, a folder next to the
script. From a terminal that works as Python always does (the script's folder
is on ``sys.path``). From the web editor the helper folder must be uploaded
into the script's project first: that is the project-files work, not done yet,
so that test is an expected failure until it lands (strict: it must then be
given the upload step and the marker removed).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest_web import running_server
from tests.server import ApplianceProcess
from tests.workspace_client import Api
from tests.wsclient import browser, shut

HELPER = '''
"""A helper package in the style of easy-dsp's algorithms/: numpy only."""
import numpy as np


def loudest(buffer):
    """The index of the loudest channel of an int16 buffer."""
    return int(np.argmax(np.abs(buffer.astype(np.float64)).mean(axis=0)))
'''

SCRIPT = """
import browserinterface
import algorithms as rt

def handle(audio):
    print("algorithms ok, loudest channel", rt.loudest(audio), flush=True)
    browserinterface.stop()

browserinterface.register_handle_data(handle)
browserinterface.start()
browserinterface.loop_callbacks()
"""


def _project(folder: Path) -> Path:
    (folder / "algorithms").mkdir(parents=True)
    (folder / "algorithms" / "__init__.py").write_text(HELPER)
    script = folder / "doa_original.py"
    script.write_text(SCRIPT)
    return script


@pytest.fixture
def device() -> Iterator[ApplianceProcess]:
    with running_server(password=True) as server:
        yield server


def test_helper_package_beside_the_script_from_a_terminal(device: ApplianceProcess, tmp_path: Path) -> None:
    script = _project(tmp_path / "examples")
    env = {**os.environ, "BI_DEVICE": device.device, "BI_TOKEN": device.token("helpers")}
    out = subprocess.run(
        [sys.executable, "-u", str(script)],
        env=env,
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "algorithms ok, loudest channel" in out.stdout


async def _run_in_editor(device: ApplianceProcess, code: str, project: str) -> list[dict[str, Any]]:
    ws, _ = await browser(device)
    start = {"type": "run_start", "id": 1, "name": "doa_original.py", "code": code, "project": project}
    await ws.write_message(json.dumps(start))
    events: list[dict[str, Any]] = []
    while True:
        msg = await asyncio.wait_for(ws.read_message(), 60)
        assert msg is not None
        if isinstance(msg, bytes):
            continue
        parsed = json.loads(msg)
        if parsed["type"] in ("run_output", "run_ended", "error"):
            events.append(parsed)
        if parsed["type"] in ("run_ended", "error"):
            await shut(ws)
            return events


def test_helper_package_uploaded_beside_the_script_in_the_editor(
    device: ApplianceProcess, tmp_path: Path
) -> None:
    """The original example's folder, uploaded as it is through the page's API, runs unchanged."""
    folder = _project(tmp_path / "examples").parent
    Api(device).upload_folder("doa_original", folder)
    events = asyncio.run(_run_in_editor(device, SCRIPT, "doa_original"))
    output = "\n".join(e.get("text", "") for e in events if e["type"] == "run_output")
    assert "algorithms ok, loudest channel" in output, output
    assert events[-1]["type"] == "run_ended" and events[-1]["run"]["exit_code"] == 0, events[-1]
