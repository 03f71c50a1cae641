"""Projects with files and kept run outputs, through a real ``appliance serve``.

A project with a helper package and a data file is uploaded through the
page's API, runs from the editor (a browser WebSocket), with ``appliance run
DIR`` and as a laptop script (a second process with BI_DEVICE/BI_TOKEN); its
output file is listed under the run, downloads byte for byte, and survives a
restart of the service and ten more runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import wsclient
from tests.server import BIN, ApplianceProcess
from tests.workspace_client import Api, reachable_data_dir

PAYLOAD = bytes(range(256)) * 4096 + b"end"  # 1 MiB and a bit, every byte value

MAIN = """\
import json, os
import browserinterface as bi
import algorithms
from algorithms.level import peak

cal = json.load(open("calibration.json"))

def on_buffer(buf):
    print("helper", algorithms.NAME, "gain", cal["gain"], "peak", peak(buf) > 0, flush=True)
    out = os.environ.get("BI_OUTPUT_DIR")
    if out:
        with open(os.path.join(out, "result.bin"), "wb") as f:
            f.write(bytes(range(256)) * 4096 + b"end")
    bi.stop()

bi.register_handle_data(on_buffer)
bi.loop_callbacks()
"""


def make_project(folder: Path) -> Path:
    (folder / "algorithms").mkdir(parents=True)
    (folder / "algorithms" / "__init__.py").write_text('NAME = "lcav"\n')
    (folder / "algorithms" / "level.py").write_text(
        "import numpy as np\n\ndef peak(buf):\n    return int(np.abs(buf.astype(np.int32)).max())\n"
    )
    (folder / "calibration.json").write_text(json.dumps({"gain": 1.25}))
    (folder / "main.py").write_text(MAIN)
    return folder


@pytest.fixture
def device() -> Iterator[ApplianceProcess]:
    with reachable_data_dir() as data_dir:
        server = ApplianceProcess(data_dir).start()
        try:
            yield server
        finally:
            server.stop()
            assert "Traceback" not in server.log(), server.log()


async def run_in_editor(server: ApplianceProcess, code: str, project: str | None) -> dict[str, Any]:
    ws, _ = await wsclient.browser(server)
    msg: dict[str, Any] = {"type": "run_start", "id": 1, "name": "main.py", "code": code}
    if project is not None:
        msg["project"] = project
    await ws.write_message(json.dumps(msg))
    ack = await wsclient.receive(ws, "ack", 20)
    run_id = ack["run"]["id"]
    lines = []
    ended: dict[str, Any] = {}
    while True:
        raw = await asyncio.wait_for(ws.read_message(), 60)
        assert raw is not None
        if not isinstance(raw, str):
            continue
        event = json.loads(raw)
        if event["type"] == "run_output" and event["run"] == run_id:
            lines.append(event["text"])
        if event["type"] == "run_ended" and event["run"]["id"] == run_id:
            ended = event["run"]
        # Its record and output files are in the history once run_kept comes.
        if event["type"] == "run_kept" and event["run"] == run_id:
            await wsclient.shut(ws)
            return {**ended, "lines": lines, "kept": event["files"]}


def test_uploaded_project_runs_from_the_editor_and_its_output_is_kept(
    device: ApplianceProcess, tmp_path: Path
) -> None:
    api = Api(device)
    api.upload_folder("lab", make_project(tmp_path / "lab"))
    listed = {f["path"] for f in api.json("GET", "/api/v1/projects/lab/files")}
    assert listed == {"algorithms/__init__.py", "algorithms/level.py", "calibration.json", "main.py"}

    run = asyncio.run(run_in_editor(device, MAIN, "lab"))
    assert run["state"] == "finished", run
    assert "helper lcav gain 1.25 peak True" in run["lines"]

    def kept() -> dict[str, Any]:
        runs = {r["id"]: r for r in api.json("GET", "/api/v1/runs")}
        assert run["id"] in runs, runs.keys()
        found: dict[str, Any] = runs[run["id"]]
        return found

    assert [f["path"] for f in run["kept"]] == ["result.bin"]
    assert kept()["files"] == run["kept"]
    status, body, headers = api.request("GET", f"/api/v1/runs/{run['id']}/files/result.bin")
    assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(PAYLOAD).digest()
    assert 'filename="result.bin"' in headers["Content-Disposition"]
    status, console, _ = api.request("GET", f"/api/v1/runs/{run['id']}/console.log")
    assert b"helper lcav gain 1.25 peak True" in console

    device.restart()
    api = Api(device)
    assert kept()["state"] == "finished"
    for _ in range(10):
        assert asyncio.run(run_in_editor(device, "print('again')\n", None))["state"] == "finished"
    status, body, _ = api.request("GET", f"/api/v1/runs/{run['id']}/files/result.bin")
    assert status == 200 and body == PAYLOAD
    assert len(api.json("GET", "/api/v1/runs")) == 11


def test_a_project_run_runs_the_editors_text_not_the_projects_file_of_that_name(
    device: ApplianceProcess, tmp_path: Path
) -> None:
    """Unsaved edits run: the project's saved main.py is not taken instead of the editor's."""
    Api(device).upload_folder("lab", make_project(tmp_path / "lab"))
    edited = "import json\nprint('edited, gain', json.load(open('calibration.json'))['gain'])\n"
    run = asyncio.run(run_in_editor(device, edited, "lab"))
    assert run["state"] == "finished", run
    assert run["lines"] == ["edited, gain 1.25"]


def test_the_same_folder_runs_with_appliance_run_and_from_a_laptop(
    device: ApplianceProcess, tmp_path: Path
) -> None:
    folder = make_project(tmp_path / "lab")
    env = {**os.environ, "BI_LOCAL_FILE": str(device.data_dir / "local.json")}
    done = subprocess.run(
        [str(BIN / "appliance"), "run", str(folder)], capture_output=True, text=True, env=env, timeout=90
    )
    assert done.returncode == 0, done.stderr
    assert "helper lcav gain 1.25 peak True" in done.stdout

    laptop_env = {**os.environ, "BI_DEVICE": device.device, "BI_TOKEN": device.token("laptop")}
    laptop = subprocess.run(
        [sys.executable, "main.py"], cwd=folder, capture_output=True, text=True, env=laptop_env, timeout=90
    )
    assert laptop.returncode == 0, laptop.stderr
    assert "helper lcav gain 1.25 peak True" in laptop.stdout


def test_a_run_of_an_unknown_project_is_refused_with_its_name(device: ApplianceProcess) -> None:
    async def body() -> dict[str, Any]:
        ws, _ = await wsclient.browser(device)
        await ws.write_message(
            json.dumps({"type": "run_start", "id": 7, "name": "x.py", "code": "", "project": "../etc"})
        )
        error = await wsclient.receive(ws, "error", 20)
        await wsclient.shut(ws)
        return error

    error = asyncio.run(body())
    assert "project name '../etc' is not allowed" in error["message"]


def test_appliance_run_refuses_a_folder_too_large_to_bring_before_connecting(tmp_path: Path) -> None:
    folder = make_project(tmp_path / "big")
    (folder / "impulse.raw").write_bytes(b"\0" * (6 << 20))
    done = subprocess.run(
        [str(BIN / "appliance"), "run", str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "BI_DEVICE": "127.0.0.1:9", "BI_TOKEN": "x"},
        timeout=60,
    )
    assert done.returncode == 2
    assert "a folder run this way brings at most 2000 files and 5242880 bytes" in done.stderr
