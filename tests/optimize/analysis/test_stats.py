"""Tests of optimize.analysis.stats: Sharpe ratios and PSR/DSR (Bailey & López de Prado).

Synthetic returns appear here only as inputs to the exact arithmetic of a statistic
(hand-computed micro cases, seeded noise whose expected statistic is known); no price
series is synthesised.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from optimize.analysis.stats import (
    EULER_GAMMA,
    deflated_sharpe_from_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    returns_moments,
    sharpe,
    sharpe_from_returns,
)

# --------------------------------------------------------------------------- DSR / PSR


class TestDeflatedSharpePaperExample:
    """Bailey, D. H. and López de Prado, M. (2014), "The Deflated Sharpe Ratio:
    Correcting for Selection Bias, Backtest Overfitting and Non-Normality", Journal
    of Portfolio Management 40(5), 94-107 (SSRN 2460551), section "A numerical
    example": a strategist backtests N = 100 trials and selects one with annualised
    SR 2.5 over 5 years of daily returns (T = 1250, 250 days a year); the variance of
    the trials' annualised Sharpe ratios is 1/2; the selected returns have skew -3
    and kurtosis 10. The paper finds SR0 = 0.1132 (non-annualised) and DSR = 0.9004,
    and notes that the same discovery after N = 46 trials would give DSR = 0.9505.
    """

    days = 250
    sharpe_daily = 2.5 / math.sqrt(days)
    variance_daily = 0.5 / days

    def test_expected_max_sharpe(self) -> None:
        sr0 = expected_max_sharpe(100, self.variance_daily)
        assert sr0 == pytest.approx(0.1132, abs=5e-5)

    @pytest.mark.parametrize(("n_trials", "published"), [(100, 0.9004), (46, 0.9505)])
    def test_dsr(self, n_trials: int, published: float) -> None:
        dsr = deflated_sharpe_ratio(
            self.sharpe_daily,
            n_trials=n_trials,
            sharpe_variance=self.variance_daily,
            n_obs=5 * self.days,
            skew=-3.0,
            kurtosis=10.0,
        )
        assert dsr == pytest.approx(published, abs=5e-4)


def _psr_transcription(sr: float, sr_star: float, t: int, g3: float, g4: float) -> float:
    """Direct transcription of the PSR with scipy, independent of the module's code."""
    sigma = np.sqrt((1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr**2) / (t - 1.0))
    return float(sps.norm(loc=0.0, scale=sigma).cdf(sr - sr_star))


def _sr0_transcription(n: int, v: float) -> float:
    q = sps.norm.isf  # Phi^-1(1 - p) == isf(p)
    return float(
        np.sqrt(v) * ((1 - np.euler_gamma) * q(1.0 / n) + np.euler_gamma * q(1.0 / (n * np.e)))
    )


def test_dsr_equals_direct_scipy_transcription() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        sr = rng.uniform(-0.3, 0.4)
        n = int(rng.integers(2, 5000))
        v = rng.uniform(1e-5, 0.05)
        t = int(rng.integers(2, 20000))
        g3 = rng.uniform(-3.0, 3.0)
        g4 = 1.0 + g3**2 + rng.uniform(0.0, 20.0)
        expected = _psr_transcription(sr, _sr0_transcription(n, v), t, g3, g4)
        got = deflated_sharpe_ratio(
            sr, n_trials=n, sharpe_variance=v, n_obs=t, skew=g3, kurtosis=g4
        )
        assert got == pytest.approx(expected, rel=1e-10, abs=1e-14)


def _exact_expected_max_std_normal(n: int) -> float:
    """E[max of n iid N(0, 1)] = integral of x * n * phi(x) * Phi(x)**(n-1)."""

    def integrand(x: float) -> float:
        return x * n * sps.norm.pdf(x) * sps.norm.cdf(x) ** (n - 1)

    value, _ = integrate.quad(integrand, -12.0, 12.0, limit=200)
    return value


@pytest.mark.parametrize("n", [10, 100, 1000])
def test_expected_max_sharpe_close_to_exact_extreme_value(n: int) -> None:
    """The paper's approximation is within 3 % of the exact expected maximum."""
    exact = _exact_expected_max_std_normal(n)
    approx = expected_max_sharpe(n, 1.0)
    assert abs(approx - exact) <= 0.03 * exact


