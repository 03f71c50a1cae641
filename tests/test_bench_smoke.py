"""Every benchmark runs to its end in smoke mode, so none can rot between releases.

One test a benchmark, each its own ``python -m bench --smoke NAME``: a failure
names the benchmark.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAMES = sorted(m.name for m in pkgutil.iter_modules([str(ROOT / "bench")]) if not m.name.startswith("_"))


def test_the_benchmarks_are_found() -> None:
    assert len(NAMES) >= 6, NAMES


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", NAMES)
def test_the_benchmark_runs_in_smoke_mode(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"== {name}\n" in proc.stdout, proc.stdout[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
