"""The scientific stack in script runs: pyroomacoustics DOA on simulator buffers, figures as tabs.

Both scripts run as the editor runs them (a browser WebSocket, ``run_start``)
on a real ``appliance serve --source sim``, under the run's memory limit.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.capture.sources.simulator import SimulatedArray
from tests import wsclient
from tests.server import ApplianceProcess
from tests.workspace_client import reachable_data_dir

DOA = """\
import time
import numpy as np
import pyroomacoustics as pra
import browserinterface as bi

NFFT = 256
got = []

def handle(buffer):
    mics = [i for i, g in enumerate(bi.geometry or []) if g is not None][: buffer.shape[1]]
    L = np.array([bi.geometry[i] for i in mics], dtype=float).T[:2]
    x = buffer[:, mics].astype(np.float64) / 32768
    X = np.array([pra.transform.stft.analysis(x[:, m], NFFT, NFFT // 2).T for m in range(len(mics))])
    doa = pra.doa.algorithms["SRP"](L, bi.rate, NFFT, c=343.0, num_src=1)
    doa.locate_sources(X, freq_range=[300.0, 3500.0])
    middle = time.time() - buffer.shape[0] / bi.rate / 2
    print(f"azimuth {np.rad2deg(doa.azimuth_recon[0]) % 360:.1f} at {middle:.3f}", flush=True)
    got.append(1)
    if len(got) == 3:
        bi.stop()

bi.register_handle_data(handle)
bi.loop_callbacks()
"""

PLOT = """\
import os, sys
print("prefix", sys.prefix, flush=True)
import matplotlib.pyplot as plt
plt.figure("Spectrum")
plt.plot([0, 1, 4, 9, 16])
plt.savefig(os.path.join(os.environ["BI_OUTPUT_DIR"], "spectrum.png"))
plt.show()
print("shown", flush=True)
"""


@pytest.fixture
def device() -> Iterator[ApplianceProcess]:
    with reachable_data_dir() as data_dir:
        server = ApplianceProcess(data_dir, "sim").start()
        try:
            yield server
        finally:
            server.stop()
            assert "Traceback" not in server.log(), server.log()


async def run(server: ApplianceProcess, code: str) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """Run ``code`` from the editor; its end, its console lines, and every handler message."""
    ws, _ = await wsclient.browser(server)
    await ws.write_message(json.dumps({"type": "run_start", "id": 1, "name": "s.py", "code": code}))
    run_id = (await wsclient.receive(ws, "ack", 20))["run"]["id"]
    lines: list[str] = []
    handlers: list[dict[str, Any]] = []
    while True:
        raw = await asyncio.wait_for(ws.read_message(), 120)
        assert raw is not None
        if not isinstance(raw, str):
            continue
        event = json.loads(raw)
        if event["type"].startswith("handler_"):
            handlers.append(event)
        if event["type"] == "run_output" and event["run"] == run_id:
            lines.append(event["text"])
        if event["type"] == "run_ended" and event["run"]["id"] == run_id:
            await wsclient.shut(ws)
            return event["run"], lines, handlers


def angle_between(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def test_pyroomacoustics_doa_finds_the_simulators_azimuth(device: ApplianceProcess) -> None:
    ended, lines, _ = asyncio.run(run(device, DOA))
    assert ended["state"] == "finished", (ended, lines)
    estimates = [line.split() for line in lines if line.startswith("azimuth ")]
    assert len(estimates) == 3, lines
    for _, azimuth, _, at in estimates:
        truth = SimulatedArray.azimuth_at(float(at))
        assert angle_between(float(azimuth), truth) <= 10.0, (azimuth, truth, lines)


def test_plt_show_and_savefig_make_an_image_tab(device: ApplianceProcess) -> None:
    ended, lines, handlers = asyncio.run(run(device, PLOT))
    assert ended["state"] == "finished", (ended, lines)
    assert "shown" in lines
    # Runs use the scripts' own venv, which sees the service's stack behind it.
    assert f"prefix {device.data_dir / 'pyenv'}" in lines
    added = [h["handler"] for h in handlers if h["type"] == "handler_added"]
    assert [(h["name"], h["handler_type"]) for h in added] == [("Spectrum", "base:image")]
    images = [h["data"]["src"] for h in handlers if h["type"] == "handler_data"]
    assert len(images) == 2  # savefig, then show
    png = base64.b64decode(images[-1].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
