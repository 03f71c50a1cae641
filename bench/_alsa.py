"""A real ALSA capture device for benchmarks: the ``file`` plugin over ``null``.

It reads a raw file of noise and has no clock of its own, so the daemon paces
it to real time, as a card's clock would.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tests.alsa import SYSTEM_CONFIG, AlsaConfig


def file_device(root: Path, name: str, channels: int, rate: int, seconds: float) -> None:
    """Make ALSA device ``name`` (``alsa:NAME``): ``seconds`` of ``channels`` channels of noise at
    ``rate``, for this process and what it starts from now on (``ALSA_CONFIG_PATH``)."""
    raw = root / f"{name}.raw"
    noise = np.random.default_rng(3).integers(-3000, 3000, size=(rate, channels), dtype=np.int16)
    with raw.open("wb") as out:
        for _ in range(max(1, int(np.ceil(seconds)))):
            noise.astype("<i2").tofile(out)
    alsa = AlsaConfig(root / "asoundrc")
    alsa.add(name, raw)
    os.environ["ALSA_CONFIG_PATH"] = f"{SYSTEM_CONFIG}:{alsa.path}"
