"""The objective interface: a pure function of a backtest's metrics dict."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    """One study objective.

    Attributes:
        name: registry name (the ``study.objective`` config value).
        directions: ``"maximize"``/``"minimize"`` per value; more than one = multi-objective.
        fn: metrics dict -> tuple of floats (one per direction).
        description: one line for ``--help`` and the report.
    """

    name: str
    directions: tuple[str, ...]
    fn: Callable[[Mapping[str, float]], tuple[float, ...]]
    description: str

    @property
    def n_objectives(self) -> int:
        return len(self.directions)

    def __call__(self, metrics: Mapping[str, float]) -> tuple[float, ...]:
        """Score ``metrics``; non-finite parts (e.g. no trades) become 0.0 — a flat result."""
        return tuple(finite(v) for v in self.fn(metrics))


def finite(value: float) -> float:
    """``value`` as float, 0.0 when NaN/inf/None (Optuna refuses non-finite trial values)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0
