"""Tokens without the command line: ``rtai login``, the per-user token file, BI_TOKEN and RTAI_TOKEN."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from browserinterface.credentials import CredentialsError, device_key, find_token, save_token
from tests.server import BIN, ApplianceProcess, serving

RTAI = str(BIN / "rtai")

SCRIPT = """
import browserinterface
def recorded(buffer):
    print("recorded", buffer.shape[1])
    browserinterface.stop()
browserinterface.start()
browserinterface.record_audio(100, recorded)
browserinterface.loop_callbacks()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApplianceProcess]:
    with serving(ApplianceProcess(tmp_path_factory.mktemp("tokens") / "data", "sim")) as proc:
        yield proc


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment with its own XDG config home and no token variables."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("BI_TOKEN", "RTAI_TOKEN", "BI_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    return dict(os.environ)


def run(argv: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, timeout=60, check=False)


def listen(
    server: ApplianceProcess, env: dict[str, str], out: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run([RTAI, "listen", server.device, "--duration", "0.3", "--out", str(out), *extra], env)


def test_login_saves_a_checked_token_that_rtai_and_scripts_then_use(
    server: ApplianceProcess, home: dict[str, str], tmp_path: Path
) -> None:
    token = server.token("login")
    saved = run([RTAI, "login", server.device], home, stdin=token + "\n")
    assert saved.returncode == 0, saved.stderr
    path = tmp_path / "config" / "micarray" / "tokens.json"
    assert f"saved the token for {server.device} in {path}" in saved.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"devices": {server.device: token}}

    got = listen(server, home, tmp_path / "a.wav")
    assert got.returncode == 0, got.stderr
    assert "shows in `ps`" not in got.stderr
    with wave.open(str(tmp_path / "a.wav")) as w:
        assert w.getnframes() > 0

    script = tmp_path / "script.py"
    script.write_text(f"import browserinterface\nbrowserinterface.bi_board_ip = {server.device!r}\n{SCRIPT}")
    out = run([sys.executable, str(script)], home)
    assert out.returncode == 0 and out.stdout.startswith("recorded"), out.stderr


def test_a_refused_token_is_not_saved(server: ApplianceProcess, home: dict[str, str], tmp_path: Path) -> None:
    refused = run([RTAI, "login", server.device], home, stdin="mic_not-a-token\n")
    assert refused.returncode == 1
    assert f"the device 127.0.0.1 at {server.device} refused the token (HTTP 401)" in refused.stderr
    assert "nothing saved" in refused.stderr
    assert not (tmp_path / "config" / "micarray" / "tokens.json").exists()


def test_both_variables_work_for_both_tools(
    server: ApplianceProcess, home: dict[str, str], tmp_path: Path
) -> None:
    token = server.token("env")
    got = listen(server, {**home, "BI_TOKEN": token}, tmp_path / "b.wav")
    assert got.returncode == 0, got.stderr
    script = tmp_path / "script.py"
    script.write_text(f"import browserinterface\nbrowserinterface.bi_board_ip = {server.device!r}\n{SCRIPT}")
    out = run([sys.executable, str(script)], {**home, "RTAI_TOKEN": token})
    assert out.returncode == 0 and out.stdout.startswith("recorded"), out.stderr
    # The tool's own variable wins when both are set.
    both = {**home, "RTAI_TOKEN": token, "BI_TOKEN": "mic_wrong"}
    assert listen(server, both, tmp_path / "c.wav").returncode == 0


def test_a_token_on_the_command_line_works_with_a_note(
    server: ApplianceProcess, home: dict[str, str], tmp_path: Path
) -> None:
    token = server.token("argv")
    got = listen(server, home, tmp_path / "d.wav", f"--token={token}")
    assert got.returncode == 0, got.stderr
    assert "note: a token on the command line shows in `ps` to other users of this machine" in got.stderr


def test_no_token_anywhere_says_how_to_get_one(
    server: ApplianceProcess, home: dict[str, str], tmp_path: Path
) -> None:
    got = listen(server, home, tmp_path / "e.wav")
    assert got.returncode == 1
    assert f"no token for {server.device}: run `rtai login {server.device}` once" in got.stderr


def test_token_file_rules(home: dict[str, str], tmp_path: Path) -> None:
    assert device_key("Lab.local.") == "lab"
    assert device_key("lab.local:8080") == "lab:8080"
    path = save_token("lab.local", "mic_a")
    save_token("10.0.0.5:9000", "mic_b")
    assert find_token("LAB.local") is not None and find_token("LAB.local").token == "mic_a"  # type: ignore[union-attr]
    assert find_token("lab.local:8080").token == "mic_a"  # type: ignore[union-attr]  # host alone matches
    assert find_token("10.0.0.5:9000").token == "mic_b"  # type: ignore[union-attr]
    assert find_token("other.local") is None
    with pytest.raises(CredentialsError, match="one word without spaces"):
        save_token("lab.local", "mic a")
    # Readable by others: refused, as ssh refuses such a key.
    path.chmod(0o644)
    with pytest.raises(
        CredentialsError, match=rf"can be read by other users \(mode 0644\); run chmod 600 {path}"
    ):
        find_token("lab.local")
    path.chmod(0o600)
    path.write_text("{not json")
    with pytest.raises(CredentialsError, match="is not understood"):
        find_token("lab.local")
