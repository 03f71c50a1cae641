"""Checks of a chart's parameters where they enter (``add_handler``), before a tab exists.

Only what would make a tab unusable or unbounded is refused here, with the
same words the page would show; the page checks the rest when it draws.
Today: the polar types' angles (``numPoints`` or ``legend``) and orientation,
and the raster types' axis range and unit (``xRange``, ``xLog``, ``unit``).
"""

from __future__ import annotations

import math
from typing import Any

from appliance.errors import ApplianceError

MAX_POLAR_ANGLES = 100_000
"""Most angles a polar chart may have (the page's bound too)."""
ORIENTATION_WORDS = ("clockwise", "counterclockwise")


class ParameterError(ApplianceError):
    """A chart parameter that cannot work; the message says what is accepted."""

    code = "bad_handler"


def check_parameters(handler_type: str, parameters: dict[str, Any]) -> None:
    """Raise ParameterError for parameters the type cannot draw with."""
    if handler_type.startswith("base:polar:"):
        _check_polar(parameters)
    elif handler_type in ("base:heatmap", "base:spectrogram"):
        _check_raster(parameters)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _check_polar(parameters: dict[str, Any]) -> None:
    count = parameters.get("numPoints")
    if count is not None:
        n = _number(count)
        if n is None or n != int(n) or not 1 <= n <= MAX_POLAR_ANGLES:
            raise ParameterError(
                f"numPoints must be a whole number from 1 to {MAX_POLAR_ANGLES}, not {count!r}"
            )
    legend = parameters.get("legend")
    if legend is not None:
        _check_legend(legend)
    orientation = parameters.get("orientation")
    if orientation is not None and orientation not in ORIENTATION_WORDS and _number(orientation) is None:
        raise ParameterError(
            f"orientation must be degrees (counter-clockwise from 3 o'clock) or "
            f"'clockwise' / 'counterclockwise', not {orientation!r}"
        )
    for name in ("rmin", "rmax"):
        value = parameters.get(name)
        if value is not None and _number(value) is None:
            raise ParameterError(f"{name} must be a number, not {value!r}")


def _check_legend(legend: Any) -> None:
    if not isinstance(legend, dict):
        raise ParameterError(f"legend must be {{from, to, step}} in degrees, not {legend!r}")
    start = _number(legend.get("from", 0))
    end = _number(legend.get("to", 360))
    step = _number(legend.get("step"))
    if start is None or end is None or step is None or step <= 0 or end <= start:
        raise ParameterError(
            f"legend {legend!r} does not give angles; expected from < to and a step above 0 (degrees)"
        )
    if (end - start) / step > MAX_POLAR_ANGLES:
        raise ParameterError(
            f"legend {legend!r} gives {math.ceil((end - start) / step)} angles; at most {MAX_POLAR_ANGLES}"
        )


MAX_UNIT_CHARS = 16


def _check_raster(parameters: dict[str, Any]) -> None:
    unit = parameters.get("unit")
    if unit is not None and (not isinstance(unit, str) or len(unit) > MAX_UNIT_CHARS):
        raise ParameterError(
            f"unit must be a short text such as 'dB' (at most {MAX_UNIT_CHARS} characters), not {unit!r}"
        )
    span = parameters.get("xRange")
    if span is None:
        return
    log = parameters.get("xLog") is True
    left, right = [_number(v) for v in span] if isinstance(span, list) and len(span) == 2 else (None, None)
    if left is None or right is None or right <= left or (log and left <= 0):
        raise ParameterError(
            f"xRange must be [left, right] with left < right (the x of the first column's left edge "
            f"and of the last column's right edge){', left above 0 for xLog' if log else ''}, not {span!r}"
        )
