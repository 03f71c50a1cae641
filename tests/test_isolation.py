"""Hostile scripts in the bubblewrap sandbox: each thing one tried on an unsandboxed device.

Every test runs a real script in a real sandbox (``bwrap``) as the service
would without systemd, and checks from outside what it could reach.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.runs import sandbox
from appliance.runs.launchbase import LaunchError, RunLimits
from appliance.runs.launcher import RlimitLauncher, group_alive
from appliance.runs.runner import RunManager
from tests import netns
from tests.isolation_support import Events, code, make_root, sandboxed

pytestmark = [
    pytest.mark.skipif(not sandbox.bwrap_usable(), reason="needs bubblewrap with user namespaces"),
    pytest.mark.skipif(os.geteuid() != 0, reason="a uid per run needs root"),
]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def top() -> Iterator[Path]:
    path = make_root()
    yield path
    shutil.rmtree(path)


async def start_ready(manager: RunManager, events: Events, name: str, src: str) -> str:
    info = await manager.start(name, code(src))
    await events.until(lambda: "ready" in events.texts(info.id) or manager.get(info.id).ended)  # type: ignore[union-attr]
    assert "ready" in events.texts(info.id), events.texts(info.id, "stderr")
    return info.id


async def finished(manager: RunManager, events: Events, name: str, src: str) -> list[str]:
    info = await manager.wait((await manager.start(name, code(src))).id)
    assert info.state == "finished", events.texts(info.id, "stderr")
    return events.texts(info.id)


SLEEPER = """
import time
print("ready")
time.sleep(60)
"""


def test_another_runs_token_and_processes_are_out_of_reach(top: Path) -> None:
    tokens: dict[str, str] = {}

    def env(run_id: str, name: str) -> dict[str, str]:
        tokens[run_id] = "mic_" + secrets.token_urlsafe(16)
        return {"BI_TOKEN": tokens[run_id]}

    async def body(manager: RunManager, events: Events) -> None:
        victim = await start_ready(manager, events, "victim", SLEEPER)
        victim_pid = manager.list()[0].pid
        thief = f"""
        import os, signal
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            for name in ("environ", "cmdline"):
                try:
                    found.append(open(f"/proc/{{pid}}/{{name}}", "rb").read())
                except OSError:
                    pass
        print("pids", len([p for p in os.listdir("/proc") if p.isdigit()]))
        print("stolen" if b"{tokens[victim]}" in b"".join(found) else "nothing")
        try:
            os.kill({victim_pid}, signal.SIGKILL)
            print("killed")
        except ProcessLookupError:
            print("no such process")
        print("uid", os.getuid())
        """
        lines = await finished(manager, events, "thief", thief)
        assert lines[1:3] == ["nothing", "no such process"]
        # The relay and the script, and bubblewrap's init: nothing of anyone else.
        assert int(lines[0].split()[1]) <= 4
        assert not manager.get(victim).ended  # type: ignore[union-attr]
        victim_uid = (top / "runs" / victim).stat().st_uid
        assert int(lines[3].split()[1]) not in (0, victim_uid)

    sandboxed(top, body, env=env)


def test_saved_scripts_recordings_and_other_runs_files_are_not_there(top: Path) -> None:
    data = top / "data"
    for name in ("scripts/secret.py", "recordings/r.wav", "tokens.json"):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text("private")
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)

    async def body(manager: RunManager, events: Events) -> None:
        other = await start_ready(manager, events, "other", 'open("mine.txt", "w").write("x")\n' + SLEEPER)
        prying = f"""
        import os
        for path in ("{data}/scripts/secret.py", "{data}/recordings/r.wav", "{data}/tokens.json",
                     "{top}/runs/{other}/mine.txt", "{top}/runs/{other}/other.py"):
            try:
                open(path).read()
                print("read", path)
            except OSError as exc:
                print("refused", type(exc).__name__)
        print("listing", os.listdir("{top}/runs") if os.path.isdir("{top}/runs") else None)
        """
        lines = await finished(manager, events, "prying", prying)
        assert [line.split()[0] for line in lines[:5]] == ["refused"] * 5, lines
        # Only its own directory shows in the run root.
        assert lines[5] == f"listing {[p.name for p in (top / 'runs').iterdir() if p.name in lines[5]]}"
        assert other not in lines[5]

    sandboxed(top, body, hidden=(data,))


def test_tmp_shm_and_var_tmp_are_private_and_only_the_run_dir_is_writable(top: Path) -> None:
    marker = "isolation-" + secrets.token_hex(4)
    writer = f"""
    import os, sys
    for d in ("/tmp", "/dev/shm", "/var/tmp", "."):
        open(os.path.join(d, "{marker}"), "w").write("x")
        print("wrote", d)
    for d in (sys.prefix, "/etc", "/usr/lib"):
        try:
            open(os.path.join(d, "{marker}"), "w").write("x")
            print("wrote", d)
        except OSError as exc:
            print("refused", d, type(exc).__name__)
    """
    reader = f"""
    import os
    print([d for d in ("/tmp", "/dev/shm", "/var/tmp") if os.path.exists(os.path.join(d, "{marker}"))])
    """

    async def body(manager: RunManager, events: Events) -> None:
        lines = await finished(manager, events, "writer", writer)
        assert lines[:4] == ["wrote /tmp", "wrote /dev/shm", "wrote /var/tmp", "wrote ."]
        assert [line.split()[0] for line in lines[4:]] == ["refused"] * 3, lines
        assert await finished(manager, events, "reader", reader) == ["[]"]

    sandboxed(top, body)
    for d in ("/tmp", "/dev/shm", "/var/tmp", sys.prefix, "/etc", "/usr/lib"):
        assert not Path(d, marker).exists()


def _marked_processes(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_a_setsid_child_is_gone_within_two_seconds_of_stop(top: Path) -> None:
    marker = "escapee-" + secrets.token_hex(4)
    src = f"""
    import os, subprocess, sys, time
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)")
    subprocess.Popen([sys.executable, "-c", stubborn, "{marker}"], start_new_session=True)
    if os.fork() == 0:
        os.setsid()
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "{marker}"])
    print("ready")
    time.sleep(600)
    """

    async def body(manager: RunManager, events: Events) -> float:
        run_id = await start_ready(manager, events, "escape", src)
        deadline = time.monotonic() + 10
        while len(_marked_processes(marker)) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(_marked_processes(marker)) == 2
        began = time.monotonic()
        info = await manager.stop(run_id)
        took = time.monotonic() - began
        assert not group_alive(info.pid)
        return took

    try:
        took = sandboxed(top, body)
        assert _marked_processes(marker) == []
        assert took < 2.0
    finally:
        for pid in _marked_processes(marker):
            os.kill(pid, signal.SIGKILL)


def test_the_devices_api_port_is_reached_through_the_relay(top: Path) -> None:
    async def body(manager: RunManager, events: Events) -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"device:" + await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        manager._env_for_run = lambda run_id, name: {"BI_DEVICE": f"127.0.0.1:{port}"}
        src = """
        import os, socket
        host, port = os.environ["BI_DEVICE"].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"hello\\n")
            print(s.makefile().readline().strip())
        """
        try:
            assert await finished(manager, events, "api", src) == ["device:hello"]
        finally:
            server.close()

    sandboxed(top, body)


def test_stop_still_interrupts_the_script_first(top: Path) -> None:
    src = """
    import time
    try:
        print("ready")
        time.sleep(60)
    except KeyboardInterrupt:
        print("interrupted, tidying up")
        raise
    """

    async def body(manager: RunManager, events: Events) -> None:
        run_id = await start_ready(manager, events, "tidy", src)
        info = await manager.stop(run_id)
        assert (info.state, info.signal) == ("stopped", "SIGINT")
        assert "interrupted, tidying up" in events.texts(run_id)
        suicide = "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n"
        term = await manager.wait((await manager.start("t", suicide)).id)
        assert (term.state, term.signal, term.reason) == ("failed", "SIGTERM", "killed by SIGTERM")

    sandboxed(top, body)


HOSTILE_CONNECT = """
import socket, sys
try:
    socket.create_connection(("{address}", {port}), timeout=5).close()
    print("connected")
