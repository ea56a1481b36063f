"""Overfitting statistics: Probabilistic / Deflated Sharpe Ratio and PBO by CSCV.

Pure numeric functions (NumPy/SciPy, arrays in, numbers out, no I/O, no logging).
Formulas, full citations (Bailey & López de Prado 2012, 2014; Bailey, Borwein,
López de Prado & Zhu 2017) and the study's use of them: ``docs/statistics.md``.

Conventions: every Sharpe ratio here is *per period* (per candle of the return
series) unless a function says otherwise, computed as mean / sample standard
deviation (``ddof=1``) with no risk-free rate (crypto returns are used as excess
returns). Kurtosis is *raw* (non-excess): 3 for a normal distribution.
"""

from __future__ import annotations

import itertools
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = [
    "EULER_GAMMA",
    "Metric",
    "PBOResult",
    "benchmark_pbo",
    "deflated_sharpe_from_returns",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "returns_moments",
    "sharpe",
    "sharpe_from_returns",
]

#: Euler-Mascheroni constant (gamma in Bailey & López de Prado 2014, eq. 7).
EULER_GAMMA: float = float(np.euler_gamma)

#: A PBO performance metric: (rows, N) returns -> (N,) scores, higher is better.
Metric = Callable[[np.ndarray], np.ndarray]

# Relative tolerance for Pearson's bound kurtosis >= 1 + skew**2 (float rounding).
_PEARSON_RTOL = 1e-9
# Combination x trial cells per chunk of the fast PBO path (cache-sized temporaries).
_PBO_CHUNK_CELLS = 262_144
# PBO scores closer than this (relative) are ties.
_TIE_RTOL = 1e-9


# --------------------------------------------------------------------------- validation


def _finite_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number but got {name}={value!r}.")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite but got {name}={value!r}.")
    return out


def _int_at_least(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum} but got {name}={value!r}.")
    out = int(value)
    if out < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum} but got {name}={value!r}.")
    return out


def _finite_vector(values: object, name: str = "returns", min_size: int = 2) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D but got {name}.shape={arr.shape}.")
    if arr.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} values but got {arr.size=}.")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(
            f"{name} must be finite but got {name}[{bad[0]}]={arr[bad[0]]!r} "
            f"({bad.size} non-finite values)."
        )
    return arr


def _check_moments(sharpe_value: float, skew: float, kurtosis: float) -> float:
    """Validates (skew, raw kurtosis) and returns the PSR variance factor.

    Any distribution satisfies Pearson's bound kurtosis >= 1 + skew**2, and under it
    1 - skew*SR + (kurtosis-1)/4*SR**2 >= (1 - skew*SR/2)**2 >= 0. Passing the excess
    kurtosis (0 for a normal) instead of the raw one usually breaks the bound.
    """
    bound = 1.0 + skew * skew
    if kurtosis < bound * (1.0 - _PEARSON_RTOL):
        raise ValueError(
            "kurtosis must be the raw (non-excess, 3 for a normal) kurtosis, which is "
            f">= 1 + skew**2 = {bound:.6g}, but got {kurtosis=} with {skew=}."
        )
    factor = 1.0 - skew * sharpe_value + (kurtosis - 1.0) / 4.0 * sharpe_value**2
    if not factor > 0.0:
        raise ValueError(
            "1 - skew*sharpe + (kurtosis-1)/4*sharpe**2 must be > 0 but got "
            f"{factor=} for {sharpe_value=}, {skew=}, {kurtosis=}."
        )
    return factor


# --------------------------------------------------------------------------- Sharpe helpers


def sharpe(returns_matrix: np.ndarray) -> np.ndarray:
    """Column-wise per-period Sharpe ratio, the default PBO metric.

    Args:
        returns_matrix: (T, N) per-period simple returns, one column per trial.

    Returns:
        (N,) mean / std (ddof=1) of each column. A column with zero standard
        deviation scores 0 when its mean is 0 (e.g. a trial that never traded) and
        +/-inf otherwise; fewer than 2 rows give NaN.
    """
    m = np.asarray(returns_matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"returns_matrix must be 2-D (T, N) but got {m.shape=}.")
    n = m.shape[0]
    if n < 2:
        return np.full(m.shape[1], np.nan)
    mean = m.mean(axis=0)
    std = m.std(axis=0, ddof=1)
    return _safe_ratio(mean, std)


