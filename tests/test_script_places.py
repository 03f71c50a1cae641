"""A script works wherever it runs: by the device, over ssh, from a laptop; and survives a restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.guide import Script
from tests.server import BIN, ApplianceProcess, free_port
from tests.wsclient import browser, shut

SHOW_CONFIG = """
import browserinterface
{setup}
def new_config(buffer_frames, rate, channels, volume):
    print("config", buffer_frames, rate, channels, volume, flush=True)

browserinterface.register_when_new_config(new_config)
browserinterface.start()
"""


def _script(tmp_path: Path, name: str, setup: str, env: dict[str, str]) -> Script:
    path = tmp_path / name
    path.write_text(SHOW_CONFIG.format(setup=setup))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BI_")}
    clean.update(env)
    return Script(path, {**clean, "PATH": os.environ["PATH"]})


def test_over_ssh_on_the_device_it_needs_nothing(appliance: ApplianceProcess, tmp_path: Path) -> None:
    # The local token file stands where the service wrote it; no device, no token given.
    script = _script(tmp_path, "local.py", "", {"BI_LOCAL_FILE": str(appliance.data_dir / "local.json")})
    try:
        script.expect(r"^config \d+ \d+ \d+ \d+$")
    finally:
        script.proc.kill()
        script.wait()


def test_from_a_laptop_with_board_ip(appliance: ApplianceProcess, tmp_path: Path) -> None:
    token = appliance.token("laptop")
    for variable in ("bi_board_ip", "board_ip"):
        script = _script(
            tmp_path,
            f"{variable}.py",
            f"browserinterface.{variable} = {appliance.device!r}",
            {"BI_TOKEN": token},
        )
        try:
            script.expect(r"^config \d+ \d+ \d+ \d+$")
        finally:
            script.proc.kill()
            script.wait()


def test_a_refused_token_is_a_clear_error(appliance: ApplianceProcess, tmp_path: Path) -> None:
    script = _script(tmp_path, "bad.py", "", {"BI_DEVICE": appliance.device, "BI_TOKEN": "wrong"})
    assert script.wait(20) != 0
    out = script.output()
    assert "refused the token (HTTP 401)" in out, out


def test_the_script_reconnects_after_a_restart(appliance: ApplianceProcess, tmp_path: Path) -> None:
    token = appliance.token("restart")
    script = _script(tmp_path, "survivor.py", "", {"BI_DEVICE": appliance.device, "BI_TOKEN": token})
    try:
        script.expect(r"^config ")
        appliance.stop()
        appliance.start()
        script.expect(r"^config ", timeout=30)  # the configuration again, from the new daemon
        assert script.proc.poll() is None
    finally:
        script.interrupt()


def test_appliance_run_follows_a_script_started_by_the_device(
    appliance: ApplianceProcess, tmp_path: Path
) -> None:
    path = tmp_path / "hello_run.py"
    path.write_text(
        "import os, sys\n"
        "import browserinterface\n"
        "browserinterface.start()\n"
        "print('rate', browserinterface.rate, 'uid', os.getuid())\n"
        "print('to stderr', file=sys.stderr)\n"
        "browserinterface.stop()\n"
        "sys.exit(3)\n"
    )
    env = {**os.environ, "BI_LOCAL_FILE": str(appliance.data_dir / "local.json")}
    env.pop("BI_DEVICE", None)
    out = subprocess.run(
        [str(BIN / "appliance"), "run", str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 3, (out.stdout, out.stderr)
    rate, uid = out.stdout.split()[1], out.stdout.split()[3]
    assert int(rate) > 0
    if os.geteuid() == 0:
        assert int(uid) != 0, "a script run by the device must not run as root"
    assert "to stderr" in out.stderr
    assert "exited with status 3" in out.stderr


def test_no_device_and_no_local_service_is_explained(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BI_")}
    env["BI_LOCAL_FILE"] = str(tmp_path / "missing.json")
    env["XDG_DATA_HOME"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", "import browserinterface; browserinterface.start()"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    if not Path("/run/micarray/local.json").exists() and not Path("/var/lib/micarray/local.json").exists():
        assert "no device given and no appliance service runs on this machine" in out.stderr


async def test_data_sent_just_before_stop_arrives_once(appliance: ApplianceProcess, tmp_path: Path) -> None:
    token = appliance.token("quick")
    path = tmp_path / "quick.py"
    path.write_text(
        "import browserinterface\n"
        "browserinterface.inform_browser = True\n"
        "def tab(frames, rate, channels, volume):\n"
        "    chart = browserinterface.add_handler('Once', 'base:graph:bar', {'series': ['a']})\n"
        "    for i in range(50):\n"
        "        chart.send_data([{'x': i, 'y': i}])\n"
        "    browserinterface.stop()\n"
        "browserinterface.register_when_new_config(tab)\n"
        "browserinterface.start()\n"
    )
    env = {**os.environ, "BI_DEVICE": appliance.device, "BI_TOKEN": token}
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    ws, welcome = await browser(appliance)
    await shut(ws)
    tabs = [h for h in welcome["handlers"] if h["name"] == "Once"]
    assert len(tabs) == 1, ("the tab was made twice or not at all", welcome["handlers"], out.stderr)
    got = [d[0]["x"] for d in tabs[0]["history"]]
    assert got == list(range(50)), (got, out.stderr)


def _first_lines_until(argv: list[str], env: dict[str, str], needle: str, timeout: float = 30) -> str:
    """The output of a process up to the first line holding ``needle``; then it is stopped."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen: list[str] = []
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if needle in line:
                break
    finally:
        timer.cancel()
        proc.kill()
        proc.communicate()
    return "".join(seen)


