"""Tests of optimize.analysis.pbo: the probability of backtest overfitting by CSCV.

Synthetic returns appear here only as inputs to the exact arithmetic of the statistic
(hand-computed micro cases, seeded noise whose expected PBO is known); no price series is
synthesised.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimize.analysis.pbo import PBOResult, probability_of_backtest_overfitting
from optimize.analysis.stats import sharpe


def _column_mean(part: np.ndarray) -> np.ndarray:
    return part.mean(axis=0)


def _sharpe_as_plain_callable(part: np.ndarray) -> np.ndarray:
    """Same metric as ``sharpe`` but not the same object: forces the generic PBO path."""
    return sharpe(part)


def test_pbo_hand_computed_overfit_case() -> None:
    """S = 2 blocks of 2 rows, metric = mean. a = [1, 2 | 0, 0], b = [0, 0 | 3, 3].
    Train block 0 picks a (1.5 > 0), which ranks 1 of 2 on block 1: omega = 1/3,
    logit = ln(1/2). Train block 1 picks b (3 > 0), rank 1 on block 0: same. PBO = 1.
    """
    m = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 3.0]])
    res = probability_of_backtest_overfitting(m, 2, metric=_column_mean)
    assert isinstance(res, PBOResult)
    assert res.n_combinations == 2
    np.testing.assert_allclose(res.logits, [-math.log(2.0), -math.log(2.0)])
    assert res.pbo == 1.0


def test_pbo_hand_computed_consistent_case() -> None:
    """a = [1, 2 | 3, 3] beats b = 0 on both halves: rank 2 of 2, omega = 2/3,
    logit = ln 2 for both combinations, PBO = 0."""
    m = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [3.0, 0.0]])
    res = probability_of_backtest_overfitting(m, 2, metric=_column_mean)
    np.testing.assert_allclose(res.logits, [math.log(2.0), math.log(2.0)])
    assert res.pbo == 0.0


def test_pbo_hand_computed_median_rank_and_ties() -> None:
    """Three trials, S = 2, metric = mean. a = [3, 3 | 1, 1], b = [0, 0 | 2, 2],
    c = 0. Train block 0 picks a, OOS means (1, 2, 0): rank 2 of 3, omega = 2/4,
    logit 0 (counted as overfit: PBO uses logit <= 0). Train block 1 picks b, OOS
    means (3, 0, 0): b ties c for last, average rank 1.5, omega = 1.5/4,
    logit = ln(0.6). PBO = 1."""
    m = np.array([[3.0, 0.0, 0.0], [3.0, 0.0, 0.0], [1.0, 2.0, 0.0], [1.0, 2.0, 0.0]])
    res = probability_of_backtest_overfitting(m, 2, metric=_column_mean)
    np.testing.assert_allclose(res.logits, [0.0, math.log(0.6)], atol=1e-15)
    assert res.pbo == 1.0


def test_pbo_of_pure_noise_is_one_half() -> None:
    """Unskilled trials: the in-sample best has a uniform OOS rank, so E[PBO] = 1/2
    (N even: no rank sits exactly at the median). Mean over seeded matrices is
    within 4 standard errors of 0.5, and the standard error is small enough for
    the check to mean something."""
    rng = np.random.default_rng(20150)
    values = []
    for _ in range(60):
        res = probability_of_backtest_overfitting(rng.standard_normal((800, 40)), 16)
        assert res.n_combinations == math.comb(16, 8)
        values.append(res.pbo)
    values_arr = np.asarray(values)
    se = values_arr.std(ddof=1) / math.sqrt(values_arr.size)
    assert se < 0.05
    assert abs(values_arr.mean() - 0.5) <= 4 * se


def test_pbo_near_zero_when_one_strategy_dominates() -> None:
    rng = np.random.default_rng(5)
    noise = rng.standard_normal((1600, 30))
    strong = np.column_stack([noise, rng.standard_normal(1600) + 0.5])
    res = probability_of_backtest_overfitting(strong, 16)
    n = strong.shape[1]
    assert res.pbo == 0.0
    # Always picked and always best out of sample: rank N, omega = N / (N + 1).
    np.testing.assert_allclose(res.logits, math.log(n))
    modest = np.column_stack([noise, rng.standard_normal(1600) + 0.15])
    assert probability_of_backtest_overfitting(modest, 16).pbo < 0.05
    assert probability_of_backtest_overfitting(noise, 16).pbo > 0.05


def _awkward_matrix() -> np.ndarray:
    rng = np.random.default_rng(9)
    m = rng.standard_normal((203, 12)) * 0.02 + 0.001
    m[:, 3] = 0.0  # a trial that never traded
    m[:, 5] = m[:, 4] * 7.0  # scaled copy: same Sharpe on every subset (a tie)
    m[:, 6] -= 0.5  # always last: ties nothing, never picked
    m[17, 8] = np.nan  # a failed trial
    m[:, 10] = np.nan
    return m


def test_pbo_fast_path_matches_generic_path() -> None:
    m = _awkward_matrix()
    fast = probability_of_backtest_overfitting(m, 8)
    slow = probability_of_backtest_overfitting(m, 8, metric=_sharpe_as_plain_callable)
    np.testing.assert_allclose(fast.logits, slow.logits, rtol=0, atol=1e-9)
    assert fast.pbo == slow.pbo
    np.testing.assert_array_equal(fast.kept_columns, slow.kept_columns)


def test_pbo_fast_path_is_exact_with_a_large_common_offset() -> None:
    """Returns far from zero relative to their spread (Sharpe ~ 1e7) must not lose
    the variance to cancellation in the per-block sums."""
    rng = np.random.default_rng(12)
    m = 1e7 + rng.standard_normal((256, 16)) * rng.uniform(0.5, 2.0, size=16)
    fast = probability_of_backtest_overfitting(m, 8)
    slow = probability_of_backtest_overfitting(m, 8, metric=_sharpe_as_plain_callable)
    np.testing.assert_allclose(fast.logits, slow.logits, rtol=0, atol=1e-9)


def test_pbo_drops_nan_columns_and_leading_rows() -> None:
    m = _awkward_matrix()
    res = probability_of_backtest_overfitting(m, 8)
    kept = [c for c in range(m.shape[1]) if c not in (8, 10)]
    np.testing.assert_array_equal(res.kept_columns, kept)
    assert res.n_rows_used == 200
    clean = probability_of_backtest_overfitting(m[3:, kept], 8)
    np.testing.assert_array_equal(res.logits, clean.logits)


def test_pbo_invariant_to_column_order_and_positive_scale() -> None:
    rng = np.random.default_rng(1)
    m = rng.standard_normal((480, 15)) * 0.01 + rng.normal(0, 0.0005, size=15)
    base = probability_of_backtest_overfitting(m, 12)
    perm = rng.permutation(15)
    permuted = probability_of_backtest_overfitting(m[:, perm], 12)
    np.testing.assert_allclose(permuted.logits, base.logits, atol=1e-12)
    scaled = probability_of_backtest_overfitting(m * 3.7, 12)
    np.testing.assert_allclose(scaled.logits, base.logits, atol=1e-12)


def test_pbo_logits_follow_the_paper_rank_scale() -> None:
    rng = np.random.default_rng(4)
    n = 9
    res = probability_of_backtest_overfitting(rng.standard_normal((120, n)), 6)
    omegas = 1.0 / (1.0 + np.exp(-res.logits))
    ranks = omegas * (n + 1)
    np.testing.assert_allclose(ranks, np.round(ranks), atol=1e-9)
    assert ranks.min() >= 1 and ranks.max() <= n


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("matrix", "n_splits", "exc", "match"),
    [
        (np.zeros(10), 2, ValueError, "2-D"),
        (np.ones((20, 3)), 3, ValueError, "even"),
        (np.ones((20, 3)), 0, ValueError, "n_splits"),
        (np.ones((20, 3)), 4.0, TypeError, "n_splits"),
        (np.ones((6, 3)), 8, ValueError, "T >= n_splits"),
        (np.ones((20, 1)), 2, ValueError, "N >= 2"),
        (np.column_stack([np.ones(20), np.full(20, np.nan)]), 2, ValueError, "N >= 2"),
        (np.column_stack([np.ones(20), np.full(20, np.inf)]), 2, ValueError, "inf"),
    ],
)
def test_pbo_validation(matrix: np.ndarray, n_splits: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        probability_of_backtest_overfitting(matrix, n_splits)  # type: ignore[arg-type]


def test_pbo_rejects_bad_metric() -> None:
    m = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError, match="shape"):
        probability_of_backtest_overfitting(m, 2, metric=lambda part: part.mean())
    with pytest.raises(TypeError, match="callable"):
        probability_of_backtest_overfitting(m, 2, metric="sharpe")  # type: ignore[arg-type]
