"""Benchmarks: each figure is measured against a reference timed in the same run.

``python -m benchmarks`` (``make bench``, from the repository root) runs them all and writes
``docs/benchmarks.md``. This folder is not part of the installed package: it measures the
project, the project never imports it, and it changes no production code while it runs (the time
a trial spends training is read through :func:`lstm.train.record_fit_timings`). Every benchmark
returns :class:`Row` objects: our figure, the reference's, their ratio and the goal.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One figure against its reference.

    Attributes:
        name: what is measured, with its size.
        value: our figure, in ``unit``.
        reference: the reference figure measured in the same run, in ``unit``.
        unit: unit of value and reference (e.g. ``candles/s``, ``s/trial``, ``MiB``).
        goal: the goal as text, or ``"info"``.
        met: whether the ratio meets the goal; None for information rows.
    """

    name: str
    value: float
    reference: float
    unit: str
    goal: str = "info"
    met: bool | None = None

    @property
    def ratio(self) -> float:
        """``value / reference`` (NaN when the reference is not > 0). For throughputs > 1 means
        ours is faster; for costs (seconds, bytes) < 1 means ours is cheaper."""
        return self.value / self.reference if self.reference > 0 else math.nan


def row(
    name: str,
    value: float,
    reference: float,
    unit: str,
    goal: str = "info",
    *,
    at_least: float | None = None,
    below: float | None = None,
) -> Row:
    """A :class:`Row` judged by its ratio: met when ``ratio >= at_least`` and ``ratio < below``
    (the bounds given); an information row when neither bound is given."""
    r = Row(name, float(value), float(reference), unit, goal)
    if at_least is None and below is None:
        return r
    met = (at_least is None or r.ratio >= at_least) and (below is None or r.ratio < below)
    return Row(r.name, r.value, r.reference, unit, goal, bool(met))


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in seconds (``perf_counter``) of ``repeats`` calls of ``fn()``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def alternate(
    sides: Sequence[Callable[[], float]],
    *,
    rounds: int = 3,
    seconds: float = 0.0,
    cuda: bool = False,
    warmup: bool = True,
) -> list[float]:
    """Median rate (work / s) of each side over rounds that alternate the sides.

    One untimed warm-up call of each side first; then at least ``rounds`` rounds, more while
    ``seconds`` have not passed. Alternating exposes every side to the same background load, and
    medians keep one disturbed round from moving the figure.

    Args:
        sides: functions that do one round of work and return its amount (e.g. samples; 1.0 for
            "one round").
        rounds: minimum timed rounds per side.
        seconds: wall-clock budget of the timed rounds (s).
        cuda: synchronise the CUDA device around each timed call.
        warmup: False when the caller has already run each side once.
    """
    import torch

    for fn in sides if warmup else ():
        fn()
    rates: list[list[float]] = [[] for _ in sides]
    deadline = time.perf_counter() + seconds
    while len(rates[0]) < rounds or time.perf_counter() < deadline:
        for k, fn in enumerate(sides):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            work = fn()
            if cuda:
                torch.cuda.synchronize()
            rates[k].append(work / (time.perf_counter() - t0))
    return [statistics.median(r) for r in rates]
