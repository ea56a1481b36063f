"""The latest ~50k real BTC/USDT 1h candles. Ours: ``TargetBasis.score(w)`` (built once per pair
and worker; one matrix-vector product per trial); reference: ``strategy.target.target_score``,
which recomputes the TA-Lib indicators and the pandas rolling normalisations for every new weight
vector (what a strategy without the basis does). Same random weight vectors on both sides, results
checked equal; the goal is absolute: under 1 ms per pair. Figures in weight vectors/s.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks import Row, median_seconds, row
from optimize.data import load_candles
from strategy.target import N_WEIGHTS, TargetBasis, target_score

GOAL_MS = 1.0
"""One pair's T for new weights in under this many milliseconds."""


def bench_target(*, n_candles: int = 50_000, n_weights: int = 20, repeats: int = 50) -> list[Row]:
    """Weight vectors/s of ``score`` (median of ``repeats`` calls per vector) vs ``target_score``
    (one call per vector); info: the basis build, ``score`` on one BLAS thread."""
    candles = load_candles("BTC/USDT", "1h").tail(n_candles).reset_index(drop=True)
    weights = np.random.default_rng(0).random((n_weights, N_WEIGHTS))
    t0 = time.perf_counter()
    basis = TargetBasis.from_candles(candles)
    build_s = time.perf_counter() - t0
    basis.score(weights[0])  # warm-up (first BLAS call)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    fast_s, single_s, slow_s = [], [], []
    for w in weights:
        fast_s.append(median_seconds(lambda w=w: basis.score(w), repeats))
        if threadpool_limits is not None:
            with threadpool_limits(limits=1, user_api="blas"):
                single_s.append(median_seconds(lambda w=w: basis.score(w), repeats))
        t0 = time.perf_counter()
        slow = target_score(candles, w).to_numpy()
        slow_s.append(time.perf_counter() - t0)
        fast = basis.score(w)
        finite = np.isfinite(slow)
        if not (
            np.array_equal(np.isnan(fast), np.isnan(slow))
            and np.allclose(fast[finite], slow[finite], rtol=1e-9, atol=1e-12)
        ):
            raise RuntimeError("TargetBasis.score and target_score disagree.")
    fast, slow = statistics.median(fast_s), statistics.median(slow_s)
    size = f"(BTC/USDT 1h, {len(candles)} candles)"
    rows = [
        Row(
            f"T(w) for new weights: TargetBasis.score vs target_score (TA-Lib + pandas) {size}",
            1.0 / fast,
            1.0 / slow,
            "weight vectors/s",
            f">= {1e3 / GOAL_MS:.0f}/s (< {GOAL_MS:g} ms per pair)",
            fast * 1e3 < GOAL_MS,
        ),
        row(
            f"TargetBasis.from_candles, once per pair and worker, vs one target_score {size}",
            1.0 / build_s,
            1.0 / slow,
            "builds/s",
        ),
    ]
    if single_s:
        name = f"TargetBasis.score with BLAS limited to 1 thread vs the process default {size}"
        rows.append(row(name, 1.0 / statistics.median(single_s), 1.0 / fast, "weight vectors/s"))
    return rows
