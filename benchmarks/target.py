"""T(w) for new weights via the precomputed basis vs recomputing the indicators, same run.

A trial changes only the weights w0..w8, so the study builds :class:`strategy.target.TargetBasis`
once per pair and scores each trial's weights with :meth:`TargetBasis.score` (one matrix-vector
product). The reference is what a strategy without the basis does for every new weight vector:
:func:`strategy.target.target_score`, which recomputes the TA-Lib indicators and the pandas rolling
normalisations. Both sides score the same random weight vectors on the latest real BTC/USDT 1h
candles; the run stops if they disagree.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from benchmarks import Row, median_seconds, row
from optimize.data import DEFAULT_DATADIR, load_candles
from strategy.target import N_WEIGHTS, TargetBasis, target_score

PAIR, TIMEFRAME = "BTC/USDT", "1h"
GOAL_MS = 1.0
"""The goal: one pair's T for new weights in under a millisecond (at ~50k candles)."""


def bench_target(
    *,
    n_candles: int = 50_000,
    n_weights: int = 20,
    repeats: int = 50,
    datadir: Path | str = DEFAULT_DATADIR,
    seed: int = 0,
) -> list[Row]:
    """Weight vectors/s of ``TargetBasis.score`` vs ``target_score``.

    Args:
        n_candles: the latest candles of BTC/USDT 1h to use (all if fewer exist).
        n_weights: random weight vectors in [0, 1)^9, each scored by both sides.
        repeats: ``score`` calls per vector (a call takes microseconds: median of ``repeats``);
            ``target_score`` runs once per vector.
        datadir: data folder holding ``binance/BTC_USDT-1h.feather``.
        seed: seed of the weight vectors.

    Returns:
        ``score`` vs ``target_score`` (goal: under 1 ms per pair, i.e. the value, not the
        ratio); as info, the one-off basis build and ``score`` with BLAS on one thread.

    Raises:
        ValueError: ``n_candles`` < 200, ``n_weights`` or ``repeats`` < 1.
        RuntimeError: the two paths give different T.
    """
    if n_candles < 200 or n_weights < 1 or repeats < 1:
        raise ValueError(
            "bench_target needs n_candles >= 200, n_weights >= 1 and repeats >= 1, but got "
            f"{n_candles=}, {n_weights=}, {repeats=}."
        )
    candles = load_candles(PAIR, TIMEFRAME, datadir=datadir).tail(n_candles).reset_index(drop=True)
    weights = np.random.default_rng(seed).random((n_weights, N_WEIGHTS))
    t0 = time.perf_counter()
    basis = TargetBasis.from_candles(candles)
    build_s = time.perf_counter() - t0
    basis.score(weights[0])  # warm-up (first BLAS call)
    fast_s, single_s, slow_s = [], [], []
    for w in weights:
        score_w = functools.partial(basis.score, w)
        fast_s.append(median_seconds(score_w, repeats))
        with _one_blas_thread() as limited:
            if limited:
                single_s.append(median_seconds(score_w, repeats))
        t0 = time.perf_counter()
        slow = target_score(candles, w).to_numpy()
        slow_s.append(time.perf_counter() - t0)
        _check_same(basis.score(w), slow)
    fast, slow_med = statistics.median(fast_s), statistics.median(slow_s)
    size = f"({PAIR} {TIMEFRAME}, {len(candles)} candles)"
    rows = [
        Row(
            f"T(w) for new weights: TargetBasis.score vs target_score (TA-Lib + pandas) {size}",
            1.0 / fast,
            1.0 / slow_med,
            "weight vectors/s",
            f">= {1e3 / GOAL_MS:.0f}/s (< {GOAL_MS:g} ms per pair)",
            fast * 1e3 < GOAL_MS,
        ),
        row(
            f"TargetBasis.from_candles, once per pair and worker, vs one target_score {size}",
            1.0 / build_s,
            1.0 / slow_med,
            "builds/s",
        ),
    ]
    if single_s:
        rows.append(
            row(
                f"TargetBasis.score with BLAS limited to 1 thread vs the process default {size}",
                1.0 / statistics.median(single_s),
                1.0 / fast,
                "weight vectors/s",
            )
        )
    return rows


def _check_same(fast: np.ndarray, slow: np.ndarray) -> None:
    same_nan = np.array_equal(np.isnan(fast), np.isnan(slow))
    finite = np.isfinite(slow)
    if not same_nan or not np.allclose(fast[finite], slow[finite], rtol=1e-9, atol=1e-12):
        raise RuntimeError("TargetBasis.score and target_score disagree on the benchmark candles.")


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[bool]:
    """BLAS limited to one thread (threadpoolctl, if installed); yields False without it."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield True
