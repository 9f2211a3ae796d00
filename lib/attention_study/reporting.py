"""Printing measured numbers in a form that re-execution reproduces exactly.

Chapters print claims that nbval compares character for character. Round-off at 1e-7 differs between
machines, so tiny errors are printed as the power of ten that bounds them, and other numbers with a
fixed number of significant digits.
"""

from __future__ import annotations

import math


def decade_bound(x: float) -> str:
    """The smallest power of ten ``>= |x|``, as text: ``decade_bound(3.2e-7) == '1e-06'``; 0 -> ``'0'``."""
    x = abs(float(x))
    if not math.isfinite(x):
        raise ValueError(f"decade_bound needs a finite number, got {x}")
    if x == 0.0:
        return "0"
    return f"1e{math.ceil(math.log10(x)):+03d}".replace("+", "")


def sig(x: float, digits: int = 2) -> str:
    """``x`` with ``digits`` significant digits, e.g. ``sig(0.012345) == '0.012'``."""
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    return f"{float(x):.{digits}g}"
