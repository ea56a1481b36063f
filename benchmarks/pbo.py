"""``optimize.analysis.pbo.probability_of_backtest_overfitting`` with its default ``sharpe``
metric (vectorised: all combinations from per-block sums) against the same statistic with the
same Sharpe metric passed as a plain callable (one train/test combination at a time), best of the
repeats, on synthetic N(0, 1) returns (arithmetic only); the run stops if the two paths' logits
differ. Figures in PBO runs/s.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import Row, row
from optimize.analysis.pbo import probability_of_backtest_overfitting
from optimize.analysis.stats import sharpe


def bench_pbo(
    *, n_obs: int = 2000, n_trials: int = 200, n_splits: int = 16, repeat: int = 2
) -> list[Row]:
    """PBO runs/s, vectorised vs per-combination, best of ``repeat`` each (info)."""
    matrix = np.random.default_rng(0).standard_normal((n_obs, n_trials))
    best, results = {}, {}
    for name, metric in (("vectorised", sharpe), ("reference", lambda part: sharpe(part))):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            results[name] = probability_of_backtest_overfitting(matrix, n_splits, metric=metric)
            times.append(time.perf_counter() - t0)
        best[name] = min(times)
    diff = float(np.abs(results["vectorised"].logits - results["reference"].logits).max())
    if not diff < 1e-9:
        raise RuntimeError(f"the two PBO paths disagree: max |logit difference| = {diff}.")
    return [
        row(
            f"PBO (CSCV, {n_obs} x {n_trials} returns, {n_splits} blocks, "
            f"{results['vectorised'].n_combinations} combinations): vectorised vs per-combination",
            1.0 / best["vectorised"],
            1.0 / best["reference"],
            "PBO runs/s",
        )
    ]
