"""Figures for the device panel: levels, CPU, temperature, disk, latency."""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from appliance.capture.block import Block

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
FULL_SCALE = 32768.0


class Levels:
    """Per-channel peaks since the last ``take``; fed on the loop per block."""

    def __init__(self) -> None:
        self._peak: np.ndarray | None = None
        self._latency_sum = 0.0
        self._latency_n = 0

    def add(self, block: Block) -> None:
        data = block.data
        # max and -min instead of abs(): abs(-32768) overflows int16.
        peak = np.maximum(data.max(axis=0).astype(np.int32), -data.min(axis=0).astype(np.int32))
        if self._peak is None or self._peak.shape != peak.shape:
            self._peak = peak
        else:
            np.maximum(self._peak, peak, out=self._peak)
        self._latency_sum += time.time() - block.time
        self._latency_n += 1

    def take_dbfs(self) -> list[float]:
        """Peak level per channel in dBFS (-120 for silence) since the last call."""
        peak, self._peak = self._peak, None
        if peak is None:
            return []
        return [round(20 * math.log10(max(int(p), 1) / FULL_SCALE), 1) for p in peak]

    def take_latency_ms(self) -> float | None:
        """Mean time from capture to the loop, in ms, since the last call."""
        if not self._latency_n:
            return None
        mean = self._latency_sum / self._latency_n
        self._latency_sum, self._latency_n = 0.0, 0
        return round(mean * 1000, 2)


class CpuMeter:
    """This process's CPU use as a percentage of one core between calls."""

    def __init__(self) -> None:
        self._last = (time.monotonic(), _cpu_seconds())

    def take_percent(self) -> float:
        now, cpu = time.monotonic(), _cpu_seconds()
        wall = now - self._last[0]
        used = cpu - self._last[1]
        self._last = (now, cpu)
        return round(100 * used / wall, 1) if wall > 0 else 0.0


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def temperature_c() -> float | None:
    """The SoC temperature, or None when the board reports none."""
    try:
        return round(int(THERMAL_ZONE.read_text().strip()) / 1000, 1)
    except (OSError, ValueError):
        return None


def disk_free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free
