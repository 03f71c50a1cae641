"""Background tasks are owned: a failure is logged with its traceback, then restarted or fatal by rule."""

from __future__ import annotations

import asyncio
import logging

import pytest

from appliance.system import supervisor as S


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(S, "RESTART_PAUSE_S", 0.0)


async def test_a_failing_loop_is_logged_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    fatal: list[str] = []
    sup = S.Supervisor(fatal.append)
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise ValueError("sensor glitch")
        await asyncio.Event().wait()

    with caplog.at_level(logging.ERROR):
        sup.spawn("levels", flaky, "restart")
        while len(runs) < 3:
            await asyncio.sleep(0.01)
    assert fatal == []
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2 and failures[0].exc_info is not None
    assert "background task levels failed" in failures[0].getMessage()
    assert sup.running == ["levels"]
    await sup.stop()
    assert sup.running == []


async def test_a_loop_that_keeps_failing_takes_the_service_down() -> None:
    fatal: list[str] = []
    sup = S.Supervisor(fatal.append)

    async def broken() -> None:
        raise RuntimeError("always")

    task = sup.spawn("stats", broken, "restart")
    await task
    assert len(fatal) == 1 and "background task stats failed" in fatal[0]


async def test_fatal_and_once_policies() -> None:
    fatal: list[str] = []
    sup = S.Supervisor(fatal.append)

    async def boom() -> None:
        raise KeyError("x")

    await sup.spawn("capture glue", boom, "fatal")
    assert len(fatal) == 1
    await sup.spawn("run start", boom, "once")
    assert len(fatal) == 1  # a request's task fails alone


async def test_stop_cancels_and_awaits_every_task() -> None:
    sup = S.Supervisor(lambda reason: None)
    ended: list[str] = []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    for name in ("a", "b", "c"):
        sup.spawn(name, lambda n=name: forever(n), "restart")  # type: ignore[misc]
    await asyncio.sleep(0)
    await sup.stop()
    assert sorted(ended) == ["a", "b", "c"]


async def test_a_task_owned_elsewhere_never_fails_unseen(caplog: pytest.LogCaptureFixture) -> None:
    async def bad() -> None:
        raise OSError("gone")

    task = asyncio.get_running_loop().create_task(bad(), name="session s1 sender")
    task.add_done_callback(S.log_failure)
    with caplog.at_level(logging.ERROR), pytest.raises(OSError):
        await task
    await asyncio.sleep(0)
    assert any("task session s1 sender failed" in r.getMessage() for r in caplog.records)
