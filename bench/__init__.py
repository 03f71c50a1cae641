"""Benchmarks: they print figures and ratios, and never fail on a time.

``python -m bench --smoke`` runs each one briefly (spans and counts from
:func:`span` and :func:`count`), so ``make test`` proves none has rotted.
"""

from __future__ import annotations

import os

SMOKE_ENV = "MICARRAY_BENCH_SMOKE"
SMOKE = os.environ.get(SMOKE_ENV) == "1"
"""True when the benchmarks run only to prove they still work (figures are meaningless)."""


def span(seconds: float, smoke: float = 0.5) -> float:
    """A measurement window: ``seconds``, or ``smoke`` in smoke mode."""
    return smoke if SMOKE else seconds


def count(n: int, smoke: int = 1) -> int:
    """A number of repetitions: ``n``, or ``smoke`` in smoke mode."""
    return smoke if SMOKE else n
