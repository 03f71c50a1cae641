"""Running the guide's examples (docs/browserinterface.md) as scripts."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "browserinterface.md"


def guide_examples() -> dict[str, str]:
    """``# example: NAME`` code blocks of the guide, by name."""
    blocks = re.findall(r"```python\n(# example: (\S+)\n.*?)```", GUIDE.read_text(), re.S)
    return {name: code for code, name in blocks}


class Script:
    """A script in its own process; its output lines are read on a thread."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env},
            cwd=path.parent,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """The first new output line matching ``pattern``; fails with all output on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                if left <= 0:
                    raise AssertionError(
                        f"no line matching {pattern!r}; output:\n" + "\n".join(self.seen)
                    ) from None
                continue
            if line is None:
                raise AssertionError(
                    f"script ended ({self.proc.wait()}) before {pattern!r}; output:\n" + "\n".join(self.seen)
                )
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def interrupt(self, timeout: float = 10.0) -> int:
        """Ctrl-C, as in a terminal; the exit status."""
        self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float = 10.0) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(timeout=5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        return code

    def output(self) -> str:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return "\n".join(self.seen)
