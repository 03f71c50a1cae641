"""Script runs: real child processes under real limits, stopped for real."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from appliance.runs import run, runner, runoutput
from appliance.runs.launchbase import MIB, Launcher, LaunchError, LaunchSpec, RunLimits, RunUser
from appliance.runs.launcher import RlimitLauncher, default_launcher, group_alive
from appliance.runs.runner import RunError, RunManager, script_name
from appliance.runs.runoutput import LineSplitter, OutputBudget
from appliance.runs.systemd_launcher import (
    SystemdRunLauncher,
    SystemdUnitLauncher,
    env_file_text,
    systemd_run_argv,
    unit_end,
)
from appliance.runs.tracebacks import UserFileLines
from tests.fake_systemctl import dynamic_uid
from tests.run_support import Body, Events, code, make_root, with_manager

T = TypeVar("T")
AS_ROOT = os.geteuid() == 0
MEMORY = 256 * MIB


@pytest.fixture
def run_root() -> Iterator[Path]:
    # Not pytest's tmp_path: its parent is 0700 and the run user must reach the script.
    top = make_root("runner-test-")
    yield top / "runs"
    shutil.rmtree(top)


def scenario(
    run_root: Path,
    body: Body[T],
    memory: int = MEMORY,
    launcher: Launcher | None = None,
    projects_root: Path | None = None,
) -> T:
    """Run ``body`` with a fresh manager on a fresh loop; always stop every run."""
    # Unsandboxed by default: these tests follow pids the script prints, which a
    # sandbox's own pid namespace renumbers (tests/test_isolation.py runs the sandbox).
    launcher = launcher or RlimitLauncher(RunLimits(memory_bytes=memory), sandbox=False)
    return with_manager(run_root, launcher, run_env, body, projects_root)


def run_env(run_id: str, name: str) -> dict[str, str]:
    return {"BI_RUN_ID": run_id}


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in (b"Z", b"X")


async def start_ready(manager: RunManager, events: Events, name: str, src: str) -> str:
    """Start a script that prints ``ready`` once set up; wait for that line."""
    info = await manager.start(name, code(src))
    await events.until(lambda: "ready" in events.texts(info.id, "stdout"))
    return info.id


LOOP_FOREVER = """
import time
print("ready")
while True:
    time.sleep(0.01)
"""

IGNORE_SIGNALS = """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready")
while True:
    time.sleep(0.01)
"""

FORK_STUBBORN_CHILD = """
import os, signal, time
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("child", os.getpid())
    print("ready")
    while True:
        time.sleep(0.01)
while True:
    time.sleep(0.01)
