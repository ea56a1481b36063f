"""Probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation.

Pure numeric functions (NumPy, arrays in, numbers out, no I/O, no logging), after Bailey,
Borwein, López de Prado & Zhu (2017); the study's use of it: ``docs/statistics.md``. Sharpe
ratios are per period, as in :mod:`optimize.analysis.stats`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from base.checks import check_int
from optimize.analysis.stats import _safe_ratio, sharpe

__all__ = ["Metric", "PBOResult", "probability_of_backtest_overfitting"]

#: A PBO performance metric: (rows, N) returns -> (N,) scores, higher is better.
Metric = Callable[[np.ndarray], np.ndarray]

# Combination x trial cells per chunk of the fast path (cache-sized temporaries).
_PBO_CHUNK_CELLS = 262_144
# Scores closer than this (relative) are ties.
_TIE_RTOL = 1e-9

# --------------------------------------------------------------------------- PBO (CSCV)


@dataclass(frozen=True, eq=False)
class PBOResult:
    """Outcome of probability_of_backtest_overfitting.

    Attributes:
        pbo: share of combinations whose in-sample best trial ranks in the bottom
            half out of sample (logit <= 0); in [0, 1], ~0.5 for pure noise.
        logits: (n_combinations,) logit of the in-sample best trial's relative
            out-of-sample rank, in itertools.combinations order of the train blocks.
        n_combinations: C(S, S/2).
        kept_columns: indices of the input columns used (columns with NaN dropped).
        n_rows_used: rows used (the first T mod S rows are dropped for even blocks).
    """

    pbo: float
    logits: np.ndarray
    n_combinations: int
    kept_columns: np.ndarray
    n_rows_used: int


def _prepare_matrix(returns_matrix: object, n_splits: object) -> tuple[np.ndarray, np.ndarray, int]:
    m = np.asarray(returns_matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(
            f"returns_matrix must be 2-D (T rows = time, N columns = trials) but got {m.shape=}."
        )
    s = check_int("n_splits", n_splits, 2)
    if s % 2:
        raise ValueError(f"n_splits must be even (train = half of the blocks) but got {n_splits=}.")
    if np.isinf(m).any():
        r, c = np.argwhere(np.isinf(m))[0]
        raise ValueError(f"returns_matrix must not contain inf but got returns_matrix[{r}, {c}].")
    kept = np.flatnonzero(~np.isnan(m).any(axis=0))
    if kept.size < 2:
        raise ValueError(
            "returns_matrix needs N >= 2 columns without NaN but got "
            f"{kept.size} of {m.shape[1]} (columns with any NaN are dropped)."
        )
    t = m.shape[0]
    if t < s:
        raise ValueError(f"returns_matrix needs T >= n_splits rows but got T={t}, {n_splits=}.")
    rows = (t // s) * s
    return np.ascontiguousarray(m[t - rows :, kept]), kept, s


def _train_masks(s: int) -> np.ndarray:
    combos = np.fromiter(
        itertools.chain.from_iterable(itertools.combinations(range(s), s // 2)), dtype=np.intp
    ).reshape(-1, s // 2)
    mask = np.zeros((combos.shape[0], s), dtype=bool)
    np.put_along_axis(mask, combos, True, axis=1)
    return mask


def _near(values: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """values == ref up to a relative _TIE_RTOL (ref broadcast along axis 1)."""
    tol = np.where(np.isfinite(ref), _TIE_RTOL * np.abs(ref), 0.0)
    with np.errstate(invalid="ignore"):
        close = np.abs(values - ref) <= tol
    return close | (values == ref)


def _logits(train_scores: np.ndarray, test_scores: np.ndarray) -> np.ndarray:
    """Logit of the OOS relative rank of each row's in-sample best column.

    NaN scores rank lowest. Scores equal up to a relative _TIE_RTOL are ties (a
    duplicated or rescaled trial has the same Sharpe up to rounding): in-sample ties
    pick the first column, out-of-sample ties get the average rank. Rank r in 1..N,
    omega = r / (N + 1), logit = ln(omega / (1 - omega)).
    """
    train = np.where(np.isnan(train_scores), -np.inf, train_scores)
    test = np.where(np.isnan(test_scores), -np.inf, test_scores)
    n = train.shape[1]
    best = np.argmax(_near(train, train.max(axis=1, keepdims=True)), axis=1)
    chosen = np.take_along_axis(test, best[:, None], axis=1)
    tied = _near(test, chosen)
    below = np.count_nonzero((test < chosen) & ~tied, axis=1)
    equal = np.count_nonzero(tied, axis=1)
    rank = below + (equal + 1) / 2.0
    omega = rank / (n + 1.0)
    return np.log(omega / (1.0 - omega))


def _sharpe_from_centred_sums(
    count: float, c1: np.ndarray, c2: np.ndarray, shift: np.ndarray
) -> np.ndarray:
    """Sharpe from sums of (x - shift) and (x - shift)**2 over ``count`` rows.

    Centring on a per-column shift keeps the variance free of cancellation; the
    variance does not depend on the shift, the mean gets it back.
    """
    if count < 2:
        return np.full_like(c1, np.nan)
    mean = c1 / count + shift
    var = np.maximum((c2 - c1 * c1 / count) / (count - 1.0), 0.0)
    return _safe_ratio(mean, np.sqrt(var))


def _pbo_logits_sharpe(blocks: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Fast path: Sharpe from per-block sums; train sums = masks x block sums."""
    s, b, n = blocks.shape
    shift = blocks.reshape(-1, n).mean(axis=0)
    centred = blocks - shift
    sum1 = centred.sum(axis=1)  # (S, N)
    sum2 = np.einsum("sbn,sbn->sn", centred, centred)
    tot1, tot2 = sum1.sum(axis=0), sum2.sum(axis=0)
    half = float(b * s // 2)
    weights = masks.astype(np.float64)
    chunk = max(1, _PBO_CHUNK_CELLS // max(n, 1))
    out = np.empty(masks.shape[0])
    for start in range(0, masks.shape[0], chunk):
        w = weights[start : start + chunk]
        # einsum, not BLAS: tiny products where BLAS threads only add contention.
        tr1 = np.einsum("cs,sn->cn", w, sum1)
        tr2 = np.einsum("cs,sn->cn", w, sum2)
        te1, te2 = tot1 - tr1, tot2 - tr2
        train = _sharpe_from_centred_sums(half, tr1, tr2, shift)
        test = _sharpe_from_centred_sums(half, te1, te2, shift)
        out[start : start + chunk] = _logits(train, test)
    return out


def _pbo_logits_generic(blocks: np.ndarray, masks: np.ndarray, metric: Metric) -> np.ndarray:
    n = blocks.shape[2]
    out = np.empty(masks.shape[0])
    for i, mask in enumerate(masks):
        scores = []
        for part in (blocks[mask], blocks[~mask]):
            score = np.asarray(metric(part.reshape(-1, n)), dtype=np.float64)
            if score.shape != (n,):
                raise ValueError(
                    f"metric must map a (rows, N={n}) matrix to shape ({n},) but got "
                    f"{score.shape=}."
                )
            scores.append(score[None, :])
        out[i] = _logits(scores[0], scores[1])[0]
    return out


def probability_of_backtest_overfitting(
    returns_matrix: np.ndarray, n_splits: int = 16, *, metric: Metric = sharpe
) -> PBOResult:
    """Probability of Backtest Overfitting by CSCV (Bailey, Borwein, López de Prado, Zhu).

    The T x N matrix (rows = time, columns = trials' aligned out-of-sample returns)
    is cut into S = n_splits contiguous blocks of T // S rows. For every one of the
    C(S, S/2) ways to pick S/2 blocks as the train set (the rest is the test set),
    the trial with the best in-sample ``metric`` is found, its out-of-sample rank
    r in 1..N is taken (N = best), omega = r / (N + 1), and the logit
    ln(omega / (1 - omega)) recorded. PBO = share of logits <= 0.

    Edge cases (documented choices): columns containing any NaN (failed or pruned
    trials) are dropped; the first T mod S rows are dropped so that blocks are
    even (the most recent data is kept); NaN metric values rank lowest; scores
    equal up to a relative 1e-9 are ties (duplicated or rescaled trials); in-sample
    ties pick the lowest column index; out-of-sample ties get the average rank, so
    a median-ranked pick gives logit 0 (counted as overfit).

    Args:
        returns_matrix: (T, N) per-period returns, T >= n_splits, N >= 2 after
            dropping NaN columns; inf is rejected.
        n_splits: S, even and >= 2 (16 as in the paper: 12,870 combinations).
        metric: (rows, N) -> (N,) score, higher is better. The default ``sharpe``
            uses a vectorised path (all combinations from per-block sums); any
            other callable is evaluated combination by combination.

    Returns:
        PBOResult(pbo, logits, n_combinations, kept_columns, n_rows_used).
    """
    m, kept, s = _prepare_matrix(returns_matrix, n_splits)
    if not callable(metric):
        raise TypeError(f"metric must be callable but got {metric=!r}.")
    rows, n = m.shape
    blocks = m.reshape(s, rows // s, n)
    masks = _train_masks(s)
    if metric is sharpe:
        logits = _pbo_logits_sharpe(blocks, masks)
    else:
        logits = _pbo_logits_generic(blocks, masks, metric)
    pbo = float(np.count_nonzero(logits <= 0.0) / logits.size)
    return PBOResult(
        pbo=pbo,
        logits=logits,
        n_combinations=int(masks.shape[0]),
        kept_columns=kept,
        n_rows_used=int(rows),
    )