def test_every_client_says_a_refused_token_and_a_missing_device_the_same_way(
    appliance: ApplianceProcess, tmp_path: Path
) -> None:
    """browserinterface, rtai and appliance run share one client: one line in words, no traceback."""
    path = tmp_path / "noop.py"
    path.write_text("print('never')\n")
    script = tmp_path / "show_config.py"
    script.write_text(SHOW_CONFIG.format(setup=""))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BI_")}
    closed = free_port()
    cases = ((appliance.device, "refused the token (HTTP 401)"), (f"127.0.0.1:{closed}", "cannot reach"))
    for device, words in cases:
        runs = {
            "appliance run": [str(BIN / "appliance"), "run", str(path)],
            "rtai": [str(BIN / "rtai"), "sdp", device, "--token", "wrong", "--port", "5004"],
            "script": [sys.executable, str(script)],
        }
        for who, argv in runs.items():
            run_env = {**env, "BI_DEVICE": device, "BI_TOKEN": "wrong", "PATH": os.environ["PATH"]}
            if who == "script" and words == "cannot reach":
                # A script keeps trying (the device may be restarting): it says so and waits.
                said = _first_lines_until(argv, run_env, words)
            else:
                out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=run_env)
                said = out.stdout + out.stderr
                assert out.returncode != 0, (who, said)
            assert words in said, (who, said)
            assert "Traceback" not in said, (who, said)
            assert f"the device 127.0.0.1 at {device}" in said, (who, said)


ENDINGS = {
    # How a script ends -> its exit status and what its output must show.
    "exit0_at_exit": ("def cb(b):\n    sys.exit(0)\nbi.register_handle_data(cb)\nbi.start()\n", 0, ""),
    "exit3_while_main_sleeps": (
        "def cb(b):\n    sys.exit(3)\nbi.register_handle_data(cb)\nbi.start()\n"
        "while True:\n    time.sleep(0.05)\n",
        3,
        "",
    ),
    "raise_in_callback": (
        "def cb(b):\n    raise ValueError('bad block')\nbi.register_handle_data(cb)\nbi.start()\n",
        1,
        "ValueError: bad block",
    ),
    "raise_after_start": (
        "bi.register_handle_data(lambda b: None)\nbi.start()\nraise KeyError('mine')\n",
        1,
        "KeyError",
    ),
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_a_script_ends_with_the_status_its_code_chose(
    appliance: ApplianceProcess, tmp_path: Path, ending: str
) -> None:
    body, status, shown = ENDINGS[ending]
    path = tmp_path / f"{ending}.py"
    path.write_text("import sys, time\nimport browserinterface as bi\n" + body)
    env = {**os.environ, "BI_DEVICE": appliance.device, "BI_TOKEN": appliance.token(ending)}
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == status, (out.returncode, out.stderr[-2000:])
    assert shown in out.stderr, out.stderr[-2000:]


def test_a_recording_asked_for_before_start_is_delivered(appliance: ApplianceProcess, tmp_path: Path) -> None:
    """record_audio() before start(), as the record_wav example does."""
    path = tmp_path / "early.py"
    path.write_text(
        "import browserinterface as bi\n"
        "def done(buffer):\n"
        "    print('recorded', buffer.shape[0], flush=True)\n"
        "    bi.stop()\n"
        "bi.record_audio(300, done)\n"
        "bi.start()\n"
        "bi.loop_callbacks()\n"
    )
    env = {**os.environ, "BI_DEVICE": appliance.device, "BI_TOKEN": appliance.token("early")}
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("recorded "), (out.stdout, out.stderr)
