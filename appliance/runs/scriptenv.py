"""The scripts' own Python environment: the pinned stack, plus what the user adds.

Scripts run with ``<data dir>/pyenv/bin/python``: a venv made without pip
whose one ``.pth`` file adds the service's site-packages behind its own.  So
a script sees the pinned stack (numpy, scipy, soundfile, pyroomacoustics,
matplotlib, browserinterface) and every package the user installed from
Settings, and an added package that needs a newer version of a pinned one
gets it in the scripts' venv, never in the service's: pip runs as
``pyenv/bin/python -m pip`` (pip itself comes from the service), so it
installs into ``pyenv`` and leaves anything outside it alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import site
import subprocess
import sys
import sysconfig
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError

log = logging.getLogger(__name__)

PYENV_DIR = "pyenv"
STACK_PTH = "micarray-stack.pth"
#: Seconds one ``pip install`` may take before it is stopped.
INSTALL_TIMEOUT_S = 900.0
#: Output lines of an install kept for the page.
LOG_LINES = 200
#: A requirement as the page may give it: a PyPI name, extras, one version clause.
_REQUIREMENT = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?"
    r"(?:\[[A-Za-z0-9._-]+(?:,[A-Za-z0-9._-]+)*\])?"
    r"(?:(?:==|>=|<=|~=|!=|<|>)[A-Za-z0-9.*+!_-]{1,40})?$"
)


class PackageError(ApplianceError, ValueError):
    """A package request the device refuses (bad name, an install already going)."""

    code = "package"


def check_requirement(text: str) -> str:
    """``text`` if it is one requirement like ``librosa`` or ``mne==1.7.1``, else PackageError."""
    req = text.strip()
    if not _REQUIREMENT.match(req):
        raise PackageError(
            f"{text[:80]!r} is not a package name; give one name from PyPI, optionally with extras "
            "and one version (librosa, mne==1.7.1, scikit-learn>=1.4); no paths, URLs or options"
        )
    return req


@dataclass
class Install:
    """One ``pip install`` from Settings."""

    requirement: str
    started: float
    state: str = "running"
    """``running``, ``installed`` or ``failed``."""
    output: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))

    def to_json(self) -> dict[str, Any]:
        """For the page."""
        return {
            "requirement": self.requirement,
            "started": self.started,
            "state": self.state,
            "output": list(self.output),
        }


class ScriptEnv:
    """The venv scripts run in, and installs into it."""

    def __init__(self, data_dir: Path, pip_args: tuple[str, ...] = ()) -> None:
        self.root = data_dir / PYENV_DIR
        self.pip_args = pip_args
        """Extra pip arguments (an index mirror; tests use a local wheel folder)."""
        self.install: Install | None = None

    @property
    def python(self) -> Path:
        """The scripts' interpreter."""
        return self.root / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        """Where the user's packages go."""
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        return self.root / "lib" / version / "site-packages"

    def ensure(self) -> Path:
        """Make the venv if it is not there (blocking, about a second); returns its interpreter."""
        if not self.python.exists():
            import venv  # noqa: PLC0415 (once per device; the service's start does without it)

            venv.EnvBuilder(with_pip=False, symlinks=True, clear=False).create(self.root)
            log.info("made the scripts' Python environment in %s", self.root)
        # Rewritten at every start: the service's own paths change with an update.
        lines = [f"import site; site.addsitedir({path!r})" for path in service_site_dirs()]
        pth = self.site_packages / STACK_PTH
        text = "\n".join(lines) + "\n"
        if not pth.exists() or pth.read_text() != text:
            pth.write_text(text)
        return self.python

    def packages(self) -> list[dict[str, str]]:
        """Every package a script can import: ``{"name","version","where"}``, ``added`` or ``stack``."""
        # Loaded here, with the page that lists packages: with email and zipfile it is
        # a third of a second of a Pi Zero's start that the web app need not wait for.
        import importlib.metadata  # noqa: PLC0415

        found: dict[str, dict[str, str]] = {}
        places = [("added", [str(self.site_packages)]), ("stack", service_site_dirs())]
        for where, paths in places:
            for dist in importlib.metadata.distributions(path=paths):
                name = dist.metadata["Name"]
                if name and name.lower() not in found:
                    found[name.lower()] = {"name": name, "version": dist.version, "where": where}
        return sorted(found.values(), key=lambda p: p["name"].lower())

    def start_install(self, requirement: str) -> Install:
        """Begin ``pip install requirement`` into the venv; one at a time."""
        req = check_requirement(requirement)
        if self.install is not None and self.install.state == "running":
            raise PackageError(f"{self.install.requirement} is being installed; wait until it is done")
        self.install = Install(req, time.time())
        asyncio.get_running_loop().create_task(self._pip(self.install))
        return self.install

    async def _pip(self, job: Install) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.ensure)
        argv = [str(self.python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
        argv += ["--timeout", "20", *self.pip_args, job.requirement]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PIP_NO_CACHE_DIR": "1"}
        log.info("installing %s for scripts", job.requirement)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(INSTALL_TIMEOUT_S):
                while line := await proc.stdout.readline():
                    job.output.append(line.decode("utf-8", "replace").rstrip())
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            job.output.append(f"stopped: the install took longer than {INSTALL_TIMEOUT_S:.0f} s")
        job.state = "installed" if proc.returncode == 0 else "failed"
        log.info("install of %s for scripts: %s", job.requirement, job.state)


def service_site_dirs() -> list[str]:
    """The service's own site-packages (its venv's), which the scripts' venv sees behind its own."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    seen: list[str] = []
    for d in dirs:
        if d not in seen and Path(d).is_dir():
            seen.append(d)
    return seen
