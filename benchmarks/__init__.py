"""Benchmarks: each figure is measured against a reference timed in the same run.

``python -m benchmarks`` (``make bench``, from the repository root) runs them all and writes
``docs/benchmarks.md``. This folder is not part of the installed package: it measures the
project, the project never imports it.
Every benchmark function returns row dicts with the keys of :data:`ROW_KEYS`:

* ``name``: what is measured, with its size;
* ``value``: our figure; ``reference``: the reference figure measured in the same run;
* ``ratio``: ``value / reference`` (for throughputs > 1 means ours is faster; for costs such as
  seconds or bytes < 1 means ours is cheaper);
* ``unit``: the unit of ``value`` and ``reference``;
* ``goal``: the target the figure is judged against (or ``"info"``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

ROW_KEYS = ("name", "value", "reference", "ratio", "unit", "goal")


def make_row(
    name: str, value: float, reference: float, unit: str, goal: str, *, digits: int = 4
) -> dict:
    """One benchmark row; ``ratio = value / reference`` (NaN when the reference is not > 0).

    Args:
        name: figure and its size, e.g.
            ``"T(w) via TargetBasis.score (BTC/USDT 1h, 50000 candles)"``.
        value: our figure, in ``unit``.
        reference: the reference figure, in ``unit``.
        unit: unit of value and reference.
        goal: the goal as text (``"info"`` when there is none).
        digits: significant digits kept for value and reference (the ratio keeps 4).
    """
    ratio = value / reference if reference > 0 else math.nan
    return {
        "name": name,
        "value": _round(value, digits),
        "reference": _round(reference, digits),
        "ratio": _round(ratio, 4),
        "unit": unit,
        "goal": goal,
    }


def _round(x: float, digits: int) -> float:
    """Round to ``digits`` significant digits (but never drop integer digits)."""
    x = float(x)
    if not math.isfinite(x) or x == 0:
        return x
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return round(x, decimals)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in seconds (``perf_counter``) of ``repeats`` calls of ``fn()``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
