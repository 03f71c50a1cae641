"""A real ``appliance serve`` in a subprocess, for tests that need the whole device."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 30.0


#: Lines that mean something went wrong in the service, whatever the test did.
ALARMS = re.compile(
    r"Traceback \(most recent call last\)| (ERROR|CRITICAL) | WARNING +(py\.warnings|asyncio)\b"
)


def _alarming(line: str) -> bool:
    return ALARMS.search(line) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


class ApplianceProcess:
    """``appliance serve`` on a free port with its own data directory."""

    def __init__(self, data_dir: Path, source: str = "sim", port: int | None = None, *extra: str) -> None:
        self.data_dir = data_dir
        self.source = source
        self.port = port or free_port()
        self.extra = extra
        self.log_path = data_dir.parent / f"{data_dir.name}-serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.expected: list[re.Pattern[str]] = []
        """Log lines at ERROR level (or warnings of Python's) that this test provokes on purpose."""

    @property
    def device(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The web app's base URL, without a trailing slash."""
        return f"http://{self.device}"

    def start(self) -> ApplianceProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(BIN / "appliance"), "serve", "--source", self.source, "--http-port", str(self.port),
            "--bind", "127.0.0.1", "--data-dir", str(self.data_dir), "--no-mdns", *self.extra,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)
        with self.log_path.open("ab") as log:
            # Its own process group, so stopping it also ends the script runs it started.
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
            )
        wait_for_port(self.port, self.proc)
        return self

    def token(self, name: str = "test") -> str:
        out = subprocess.run(
            [str(BIN / "appliance"), "token", "new", name, "--data-dir", str(self.data_dir)],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip().splitlines()[-1]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def expect(self, pattern: str) -> None:
        """Declare that the log may hold lines matching ``pattern`` at ERROR level."""
        self.expected.append(re.compile(pattern))

    def assert_clean_log(self) -> None:
        """Fail when the service logged a traceback, an error or a Python warning not expected."""
        bad = [line for line in self.log().splitlines() if _alarming(line)]
        bad = [line for line in bad if not any(p.search(line) for p in self.expected)]
        assert not bad, f"the service's log ({self.log_path}) holds:\n" + "\n".join(bad[:20])

    def restart(self) -> None:
        """Stop, then start again on the same port and data directory."""
        self.stop()
        self.start()


@contextmanager
def serving(server: ApplianceProcess) -> Iterator[ApplianceProcess]:
    """``server`` started for the block and stopped after; an alarm in its log fails the test."""
    try:
        server.start()
        yield server
    finally:
        server.stop()
    server.assert_clean_log()
