"""Overfitting statistics: Sharpe ratios and the Probabilistic / Deflated Sharpe Ratio.

The probability of backtest overfitting (CSCV) is in :mod:`optimize.analysis.pbo`.

Pure numeric functions (NumPy/SciPy, arrays in, numbers out, no I/O, no logging).
Formulas, full citations (Bailey & López de Prado 2012, 2014; Bailey, Borwein,
López de Prado & Zhu 2017) and the study's use of them: ``docs/statistics.md``.

Conventions: every Sharpe ratio here is *per period* (per candle of the return
series) unless a function says otherwise, computed as mean / sample standard
deviation (``ddof=1``) with no risk-free rate (crypto returns are used as excess
returns). Kurtosis is *raw* (non-excess): 3 for a normal distribution.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from base.checks import check_int, check_number

__all__ = [
    "EULER_GAMMA",
    "deflated_sharpe_from_returns",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "returns_moments",
    "sharpe",
    "sharpe_from_returns",
]

#: Euler-Mascheroni constant (gamma in Bailey & López de Prado 2014, eq. 7).
EULER_GAMMA: float = float(np.euler_gamma)

# Relative tolerance for Pearson's bound kurtosis >= 1 + skew**2 (float rounding).
_PEARSON_RTOL = 1e-9


# --------------------------------------------------------------------------- validation


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
        ppy = check_number("periods_per_year", periods_per_year, 0.0, low_open=True)
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
    n = check_int("n_trials", n_trials, 1)
    var = check_number("sharpe_variance", sharpe_variance, 0.0)
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
    sr = check_number("sharpe", sharpe)
    bench = check_number("benchmark", benchmark)
    t = check_int("n_obs", n_obs, 2)
    g3 = check_number("skew", skew)
    g4 = check_number("kurtosis", kurtosis)
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
