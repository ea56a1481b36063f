"""The vectorised PBO (CSCV) against its per-combination reference, same run.

:func:`optimize.analysis.pbo.probability_of_backtest_overfitting` with its default ``sharpe``
metric takes a vectorised path (all combinations from per-block sums); the reference is the same
statistic with the same Sharpe metric passed as a plain callable, one train/test combination at a
time. Both run on the same synthetic N(0, 1) returns (they only exercise arithmetic); the run
stops if the two paths' logits differ.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import Row, row
from lstm.checks import check_int
from optimize.analysis.pbo import probability_of_backtest_overfitting
from optimize.analysis.stats import sharpe

MAX_LOGIT_DIFF = 1e-9
"""The two paths agree when no logit differs by this much or more."""


def bench_pbo(
    *, n_obs: int = 2000, n_trials: int = 200, n_splits: int = 16, repeat: int = 2, seed: int = 0
) -> list[Row]:
    """PBO runs/s, vectorised vs per-combination, best of ``repeat`` each (one info row).

    Raises:
        ValueError: ``repeat`` < 1.
        RuntimeError: the two paths' logits differ by :data:`MAX_LOGIT_DIFF` or more.
    """
    repeat = check_int("repeat", repeat, 1)
    matrix = np.random.default_rng(seed).standard_normal((n_obs, n_trials))
    best, results = {}, {}
    for name, metric in (("vectorised", sharpe), ("reference", lambda part: sharpe(part))):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            results[name] = probability_of_backtest_overfitting(matrix, n_splits, metric=metric)
            times.append(time.perf_counter() - t0)
        best[name] = min(times)
    diff = float(np.abs(results["vectorised"].logits - results["reference"].logits).max())
    if not diff < MAX_LOGIT_DIFF:
        raise RuntimeError(f"the two PBO paths disagree: max |logit difference| = {diff}.")
    combos = results["vectorised"].n_combinations
    return [
        row(
            f"PBO (CSCV, {n_obs} x {n_trials} returns, {n_splits} blocks, {combos} combinations): "
            "vectorised vs per-combination",
            1.0 / best["vectorised"],
            1.0 / best["reference"],
            "PBO runs/s",
        )
    ]