def test_expected_max_sharpe_monte_carlo() -> None:
    """E[max SR of N unskilled trials] measured on simulated trials ~ SR0.

    N trials of T iid zero-mean returns; the mean (over replications) of the best
    per-period Sharpe matches SR0 computed with the measured variance of the trials'
    Sharpe ratios, within the approximation error (3 %) plus 4 standard errors.
    """
    rng = np.random.default_rng(2014)
    n_trials, n_obs, reps, chunk = 100, 250, 1000, 50
    maxima, variances = [], []
    for _ in range(reps // chunk):
        r = rng.standard_normal((chunk, n_obs, n_trials))
        sr = r.mean(axis=1) / r.std(axis=1, ddof=1)  # (chunk, n_trials)
        maxima.append(sr.max(axis=1))
        variances.append(sr.var(axis=1, ddof=1))
    maxima_arr = np.concatenate(maxima)
    sr0 = expected_max_sharpe(n_trials, float(np.mean(np.concatenate(variances))))
    se = maxima_arr.std(ddof=1) / math.sqrt(reps)
    assert abs(maxima_arr.mean() - sr0) <= 0.03 * sr0 + 4 * se


def test_dsr_rises_with_sharpe() -> None:
    kwargs = {
        "n_trials": 50,
        "sharpe_variance": 0.002,
        "n_obs": 1000,
        "skew": -0.5,
        "kurtosis": 6.0,
    }
    values = [deflated_sharpe_ratio(sr, **kwargs) for sr in np.linspace(0.0, 0.3, 31)]
    assert np.all(np.diff(values) > 0)
    assert values[0] < 0.05
    assert values[-1] > 0.95


def test_dsr_falls_with_number_of_trials() -> None:
    kwargs = {"sharpe_variance": 0.002, "n_obs": 1000, "skew": -0.5, "kurtosis": 6.0}
    trials = [1, 2, 5, 10, 50, 100, 1000, 10_000]
    values = [deflated_sharpe_ratio(0.12, n_trials=n, **kwargs) for n in trials]
    assert np.all(np.diff(values) < 0)


def test_dsr_falls_with_trial_variance_and_rises_with_track_length() -> None:
    base = {"n_trials": 100, "skew": 0.0, "kurtosis": 3.0}
    by_var = [
        deflated_sharpe_ratio(0.1, sharpe_variance=v, n_obs=2000, **base)
        for v in (0.0, 1e-4, 1e-3, 1e-2)
    ]
    assert np.all(np.diff(by_var) < 0)
    by_len = [
        deflated_sharpe_ratio(0.1, sharpe_variance=1e-4, n_obs=t, **base)
        for t in (50, 200, 1000, 5000)
    ]
    assert np.all(np.diff(by_len) > 0)


def test_single_trial_has_no_deflation() -> None:
    assert expected_max_sharpe(1, 0.5) == 0.0
    assert expected_max_sharpe(10, 0.0) == 0.0
    kwargs = {"n_obs": 500, "skew": 0.3, "kurtosis": 4.0}
    dsr = deflated_sharpe_ratio(0.05, n_trials=1, sharpe_variance=0.01, **kwargs)
    assert dsr == probabilistic_sharpe_ratio(0.05, 0.0, **kwargs)


def test_psr_is_one_half_at_the_benchmark_and_penalises_negative_skew() -> None:
    assert probabilistic_sharpe_ratio(0.1, 0.1, n_obs=100, skew=-1.0, kurtosis=5.0) == 0.5
    normal = probabilistic_sharpe_ratio(0.1, 0.0, n_obs=300, skew=0.0, kurtosis=3.0)
    left_tail = probabilistic_sharpe_ratio(0.1, 0.0, n_obs=300, skew=-2.0, kurtosis=3.0 + 5.0)
    assert left_tail < normal


def test_deflated_sharpe_from_returns_composes_the_parts() -> None:
    rng = np.random.default_rng(3)
    returns = rng.standard_t(4, size=800) * 0.01 + 0.001
    trial_sharpes = rng.normal(0.0, 0.04, size=60)
    skew, kurt = returns_moments(returns)
    expected = deflated_sharpe_ratio(
        sharpe_from_returns(returns),
        n_trials=60,
        sharpe_variance=float(np.var(trial_sharpes, ddof=1)),
        n_obs=800,
        skew=skew,
        kurtosis=kurt,
    )
    assert deflated_sharpe_from_returns(returns, trial_sharpes) == expected


# --------------------------------------------------------------------------- helpers


def test_returns_moments_hand_computed_bernoulli() -> None:
    """[0, 0, 0, 1] is Bernoulli(1/4): skew = (1-2p)/sqrt(p q) = 2/sqrt(3),
    raw kurtosis = (1 - 6 p q)/(p q) + 3 = 7/3."""
    skew, kurt = returns_moments(np.array([0.0, 0.0, 0.0, 1.0]))
    assert skew == pytest.approx(2.0 / math.sqrt(3.0), rel=1e-12)
    assert kurt == pytest.approx(7.0 / 3.0, rel=1e-12)
    skew2, kurt2 = returns_moments(np.array([-1.0, 1.0, -1.0, 1.0]))
    assert skew2 == pytest.approx(0.0, abs=1e-15)
    assert kurt2 == pytest.approx(1.0, rel=1e-12)  # Pearson's bound, attained


def test_returns_moments_normal_sample_is_raw_kurtosis() -> None:
    skew, kurt = returns_moments(np.random.default_rng(11).standard_normal(200_000))
    assert abs(skew) < 0.03 and abs(kurt - 3.0) < 0.06


def test_sharpe_hand_computed() -> None:
    assert sharpe_from_returns(np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0)
    assert sharpe_from_returns(np.array([1.0, 2.0, 3.0]), periods_per_year=4) == pytest.approx(4.0)
    assert sharpe_from_returns(np.zeros(5)) == 0.0
    assert sharpe_from_returns(np.full(5, 0.01)) == math.inf
    cols = sharpe(np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -3.0], [3.0, 0.0, -2.0]]))
    np.testing.assert_allclose(cols, [2.0, 0.0, -2.0])


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_trials": 0}, ValueError, "n_trials"),
        ({"n_trials": 2.5}, TypeError, "n_trials"),
        ({"n_trials": True}, TypeError, "n_trials"),
        ({"sharpe_variance": -1e-6}, ValueError, "sharpe_variance"),
        ({"sharpe_variance": float("nan")}, ValueError, "sharpe_variance"),
        ({"n_obs": 1}, ValueError, "n_obs"),
        ({"skew": float("inf")}, ValueError, "skew"),
        ({"kurtosis": 0.0}, ValueError, "kurtosis"),  # excess kurtosis passed by mistake
        ({"skew": 2.0, "kurtosis": 4.0}, ValueError, "1 \\+ skew"),
        ({"sharpe": float("nan")}, ValueError, "sharpe"),
        ({"sharpe": "0.1"}, TypeError, "sharpe"),
    ],
)
def test_dsr_validation(kwargs: dict, exc: type, match: str) -> None:
    args = {
        "sharpe": 0.1,
        "n_trials": 10,
        "sharpe_variance": 0.001,
        "n_obs": 500,
        "skew": 0.0,
        "kurtosis": 3.0,
    }
    args.update(kwargs)
    sr = args.pop("sharpe")
    with pytest.raises(exc, match=match):
        deflated_sharpe_ratio(sr, **args)


