"""Capture devices for tests, made with ALSA's `file` plugin.

alsa-lib reads ``ALSA_CONFIG_PATH`` each time it checks its configuration
and reloads when the list of files or a file's identity (inode, size, time)
changes, so a test can point it at its own asoundrc in-process and make a
device "appear" by atomically replacing that file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TEMPLATE = Path(__file__).with_name("capture.asoundrc.in")
SYSTEM_CONFIG = "/usr/share/alsa/alsa.conf"


class AlsaConfig:
    """A test asoundrc that ALSA reads after its system configuration."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.devices: dict[str, Path] = {}
        self._write()

    def add(self, name: str, infile: Path) -> None:
        """Define capture device ``name`` reading the raw samples in ``infile``."""
        self.devices[name] = infile
        self._write()

    def remove(self, name: str) -> None:
        """Drop device ``name`` from the configuration."""
        del self.devices[name]
        self._write()

    def _write(self) -> None:
        text = "# test devices\n" + "".join(
            TEMPLATE.read_text().replace("@NAME@", name).replace("@INFILE@", str(infile))
            for name, infile in self.devices.items()
        )
        # A new inode each time, so alsa-lib notices the change even within one second.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)


def use_test_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AlsaConfig:
    """An empty test asoundrc in force for this test (monkeypatch restores
    ALSA_CONFIG_PATH after it); call from a fixture."""
    config = AlsaConfig(tmp_path / "asoundrc")
    monkeypatch.setenv("ALSA_CONFIG_PATH", f"{SYSTEM_CONFIG}:{config.path}")
    return config