"""


def test_stop_escalation_fits_in_two_seconds() -> None:
    assert run.INT_GRACE_S + run.TERM_GRACE_S + run.KILL_WAIT_S < 2.0


def test_loop_forever_is_stopped_and_its_group_is_gone(run_root: Path) -> None:
    async def body(manager: RunManager, events: Events) -> None:
        run_id = await start_ready(manager, events, "forever", LOOP_FOREVER)
        pid = manager.list()[0].pid
        info = await manager.stop(run_id)
        assert not group_alive(pid)
        # SIGINT was enough: Python turned it into KeyboardInterrupt, then died of it.
        assert (info.state, info.reason, info.signal) == ("stopped", "stopped by user", "SIGINT")
        assert "KeyboardInterrupt" in events.texts(run_id, "stderr")
        ended = events.of(run_id, "run_ended")
        assert [e["run"]["state"] for e in ended] == ["stopped"]

    scenario(run_root, body)


def test_script_ignoring_sigint_and_sigterm_is_killed(run_root: Path) -> None:
    async def body(manager: RunManager, events: Events) -> None:
        run_id = await start_ready(manager, events, "stubborn.py", IGNORE_SIGNALS)
        info = await manager.stop(run_id)
        assert not group_alive(info.pid)
        assert (info.state, info.signal, info.exit_code) == ("stopped", "SIGKILL", None)

    scenario(run_root, body)


def test_forked_child_ignoring_signals_goes_with_the_group(run_root: Path) -> None:
    async def body(manager: RunManager, events: Events) -> None:
        run_id = await start_ready(manager, events, "forker", FORK_STUBBORN_CHILD)
        child = int(next(t for t in events.texts(run_id, "stdout") if t.startswith("child"))[6:])
        assert pid_alive(child)
        info = await manager.stop(run_id)
        assert not group_alive(info.pid)
        assert not pid_alive(child)
        assert info.state == "stopped"

    scenario(run_root, body)


def test_child_left_behind_by_an_ending_script_is_ended_too(run_root: Path) -> None:
    src = """
    import os, signal, time
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("child", os.getpid(), flush=True)
        while True:
            time.sleep(0.01)
    time.sleep(0.2)
    """

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.start("leaver", code(src))
        ended = await manager.wait(info.id)
        child = int(next(t for t in events.texts(info.id, "stdout") if t.startswith("child"))[6:])
        assert not pid_alive(child)
        assert not group_alive(info.pid)
        assert (ended.state, ended.exit_code, ended.reason) == (
            "finished",
            0,
            "exited with status 0",
        )

    scenario(run_root, body)


def test_run_ends_even_if_an_escaped_process_holds_its_output(
    run_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Without systemd a process that calls setsid() leaves the group: the
    # known gap.  The run must still end, and its pipes must be let go.
    monkeypatch.setattr(run, "DRAIN_S", 0.3)
    src = """
    import os, time
    if os.fork() == 0:
        os.setsid()
        print("escaped", os.getpid(), flush=True)
        time.sleep(60)
    """
    escaped: list[int] = []

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.start("escape", code(src))
        await events.until(lambda: bool(events.texts(info.id, "stdout")))
        escaped.append(int(events.texts(info.id, "stdout")[0].split()[1]))
        ended = await manager.wait(info.id)
        assert ended.state == "finished"
        assert "output still open after the run ended" in caplog.text

    try:
        scenario(run_root, body)
    finally:
        for pid in escaped:
            os.kill(pid, 9)


def test_memory_hog_is_stopped_by_the_limit_and_the_reason_says_so(run_root: Path) -> None:
    src = """
    hoard = []
    while True:
        hoard.append(bytearray(8 << 20))
    """

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.wait((await manager.start("hog", code(src))).id)
        assert info.state == "failed"
        assert info.reason == "memory limit of 256 MiB reached"
        assert "MemoryError" in events.texts(info.id, "stderr")
        assert events.of(info.id, "run_ended")[0]["run"]["reason"] == info.reason

    scenario(run_root, body)


def test_numpy_imports_under_the_default_limit(run_root: Path) -> None:
    src = """
    import numpy as np
    print(int(np.arange(10).sum()))
    """

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.wait((await manager.start("np", code(src))).id)
        assert events.texts(info.id, "stdout") == ["45"], events.texts(info.id, "stderr")
        assert info.state == "finished"

    scenario(run_root, body, memory=RunLimits().memory_bytes)


def test_death_by_signal_is_told_in_words(run_root: Path) -> None:
    async def body(manager: RunManager, events: Events) -> None:
        src = "import os, signal\nos.kill(os.getpid(), signal.SIG{})\n"
        term = await manager.wait((await manager.start("t", src.format("TERM"))).id)
        assert (term.state, term.signal, term.exit_code) == ("failed", "SIGTERM", None)
        assert term.reason == "killed by SIGTERM"
        kill = await manager.wait((await manager.start("k", src.format("KILL"))).id)
        assert kill.reason == "killed by SIGKILL, probably by the kernel because memory ran out"

    scenario(run_root, body)


def test_a_dozen_threads_start_under_the_limit(run_root: Path) -> None:
    src = """
    import threading
    done = threading.Event()
    def work():
        junk = [bytearray(1000) for _ in range(1000)]
        done.wait()
    threads = [threading.Thread(target=work, daemon=True) for _ in range(12)]
    for t in threads:
        t.start()
    done.set()
    for t in threads:
        t.join()
    print("all started")
    """

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.wait((await manager.start("threads", code(src))).id)
        assert events.texts(info.id, "stdout") == ["all started"], events.texts(info.id, "stderr")

    scenario(run_root, body)


def test_traceback_lines_point_at_the_editor_lines(run_root: Path) -> None:
    src = """
    import json
    print("before")

    def parse(text):
        return json.loads(text)

    parse("{not json")
    """

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.wait((await manager.start("tb", code(src))).id)
        lines = {e["text"].strip(): e.get("line") for e in events.of(info.id)}
        frames = {text: line for text, line in lines.items() if text.startswith("File ")}
        mine = sorted(line for line in frames.values() if line is not None)
        assert mine == [5, 7]
        # Frames inside the json module get no editor line.
        assert any(line is None and "json" in text for text, line in frames.items())
        assert info.state == "failed"
        assert (info.exit_code, info.reason) == (1, "exited with status 1")

    scenario(run_root, body)


def test_syntax_error_and_warning_lines_are_mapped(run_root: Path) -> None:
    async def body(manager: RunManager, events: Events) -> None:
        bad = await manager.wait((await manager.start("bad", "x = 1\n\ny = (\n")).id)
        assert [e["line"] for e in events.of(bad.id) if "line" in e] == [3]
        src = 'import warnings\n\nwarnings.warn("careful")\n'
        warned = await manager.wait((await manager.start("warn", src)).id)
        assert [e["line"] for e in events.of(warned.id) if "line" in e] == [3]

    scenario(run_root, body)


def test_stdout_and_stderr_arrive_as_lines_in_order(run_root: Path) -> None:
    src = """
    import sys
    for i in range(300):
        print("out", i)
        print("err", i, file=sys.stderr)
    print("x" * 100000)
    sys.stdout.write("no newline at the end")
    """

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.wait((await manager.start("order", code(src))).id)
        out = events.texts(info.id, "stdout")
        assert out[:300] == [f"out {i}" for i in range(300)]
        assert events.texts(info.id, "stderr") == [f"err {i}" for i in range(300)]
        long_line = out[300]
        assert long_line == "x" * runoutput.MAX_LINE_BYTES + runoutput.cut_marker(
            100000 - runoutput.MAX_LINE_BYTES
        )
        assert out[301:] == ["no newline at the end"]
        assert info.dropped_lines == 0
        # The console of a reloaded page: the same events, ending with the last line.
        assert manager.get(info.id) is not None
        tail = manager.get(info.id).output_tail()  # type: ignore[union-attr]
        assert tail[-1]["text"] == "no newline at the end"
        assert len(tail) <= run.TAIL_EVENTS

    scenario(run_root, body)


def test_flood_is_rate_limited_and_reported_without_disturbing_another_run(
    run_root: Path,
) -> None:
    flood = """
    for i in range(200000):
        print("flood", i)
    """
    ticker = """
    import time
    for i in range(40):
        print("tick", i)
        time.sleep(0.01)
    """

    async def body(manager: RunManager, events: Events) -> None:
        tick = await manager.start("ticker", code(ticker))
        flooded = await manager.start("flood", code(flood))
        hog = await manager.start("hog", "h = []\nwhile True:\n    h.append(bytearray(1 << 23))\n")
        stubborn = await start_ready(manager, events, "stubborn", IGNORE_SIGNALS)
        await manager.stop(stubborn)
        flood_end = await manager.wait(flooded.id)
        tick_end = await manager.wait(tick.id)
        assert (await manager.wait(hog.id)).reason == "memory limit of 256 MiB reached"

        shown = len(events.of(flooded.id))
        reports = [e["lines"] for e in events.of(flooded.id, "run_dropped")]
        assert reports and all(n > 0 for n in reports)
        assert shown + sum(reports) == 200000
        assert flood_end.dropped_lines == sum(reports)
        assert flood_end.state == "finished"
        tail = manager.get(flooded.id).output_tail()  # type: ignore[union-attr]
        assert len(tail) <= run.TAIL_EVENTS
        assert tail[-1]["type"] == "run_dropped"

        assert events.texts(tick.id, "stdout") == [f"tick {i}" for i in range(40)]
        assert (tick_end.state, tick_end.dropped_lines) == ("finished", 0)

    scenario(run_root, body)


@pytest.mark.skipif(not AS_ROOT, reason="switching users needs root")
def test_as_root_the_script_runs_as_an_unprivileged_user(run_root: Path) -> None:
    src = """
    import os
    print(os.getuid(), os.getgid(), os.getgroups())
    with open("written.txt", "w") as f:
        f.write("mine")
    """

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.wait((await manager.start("who", code(src))).id)
        uid, gid, groups = events.texts(info.id, "stdout")[0].split(" ", 2)
        assert int(uid) != 0 and int(gid) != 0
        assert groups == "[]"
        assert info.user in ("micarray-run", "nobody")
        assert (run_root / info.id / "written.txt").stat().st_uid == int(uid)
        assert info.state == "finished"

    scenario(run_root, body)


@pytest.mark.skipif(not AS_ROOT, reason="switching users needs root")
def test_unreachable_run_root_is_explained(run_root: Path) -> None:
    hidden = run_root.parent / "private"
    hidden.mkdir(mode=0o700)

    async def body(manager: RunManager, events: Events) -> None:
        with pytest.raises(RunError) as err:
            await manager.start("x", "pass\n")
        assert f"{hidden} has mode 0700" in str(err.value)
        assert "is not reachable by user" in str(err.value)
        assert list((hidden / "runs").iterdir()) == []

    scenario(hidden / "runs", body)


@pytest.mark.parametrize("name", ["../x.py", "a/b.py", "", ".hidden", "a b", "x" * 65, "é.py"])
def test_bad_names_are_rejected(name: str) -> None:
    with pytest.raises(RunError) as err:
        script_name(name)
    assert str(err.value) == (
        f"script name {name!r} is not allowed; use 1 to 64 letters, digits, "
        "'_', '-' or '.', not starting with '.' (no '/', spaces or other characters)"
    )


def test_good_names_get_py() -> None:
    assert script_name("doa") == "doa.py"
    assert script_name("doa.py") == "doa.py"
    assert script_name("my-test_2.v1") == "my-test_2.v1.py"


def test_requests_that_cannot_be_served(run_root: Path) -> None:
    async def body(manager: RunManager, events: Events) -> None:
        with pytest.raises(RunError, match=r"^script name '\.\./etc/passwd' is not allowed"):
            await manager.start("../etc/passwd", "pass")
        too_big = "#" * (runner.MAX_CODE_BYTES + 1)
        with pytest.raises(RunError, match=r"^script is 1048577 bytes; the limit is 1048576"):
            await manager.start("big", too_big)
        with pytest.raises(RunError, match=r"^no run 'nope'; it never existed"):
            await manager.stop("nope")
        assert manager.get("nope") is None
        manager._max_running = 1
        first = await manager.start("one", code(LOOP_FOREVER))
        with pytest.raises(RunError, match=r"^1 scripts are already running; stop one first"):
            await manager.start("two", "pass")
        await manager.stop(first.id)
        assert (await manager.stop(first.id)).state == "stopped"  # a second Stop is harmless

    scenario(run_root, body)


def test_ended_runs_and_their_directories_are_bounded(
    run_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "KEEP_ENDED", 2)
    monkeypatch.setattr(runner, "KEEP_DIRS", 1)
    run_root.mkdir(mode=0o700, parents=True)
    (run_root / "0123456789ab").mkdir()  # left by an earlier service
    (run_root / "0123456789ab.env").write_text("")
    (run_root / "not-a-run").mkdir()

    async def body(manager: RunManager, events: Events) -> None:
        assert sorted(p.name for p in run_root.iterdir()) == ["not-a-run"]
        assert stat.S_IMODE(run_root.stat().st_mode) == 0o711
        ids = [(await manager.wait((await manager.start(f"s{i}", "pass")).id)).id for i in range(3)]
        assert [info.id for info in manager.list()] == ids[1:]
        assert sorted(p.name for p in run_root.iterdir()) == sorted(["not-a-run", ids[2]])

    scenario(run_root, body)


def test_environment_of_a_run(run_root: Path) -> None:
    src = """
    import os, sys
    print(os.environ["BI_RUN_ID"], os.environ["HOME"] == os.getcwd(), sys.stdout.write_through)
    print(sorted(k for k in os.environ if k.startswith("NOTIFY") or k == "PYTEST_CURRENT_TEST"))
    """

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.wait((await manager.start("env", code(src))).id)
        assert events.texts(info.id, "stdout") == [f"{info.id} True True", "[]"]

    scenario(run_root, body)


# -- template units, with a stand-in for systemctl and PID 1 -----------------------

FAKE_SYSTEMCTL = Path(__file__).with_name("fake_systemctl.py")


@pytest.fixture
def unit_launcher(run_root: Path, monkeypatch: pytest.MonkeyPatch) -> SystemdUnitLauncher:
    if not AS_ROOT:
        pytest.skip("the stand-in for PID 1 switches users")
    state = run_root.parent / "state"
    state.mkdir()
    runtime = run_root.parent / "runtime"
    places = (("RUNS", run_root), ("RUNTIME", runtime), ("STATE", state), ("DATA", run_root.parent))
    for name, value in places:
        monkeypatch.setenv(f"FAKE_SYSTEMD_{name}", str(value))
    monkeypatch.setenv("FAKE_SYSTEMD_GROUP", "nogroup")
    return SystemdUnitLauncher(
        RunLimits(),
        runtime_dir=runtime,
        run_root=run_root,
        command=(sys.executable, str(FAKE_SYSTEMCTL)),
        run_group="nogroup",
        interpreter=sys.executable,
    )


def test_template_unit_run_streams_output_through_sockets(
    run_root: Path, unit_launcher: SystemdUnitLauncher
) -> None:
    src = """
    import os, sys
    print("hello from", os.getuid())
    print("to stderr", file=sys.stderr)
    open("written.txt", "w").write("mine")
    1 / 0
    """

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.wait((await manager.start("unit", code(src))).id)
        uid = dynamic_uid(f"micarray-run-{info.id}")
        assert events.texts(info.id, "stdout") == [f"hello from {uid}"]
        assert events.texts(info.id, "stderr")[0] == "to stderr"
        assert [e["line"] for e in events.of(info.id) if "line" in e] == [5]
        assert (info.user, info.state, info.exit_code) == (f"micarray-run-{info.id}", "failed", 1)
        assert info.reason == "exited with status 1"
        assert (run_root / info.id / "written.txt").stat().st_uid == uid
        assert stat.S_IMODE((run_root / info.id).stat().st_mode) == 0o770
        assert list(unit_launcher.runtime_dir.iterdir()) == []  # env file and sockets gone

    scenario(run_root, body, launcher=unit_launcher)


PROJECT_RUN = """
import os, pathlib, sys
import helper
print("cwd", os.getcwd())
print("data", open("data.txt").read().strip(), helper.ANSWER)
open("result.txt", "w").write("written by the run")
data_dir = pathlib.Path(os.environ["BI_OUTPUT_DIR"]).parents[2]
print("data dir", sorted(p.name for p in data_dir.iterdir()))
print("runs", sorted(p.name for p in (data_dir / "runs").iterdir()))
try:
    open(data_dir / "runs" / "intruder.txt", "w")
