"""Every benchmark runs to its end in smoke mode, so none can rot between releases."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(900)
def test_every_benchmark_runs_in_smoke_mode() -> None:
    names = sorted(m.name for m in pkgutil.iter_modules([str(ROOT / "bench")]) if not m.name.startswith("_"))
    assert len(names) >= 6, names
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in names:
        assert f"== {name}\n" in proc.stdout, (name, proc.stdout[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
