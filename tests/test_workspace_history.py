"""The run history with a real RunManager and real runs: kept outputs, the quota, restarts.

Runs are real processes (the rlimit launcher, as the unprivileged run user
when root); the history is on disk; a second manager on the same data dir
plays the service's restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.runs.history import HistoryQuota, RunHistory
from appliance.runs.launcher import RlimitLauncher, RunLimits
from appliance.runs.runner import RunManager
from tests import wsclient
from tests.server import ApplianceProcess
from tests.test_workspace import device
from tests.workspace_client import Api

__all__ = ["device"]  # the fixture, used by name

WAIT_S = 30.0

WRITES = """\
import os
with open(os.path.join(os.environ["BI_OUTPUT_DIR"], "out.bin"), "wb") as f:
    f.write(b"%s" * 4000)
print("wrote", flush=True)
"""

WAITS = """\
import os, time
open(os.path.join(os.environ["BI_OUTPUT_DIR"], "partial.txt"), "w").write("so far")
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def top() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="history-test-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root)


def manager(top: Path, events: list[dict[str, Any]], quota: HistoryQuota) -> RunManager:
    return RunManager(
        top / "runs",
        RlimitLauncher(RunLimits()),
        lambda run_id, name: {},
        events.append,
        history=RunHistory(top / "data", quota),
    )


async def until(events: list[dict[str, Any]], kind: str, run_id: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        while True:
            for event in events:
                run = event.get("run")
                if event["type"] == kind and (
                    run == run_id or (isinstance(run, dict) and run["id"] == run_id)
                ):
                    return event
            await asyncio.sleep(0.02)


def test_the_quota_removes_the_oldest_ended_runs_never_a_running_one(top: Path) -> None:
    events: list[dict[str, Any]] = []

    async def body() -> tuple[str, list[str], list[str]]:
        runs = manager(top, events, HistoryQuota(total_bytes=10_000, runs=500))
        try:
            waiting = (await runs.start("waits.py", WAITS)).id
            await until(events, "run_output", waiting)
            ended = []
            for letter in "abcd":  # 4000 bytes each: only two fit in 10 000
                info = await runs.start(f"{letter}.py", WRITES % letter)
                await until(events, "run_kept", info.id)
                ended.append(info.id)
            listed = [info.id for info in runs.list()]
            return waiting, ended, listed
        finally:
            await runs.stop_all()

    waiting, ended, listed = asyncio.run(body())
    kept = {p.name for p in (top / "data" / "outputs").iterdir()}
    assert kept == {waiting, *ended[2:]}, (kept, ended)
    assert listed == [waiting, *ended[2:]]
    # The stopped run kept what it had written by then.
    assert (top / "data" / "outputs" / waiting / "files" / "partial.txt").read_text() == "so far"
    assert (top / "data" / "outputs" / ended[3] / "files" / "out.bin").read_bytes() == b"d" * 4000


def test_a_run_cut_by_kill_9_of_the_service_is_listed_failed_with_its_files(device: ApplianceProcess) -> None:
    async def start() -> dict[str, Any]:
        ws, _ = await wsclient.browser(device)
        await ws.write_message(json.dumps({"type": "run_start", "id": 1, "name": "waits.py", "code": WAITS}))
        run = (await wsclient.receive(ws, "ack", 20))["run"]
        while (await wsclient.receive(ws, "run_output", 20))["text"] != "ready":
            pass
        await wsclient.shut(ws)
        return dict(run)

    run = asyncio.run(start())
    assert device.proc is not None
    os.kill(device.proc.pid, signal.SIGKILL)
    device.proc.wait()
    os.killpg(run["pid"], signal.SIGKILL)  # what the run's unit would do when the service went
    device.start()
    api = Api(device)
    kept = {r["id"]: r for r in api.json("GET", "/api/v1/runs")}[run["id"]]
    assert kept["state"] == "failed" and kept["reason"] == "the service stopped while it ran"
    assert [f["path"] for f in kept["files"]] == ["partial.txt"]
    status, body, _ = api.request("GET", f"/api/v1/runs/{run['id']}/files/partial.txt")
    assert status == 200 and body == b"so far"
    status, body, _ = api.request("GET", f"/api/v1/runs/{run['id']}/console.log")
    assert body == b"ready\n"
