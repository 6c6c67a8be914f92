"""What counts as a number in files nobody wrote by hand (summaries, state.json, artifact indexes)."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> bool:
    """A real, finite int or float; bools, NaN, infinities, strings and None are not."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def finite_or_none(value: Any) -> float | None:
    """`value` as a float when it is finite, else None."""
    return float(value) if finite(value) else None