except OSError as exc:
    print("sibling", type(exc).__name__)
"""


def test_template_unit_run_works_in_its_project_and_sees_nothing_else(
    run_root: Path, unit_launcher: SystemdUnitLauncher
) -> None:
    """A project run starts in its project (relative paths, imports), writes there, sees no other run."""
    top = run_root.parent
    projects = top / "projects"
    project = projects / "demo"
    project.mkdir(parents=True)
    (project / "data.txt").write_text("42\n")
    (project / "helper.py").write_text("ANSWER = 'from helper'\n")
    (top / "tokens.json").write_text("secret")
    run_root.mkdir(mode=0o711)
    (run_root / "0000other000").mkdir()

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.wait((await manager.start("p", PROJECT_RUN, project="demo")).id)
        inside = run_root / info.id / "project"
        assert events.texts(info.id, "stderr") == []
        assert events.texts(info.id, "stdout") == [
            f"cwd {inside}",
            "data 42 from helper",
            "data dir ['runs']",
            f"runs ['{info.id}']",
            "sibling OSError",
        ]
        assert info.state == "finished"
        result = project / "result.txt"
        assert result.read_text() == "written by the run"
        assert result.stat().st_uid == dynamic_uid(f"micarray-run-{info.id}")
        assert stat.S_IMODE(result.stat().st_mode) & 0o060 == 0o060  # the service may read and remove it
        assert not inside.exists() and list(unit_launcher.runtime_dir.iterdir()) == []

    scenario(run_root, body, launcher=unit_launcher, projects_root=projects)


def test_template_units_give_every_run_a_user_of_its_own(
    run_root: Path, unit_launcher: SystemdUnitLauncher
) -> None:
    async def body(manager: RunManager, events: Events) -> None:
        first = await manager.start("a", "import os; print(os.getuid())")
        second = await manager.start("b", "import os; print(os.getuid())")
        ended = [await manager.wait(first.id), await manager.wait(second.id)]
        uids = {events.texts(info.id, "stdout")[0] for info in ended}
        assert len(uids) == 2
        assert [info.user for info in ended] == [f"micarray-run-{first.id}", f"micarray-run-{second.id}"]

    scenario(run_root, body, launcher=unit_launcher)


def test_template_unit_run_is_stopped_through_systemctl_kill(
    run_root: Path, unit_launcher: SystemdUnitLauncher
) -> None:
    async def body(manager: RunManager, events: Events) -> None:
        run_id = await start_ready(manager, events, "stubborn", IGNORE_SIGNALS)
        script_pid = int((run_root.parent / "state" / f"{run_id}.pid").read_text())
        info = await manager.stop(run_id)
        assert (info.state, info.signal, info.reason) == ("stopped", "SIGKILL", "stopped by user")
        assert not group_alive(script_pid)

    scenario(run_root, body, launcher=unit_launcher)


def test_template_unit_needs_the_template_run_root(
    run_root: Path, unit_launcher: SystemdUnitLauncher
) -> None:
    elsewhere = run_root.parent / "elsewhere"

    async def body(manager: RunManager, events: Events) -> None:
        with pytest.raises(RunError) as err:
            await manager.start("x", "pass")
        message = str(err.value)
        assert message.startswith(f"could not start x.py: run directory {elsewhere}/")
        assert message.endswith(
            " is not where the run unit template looks; "
            f"it runs scripts in {run_root}/<id>, so use that as the run root"
        )
        assert list(elsewhere.iterdir()) == []

    scenario(elsewhere, body, launcher=unit_launcher)


def test_template_unit_that_cannot_start_says_why(
    run_root: Path, unit_launcher: SystemdUnitLauncher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SYSTEMD_DENY", "1")

    async def body(manager: RunManager, events: Events) -> None:
        info = await manager.wait((await manager.start("denied", "print('never')")).id)
        assert info.state == "failed"
        assert info.reason == (
            f"the run could not be started: Failed to start micarray-run@{info.id}.service: Access denied"
        )
        assert events.of(info.id) == []

    scenario(run_root, body, launcher=unit_launcher)


# -- pure parts -------------------------------------------------------------------


def test_line_splitter_joins_chunks_and_cuts_long_lines() -> None:
    splitter = LineSplitter(max_line_bytes=5)
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"c\r\nlonger line\n\xc3") == ["abc", "longe" + runoutput.cut_marker(6)]
    assert splitter.feed(b"\xa9") == []
    assert splitter.flush() == ["é"]
    assert splitter.flush() == []


def test_line_splitter_discards_a_flood_keeping_the_last_lines() -> None:
    splitter = LineSplitter(max_line_bytes=100)
    assert splitter.feed(b"par") == []
    assert splitter.discard(b"tial\nb\nc\nd\ne") == (4, [])
    assert splitter.discard(b"nd\nf\ng\n", keep=2) == (1, ["f", "g"])
    assert splitter.discard(b"h\ni", keep=2) == (0, ["h"])  # too few lines to count in bulk
    assert splitter.flush() == ["i"]


def test_output_budget_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    budget = OutputBudget(lines_per_s=10, bytes_per_s=1000, burst_s=1, clock=lambda: now[0])
    assert [budget.take(1) for _ in range(11)] == [True] * 10 + [False]
    assert budget.has_room() is False
    now[0] += 0.5
    assert [budget.take(1) for _ in range(6)] == [True] * 5 + [False]
    now[0] += 10
    assert budget.take(1001) is False  # more bytes than the bucket holds
    assert budget.take(900) is True


def test_user_file_lines() -> None:
    lines = UserFileLines(Path("/r/abc"), "s.py")
    assert lines.line_of('  File "/r/abc/s.py", line 12, in <module>') == 12
    assert lines.line_of('  File "/usr/lib/python3.11/json/__init__.py", line 346, in x') is None
    assert lines.line_of("/r/abc/s.py:3: UserWarning: careful") == 3
    assert lines.line_of("ValueError: line 3") is None


SPEC = LaunchSpec("0123456789ab", "doa.py", Path("/data/runs/0123456789ab"), {"A": "1"})


def test_systemd_run_command_line() -> None:
    # systemd is not PID 1 here, so only the command line is checked.
    limits = RunLimits(memory_bytes=300 * MIB, cpu_percent=150, nice=5, max_processes=32)
    argv = systemd_run_argv(SPEC, limits, RunUser("nobody", 65534, 65534), "/usr/bin/python3", Path("/e.env"))
    assert argv[:8] == [
        "systemd-run",
        "--unit=micarray-run-0123456789ab.service",
        "--description=micarray script doa.py",
        "--quiet",
        "--wait",
        "--pipe",
        "--working-directory=/data/runs/0123456789ab",
        "--nice=5",
    ]
    assert argv[-4:] == ["--", "/usr/bin/python3", "-u", f"{SPEC.run_dir}/doa.py"]
    for expected in (
        "--uid=65534",
        "--gid=65534",
        f"--property=MemoryMax={300 * MIB}",
        "--property=MemorySwapMax=0",
        "--property=CPUQuota=150%",
        "--property=TasksMax=32",
        "--property=EnvironmentFile=/e.env",
        "--property=ReadWritePaths=/data/runs/0123456789ab",
    ):
        assert expected in argv
    assert not any("A=1" in arg for arg in argv)  # the token stays out of `ps`
    no_user = systemd_run_argv(SPEC, limits, None, "/usr/bin/python3", Path("/e.env"))
    assert not any(arg.startswith("--uid") for arg in no_user)


def test_systemd_environment_file() -> None:
    assert env_file_text({"B": 'say "hi"\\', "A": "x y"}) == 'A="x y"\nB="say \\"hi\\"\\\\"\n'
    with pytest.raises(LaunchError, match=r"^environment entry 'A' cannot be passed to systemd"):
        env_file_text({"A": "two\nlines"})


def test_systemd_unit_end_is_read() -> None:
    limits = RunLimits(memory_bytes=128 * MIB)
    killed = "Result=signal\nExecMainCode=2\nExecMainStatus=11\n"
    assert unit_end(killed, 1, limits) == (-11, None)
    oom = "Result=oom-kill\nExecMainCode=2\nExecMainStatus=9\n"
    assert unit_end(oom, 1, limits) == (-9, "memory limit of 128 MiB reached")
    exited = "Result=exit-code\nExecMainCode=1\nExecMainStatus=3\n"
    assert unit_end(exited, 3, limits) == (3, None)
    assert unit_end("", 255, limits) == (255, None)  # systemctl unreachable
    never = "Result=resources\nExecMainCode=0\nExecMainStatus=0\n"
    assert unit_end(never, 1, limits) == (1, "the run could not be started: result 'resources'")
    denied = "Result=success\nExecMainCode=0\nExecMainStatus=0\n"
    complaint = "Failed to start micarray-run@x.service: Access denied\n"
    assert unit_end(denied, 1, limits, complaint) == (
        1,
        "the run could not be started: Failed to start micarray-run@x.service: Access denied",
    )


def test_limits_are_checked() -> None:
    with pytest.raises(LaunchError, match=r"^memory limit 1000 bytes is too small; allowed"):
        RunLimits(memory_bytes=1000)
    with pytest.raises(LaunchError, match=r"^nice 25 is not allowed; use 0 to 19"):
        RunLimits(nice=25)
    with pytest.raises(LaunchError, match=r"^cpu_percent 0 is not allowed; use 1 to 6400"):
        RunLimits(cpu_percent=0)


@pytest.mark.skipif(not AS_ROOT, reason="user lookup matters only as root")
def test_unknown_run_user_is_named() -> None:
    with pytest.raises(LaunchError, match=r"^run user 'no-such-user' does not exist"):
        RlimitLauncher(RunLimits(user="no-such-user"))
    with pytest.raises(LaunchError, match=r"^run user 'root' is root"):
        SystemdRunLauncher(RunLimits(user="root"))


def test_default_launcher_without_systemd() -> None:
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd is PID 1 here")
    assert isinstance(default_launcher(), RlimitLauncher)