except OSError as exc:
    print("refused", type(exc).__name__)
"""


@netns.requires_netns
def test_a_non_loopback_address_is_out_of_reach_unless_allowed(tmp_path: Path) -> None:
    with netns.veth_pair() as (device, peer):
        listener = peer.spawn(
            [
                sys.executable,
                "-c",
                "import socket, sys; s = socket.create_server(('0.0.0.0', 7001)); "
                "print('listening', file=sys.stderr, flush=True)\n"
                "while True: s.accept()[0].close()",
            ]
        )
        netns.wait_for_line(listener, "listening")
        script = tmp_path / "hostile.py"
        script.write_text(HOSTILE_CONNECT.format(address=peer.address, port=7001))
        script.chmod(0o644)
        results = {}
        for network in ("api", "all"):
            out = device.run(
                [sys.executable, "-m", "tests.isolation_support", network, str(script)], cwd=str(REPO)
            )
            results[network] = json.loads(out.strip().splitlines()[-1])
    assert results["api"][0].startswith("refused"), results
    # The same script with every network allowed does connect: the wall is the sandbox's.
    assert results["all"] == ["connected"], results


def test_a_bad_network_setting_is_refused() -> None:
    with pytest.raises(LaunchError, match=r"^network 'lan' is not allowed; use api or all"):
        RunLimits(network="lan")
    assert RlimitLauncher(sandbox=True).sandboxed


def test_sandbox_argv_hides_the_data_dir_and_binds_only_the_run_dir(tmp_path: Path) -> None:
    argv = sandbox.bwrap_argv(tmp_path / "run", "api", hidden=(tmp_path / "data",))
    assert "--unshare-net" in argv and "--unshare-pid" in argv and "--die-with-parent" in argv
    binds = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert binds == [str(tmp_path / "run")]
    assert argv[argv.index(str(tmp_path / "data")) - 1] == "--tmpfs"
    assert "--unshare-net" not in sandbox.bwrap_argv(tmp_path / "run", "all")
