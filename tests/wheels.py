"""Real wheels for the tests, built by pip from a project folder, offline."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

FUTURE = "from __future__ import annotations\n"


def pip_wheel(project: Path, out: Path, timeout: float = 300) -> Path:
    """``pip wheel`` of the project in ``project`` into ``out``; the one wheel it made.

    No dependencies and no build isolation, so the build uses the setuptools
    pinned in this environment and needs no network.
    """
    before = set(out.glob("*.whl"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
         str(project)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"pip wheel {project} failed:\n{done.stdout}{done.stderr}"
    [wheel] = set(out.glob("*.whl")) - before
    return wheel


def appliance_wheel(tree: Path, out: Path, version: str, breakage: str = "") -> Path:
    """A wheel of the appliance in ``tree`` (a copy of the project, changed in place) at ``version``.

    ``breakage`` is code put first in ``appliance/service.py``, after its
    ``__future__`` import: a release broken the way a bad one would be.
    """
    pyproject = tree / "pyproject.toml"
    text, changed = re.subn(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject.read_text(), count=1)
    assert changed == 1, f"no version line in {pyproject}"
    pyproject.write_text(text)
    if breakage:
        service = tree / "appliance/service.py"
        head, sep, rest = service.read_text().partition(FUTURE)
        assert sep, f"no {FUTURE!r} in {service}"
        service.write_text(head + sep + breakage + rest)
    return pip_wheel(tree, out)