def _safe_ratio(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = mean / std
    zero = std == 0.0
    if np.any(zero):
        riskless = np.where(mean == 0.0, 0.0, np.copysign(np.inf, mean))
        out = np.where(zero, riskless, out)
    return out


def sharpe_from_returns(returns: np.ndarray, periods_per_year: float | None = None) -> float:
    """Sharpe ratio of one return series.

    Args:
        returns: 1-D per-period simple returns (at least 2, all finite).
        periods_per_year: if given, the result is annualised by sqrt(periods_per_year)
            (e.g. 8760 for 1h candles of a 24/7 market); None keeps it per period,
            which is what the PSR/DSR functions expect.

    Returns:
        mean / std (ddof=1); 0.0 for a constant-zero series, +/-inf for a constant
        non-zero one.
    """
    arr = _finite_vector(returns)
    value = float(sharpe(arr[:, None])[0])
    if periods_per_year is not None:
        ppy = _finite_float("periods_per_year", periods_per_year)
        if ppy <= 0:
            raise ValueError(f"periods_per_year must be > 0 but got {periods_per_year=}.")
        value *= math.sqrt(ppy)
    return value


def returns_moments(returns: np.ndarray) -> tuple[float, float]:
    """Skewness and raw kurtosis of a return series (population moments).

    Uses the biased (moment) estimators m3/m2**1.5 and m4/m2**2, as in Bailey &
    López de Prado; they satisfy Pearson's bound kurtosis >= 1 + skew**2 exactly.

    Args:
        returns: 1-D per-period returns (at least 2, all finite, not constant).

    Returns:
        (skew, kurtosis) with kurtosis raw: 3 for a normal distribution.
    """
    arr = _finite_vector(returns)
    if np.ptp(arr) == 0.0:
        raise ValueError(
            f"returns must not be constant (skew/kurtosis undefined) but got all values "
            f"equal to {arr[0]!r}."
        )
    skew = float(sps.skew(arr, bias=True))
    kurt = float(sps.kurtosis(arr, fisher=False, bias=True))
    return skew, kurt


# --------------------------------------------------------------------------- PSR / DSR


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum Sharpe ratio of n_trials unskilled trials (the DSR's SR0).

    SR0 = sqrt(V) * ((1-g) * Phi^-1(1 - 1/N) + g * Phi^-1(1 - 1/(N e))), g the
    Euler-Mascheroni constant (Bailey & López de Prado 2014, eq. 7): the expected
    maximum of N independent draws from N(0, V), an extreme-value approximation that
    is slightly above the exact value: +2.3 % at N = 10, +0.9 % at N = 100.

    Args:
        n_trials: number of independent trials N (>= 1).
        sharpe_variance: variance V of the trials' Sharpe ratios (>= 0), same
            periodicity as the Sharpe ratio it is compared with.

    Returns:
        SR0 in Sharpe units. Edge cases: N == 1 -> 0.0 (no selection, the expected
        maximum of one zero-mean draw is 0); V == 0 -> 0.0.
    """
    n = _int_at_least("n_trials", n_trials, 1)
    var = _finite_float("sharpe_variance", sharpe_variance)
    if var < 0:
        raise ValueError(f"sharpe_variance must be >= 0 but got {sharpe_variance=}.")
    if n == 1 or var == 0.0:
        return 0.0
    z = (1.0 - EULER_GAMMA) * sps.norm.ppf(1.0 - 1.0 / n) + EULER_GAMMA * sps.norm.ppf(
        1.0 - 1.0 / (n * math.e)
    )
    return float(math.sqrt(var) * z)


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, *, n_obs: int, skew: float, kurtosis: float
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark`` (PSR).

    PSR = Phi((SR - SR*) sqrt(T-1) / sqrt(1 - skew*SR + (kurtosis-1)/4 * SR**2))
    (Bailey & López de Prado 2012).

    Args:
        sharpe: observed per-period Sharpe ratio SR.
        benchmark: per-period benchmark SR* (0 for "better than nothing").
        n_obs: number of returns T the Sharpe was measured on (>= 2).
        skew: skewness of those returns.
        kurtosis: raw kurtosis of those returns (3 for normal, >= 1 + skew**2).

    Returns:
        A probability in [0, 1]; 0.5 when SR == SR*.
    """
    sr = _finite_float("sharpe", sharpe)
    bench = _finite_float("benchmark", benchmark)
    t = _int_at_least("n_obs", n_obs, 2)
    g3 = _finite_float("skew", skew)
    g4 = _finite_float("kurtosis", kurtosis)
    factor = _check_moments(sr, g3, g4)
    z = (sr - bench) * math.sqrt(t - 1) / math.sqrt(factor)
    return float(sps.norm.cdf(z))


def deflated_sharpe_ratio(
    sharpe: float,
    *,
    n_trials: int,
    sharpe_variance: float,
    n_obs: int,
    skew: float,
    kurtosis: float,
) -> float:
    """Deflated Sharpe Ratio (Bailey & López de Prado 2014).

    DSR = PSR(SR0) with SR0 = expected_max_sharpe(n_trials, sharpe_variance): the
    probability that the selected trial's true Sharpe exceeds what the best of
    n_trials unskilled trials would show by luck.

    Args:
        sharpe: per-period Sharpe ratio of the selected (best) trial.
        n_trials: number of trials tried, N >= 1 (all completed trials, not only
            the good ones). N == 1 gives SR0 = 0, i.e. the plain PSR against 0.
        sharpe_variance: variance of the per-period Sharpe ratios across trials (>= 0).
        n_obs: number of returns T of the selected trial (>= 2).
        skew: skewness of the selected trial's returns.
        kurtosis: raw kurtosis of the selected trial's returns (3 for normal).

    Returns:
        A probability in [0, 1]; >= 0.95 is the paper's significance threshold.
    """
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, sr0, n_obs=n_obs, skew=skew, kurtosis=kurtosis)


def deflated_sharpe_from_returns(returns: np.ndarray, trial_sharpes: np.ndarray) -> float:
    """DSR of a selected trial from its returns and all trials' Sharpe ratios.

    Args:
        returns: 1-D per-period returns of the selected trial (not constant).
        trial_sharpes: per-period Sharpe ratios of every trial tried (the selected
            one included), same periodicity as ``returns``; N = its length, V its
            sample variance (ddof=1; 0 when N == 1).

    Returns:
        deflated_sharpe_ratio(...) for these inputs.
    """
    arr = _finite_vector(returns)
    trials = _finite_vector(trial_sharpes, "trial_sharpes", min_size=1)
    skew, kurt = returns_moments(arr)
    var = float(trials.var(ddof=1)) if trials.size > 1 else 0.0
    return deflated_sharpe_ratio(
        sharpe_from_returns(arr),
        n_trials=int(trials.size),
        sharpe_variance=var,
        n_obs=int(arr.size),
        skew=skew,
        kurtosis=kurt,
    )


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
    s = _int_at_least("n_splits", n_splits, 2)
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


# --------------------------------------------------------------------------- benchmark


def benchmark_pbo(
    n_obs: int = 2000, n_trials: int = 200, n_splits: int = 16, *, seed: int = 0, repeat: int = 3
) -> dict[str, float]:
    """Times the vectorised PBO against the per-combination reference, same run.

    The reference is probability_of_backtest_overfitting with the same Sharpe metric
    passed as a plain callable (one metric evaluation per train/test half). The
    synthetic N(0, 1) returns only exercise arithmetic. Returns best-of-``repeat``
    wall times in seconds, their ratio and the largest logit difference (~0: both
    paths compute the same statistic).
    """
    repeat = _int_at_least("repeat", repeat, 1)
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
        "speedup": timings["reference_s"] / timings["vectorised_s"],
        "max_abs_logit_diff": float(diff.max()),
    }
