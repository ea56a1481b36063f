"""Benchmark: the vectorised PBO (CSCV) against its per-combination reference, same run.

:func:`optimize.analysis.pbo.probability_of_backtest_overfitting` with its default ``sharpe`` metric
takes a vectorised path (all combinations from per-block sums); the reference is the same statistic
with the same Sharpe metric passed as a plain callable, evaluated one train/test combination at a
time. Both run on the same synthetic N(0, 1) returns (they only exercise arithmetic); the run fails
loudly if the two paths' logits differ, so the figures compare the same work.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import make_row
from lstm.checks import check_int
from optimize.analysis.pbo import PBOResult, probability_of_backtest_overfitting
from optimize.analysis.stats import sharpe

MAX_LOGIT_DIFF = 1e-9
"""The two paths agree when no logit differs by this much or more."""


def benchmark_pbo(
    n_obs: int = 2000, n_trials: int = 200, n_splits: int = 16, *, seed: int = 0, repeat: int = 3
) -> dict[str, float]:
    """Times the vectorised PBO against the per-combination reference, same run.

    Returns:
        ``n_combinations``, best-of-``repeat`` wall times in seconds (``vectorised_s``,
        ``reference_s``) and ``max_abs_logit_diff``, the largest logit difference (~0: both paths
        compute the same statistic).
    """
    repeat = check_int("repeat", repeat, 1)
    matrix = np.random.default_rng(seed).standard_normal((n_obs, n_trials))
    timings: dict[str, float] = {}
    results: dict[str, PBOResult] = {}
    for name, metric in (("vectorised", sharpe), ("reference", lambda part: sharpe(part))):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            results[name] = probability_of_backtest_overfitting(matrix, n_splits, metric=metric)
            times.append(time.perf_counter() - start)
        timings[f"{name}_s"] = min(times)
    diff = np.abs(results["vectorised"].logits - results["reference"].logits)
    return {
        "n_combinations": float(results["vectorised"].n_combinations),
        **timings,
        "max_abs_logit_diff": float(diff.max()),
    }


def bench_pbo(
    *, n_obs: int = 2000, n_trials: int = 200, n_splits: int = 16, repeat: int = 2, seed: int = 0
) -> list[dict]:
    """PBO runs per second, vectorised vs per-combination (:func:`benchmark_pbo`), as a row.

    Returns:
        One row (see :mod:`benchmarks`), goal ``"info"``.

    Raises:
        RuntimeError: the two paths' logits differ by :data:`MAX_LOGIT_DIFF` or more.
    """
    out = benchmark_pbo(n_obs, n_trials, n_splits, seed=seed, repeat=repeat)
    if not out["max_abs_logit_diff"] < MAX_LOGIT_DIFF:
        raise RuntimeError(
            f"the two PBO paths disagree: max |logit difference| = {out['max_abs_logit_diff']}."
        )
    return [
        make_row(
            f"PBO (CSCV, {n_obs} x {n_trials} returns, {n_splits} blocks, "
            f"{out['n_combinations']:.0f} combinations): vectorised vs per-combination",
            1.0 / out["vectorised_s"],
            1.0 / out["reference_s"],
            "PBO runs/s",
            "info",
        )
    ]