def test_psr_rejects_zero_variance_factor() -> None:
    # Pearson's bound attained (kurt = 1 + skew**2) and SR = 2/skew: factor = 0.
    with pytest.raises(ValueError, match="must be > 0"):
        probabilistic_sharpe_ratio(0.5, 0.0, n_obs=100, skew=4.0, kurtosis=17.0)


@pytest.mark.parametrize(
    ("returns", "match"),
    [
        (np.zeros((3, 2)), "1-D"),
        (np.array([0.1]), "at least 2"),
        (np.array([0.1, np.nan, 0.2]), r"returns\[1\]"),
    ],
)
def test_returns_validation(returns: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sharpe_from_returns(returns)
    with pytest.raises(ValueError, match=match):
        returns_moments(returns)


def test_deflated_sharpe_from_returns_validates_trial_sharpes() -> None:
    returns = np.random.default_rng(0).standard_normal(50)
    with pytest.raises(ValueError, match=r"trial_sharpes\[2\]"):
        deflated_sharpe_from_returns(returns, np.array([0.1, 0.2, np.nan]))
    with pytest.raises(ValueError, match="trial_sharpes needs at least 1"):
        deflated_sharpe_from_returns(returns, np.array([]))
    single = deflated_sharpe_from_returns(returns, np.array([0.05]))
    skew, kurt = returns_moments(returns)
    expected = probabilistic_sharpe_ratio(
        sharpe_from_returns(returns), 0.0, n_obs=50, skew=skew, kurtosis=kurt
    )
    assert single == expected


def test_returns_moments_rejects_constant_series() -> None:
    with pytest.raises(ValueError, match="constant"):
        returns_moments(np.full(10, 0.01))
    with pytest.raises(ValueError, match="periods_per_year"):
        sharpe_from_returns(np.array([0.1, 0.2]), periods_per_year=0)


def test_euler_gamma_constant() -> None:
    assert EULER_GAMMA == pytest.approx(0.5772156649015329, rel=1e-15)
