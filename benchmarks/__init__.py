"""Benchmarks: each figure is a :class:`Row`, ours against a reference measured in the same run.

Run from the repository root by ``python -m benchmarks`` (``make bench``); not installed, never
imported by the project, and it changes no production code while it runs.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The source checkout the benchmarks run from."""


class Skipped(Exception):
    """A section that cannot run here; the message says why."""


@dataclass(frozen=True)
class Row:
    """One figure: ``value`` (ours) and ``reference`` in ``unit``; ``met`` None for info rows."""

    name: str
    value: float
    reference: float
    unit: str
    goal: str = "info"
    met: bool | None = None

    @property
    def ratio(self) -> float:
        """``value / reference``; NaN unless the reference is > 0."""
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
    """A Row, met when ``at_least <= ratio < below`` (bounds given); info without bounds."""
    r = Row(name, float(value), float(reference), unit, goal)
    if at_least is None and below is None:
        return r
    met = (at_least is None or r.ratio >= at_least) and (below is None or r.ratio < below)
    return Row(r.name, r.value, r.reference, unit, goal, bool(met))


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time (s) of ``repeats`` calls of ``fn()``."""
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
    """Median rate (work/s) per side, each call returning its work, over >= ``rounds`` rounds
    alternating the sides and lasting >= ``seconds`` s, after one untimed call each (``warmup``)."""
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


FIXED_LSTM = {"window_size": 4, "dropout_percent": 0.1, "learning_rate": 3.0e-3}
"""LSTM constants of the benchmark space, so that every trial trains the same amount."""


def study_files(
    folder: Path, *, overrides: dict[str, dict[str, Any]] | None = None, lstm: dict | None = None
) -> tuple[Path, Path]:
    """Write configs/smoke.yaml (pruner off, cache in ``folder``, ``overrides`` per section) and
    search_spaces/smoke.yaml (``lstm`` or :data:`FIXED_LSTM` fixed) into ``folder``."""
    config = yaml.safe_load((REPO_ROOT / "configs" / "smoke.yaml").read_text())
    space = yaml.safe_load((REPO_ROOT / "search_spaces" / "smoke.yaml").read_text())
    extra = {"study": {"pruner": "none"}, "training": {"cache_dir": str(folder / "cache")}}
    for section, values in [*extra.items(), *(overrides or {}).items()]:
        config[section] = {**config.get(section, {}), **values}
    space["lstm"] = {**space["lstm"], **(FIXED_LSTM if lstm is None else lstm)}
    paths = folder / "bench-config.yaml", folder / "bench-space.yaml"
    for path, content in zip(paths, (config, space), strict=True):
        path.write_text(yaml.safe_dump(content, sort_keys=False))
    return paths
