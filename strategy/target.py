"""The target score T(w) of the "dynamic weighting and aggregate scoring" strategy.

Formulas exactly as seeds 001/002 write them (quirks included):

* each indicator is z-normalised over its own rolling window,
  ``z = (x - x.rolling(n).mean()) / x.rolling(n).std()`` (sample std), with the windows
  ma 10 (on ``close``, not on the SMA), macd 26, roc 2, momentum 4, rsi 10, cci 20, stoch 14,
  atr 14, obv 14; the Bollinger width is "normalised" as ``width.rolling(20).mean() /
  width.rolling(20).std()`` (no centring);
* ``S = w0·z_ma + w1·z_macd + w2·z_roc + w3·z_rsi + w4·z_bbw + w5·z_cci + w_mom·z_mom
  + w6·z_obv + w7·z_atr + w8·z_stoch`` where ``w_mom = w3``, times 1.5 where the trend is
  strong: ``|ma - close| > rolling14 mean + 1.5·rolling14 std`` of ``|ma - close|``;
* ``R = 1`` above the upper Bollinger band, ``-1`` below the lower one, else 0;
  ``R2 = 1`` above SMA(100), else ``-1``; ``V = middle / (upper - lower)``; ``V2 = 1 / ATR``;
* ``T = S · R · V · R2 · V2``.

:class:`TargetBasis` holds everything that does not depend on the weights — the matrix
``Z`` of the normalised indicators (the momentum column already carries the 1.0/1.5 trend factor),
the multiplier ``M = R·V·R2·V2`` and the strong-trend mask — so that ``T`` for new weights is one
matrix-vector product: :meth:`TargetBasis.score`. :func:`target_score` is the pandas-facing API.

Every value at row ``t`` depends on candles ``<= t`` only. NaN appears in the warm-up and where a
rolling std is zero (e.g. flat gap-filled candles); inf where a divisor is exactly zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from base.errors import InputError
from strategy.indicators import seed_indicators

N_WEIGHTS = 9
WEIGHT_NAMES = tuple(f"w{i}" for i in range(N_WEIGHTS))
"""w0 ma, w1 macd, w2 roc, w3 rsi (and momentum), w4 bb width, w5 cci, w6 obv, w7 atr, w8 stoch."""

BASIS_COLUMNS = ("ma", "macd", "roc", "rsi", "bb_width", "cci", "obv", "atr", "stoch", "momentum")
"""Columns of ``Z``: the first nine pair with w0..w8, the last (momentum) with w3."""

STRONG_TREND_FACTOR = 1.5


def _zscore(x: pd.Series, window: int) -> pd.Series:
    roll = x.rolling(window=window)
    return (x - roll.mean()) / roll.std()


def check_weights(weights: Sequence[float]) -> np.ndarray:
    """Validate ``w0..w8`` and return them as a float64 array.

    Raises:
        ValueError: wrong length or a non-finite weight.
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (N_WEIGHTS,):
        raise InputError(
            f"weights must be the 9 values w0..w8, but got {len(w)} values: {list(w)}."
        )
    if not np.all(np.isfinite(w)):
        raise InputError(f"weights must be finite, but got weights={list(w)}.")
    return w


@dataclass(frozen=True, eq=False)
class TargetBasis:
    """Weight-independent part of T for one pair, built once, scored many times.

    Attributes:
        z: (n, 10) float64, the normalised indicators in :data:`BASIS_COLUMNS` order; the momentum
            column is already multiplied by 1.5 where the trend is strong.
        multiplier: (n,) float64, ``M = R·V·R2·V2``.
        strong_trend: (n,) bool, the seed's strong-trend mask.
        index: the candles' index (for :meth:`series`).
    """

    z: np.ndarray
    multiplier: np.ndarray
    strong_trend: np.ndarray
    index: pd.Index

    @classmethod
    def from_candles(cls, candles: pd.DataFrame) -> TargetBasis:
        """Compute the indicators, Z, M and the trend mask (pandas, once per pair)."""
        ind = seed_indicators(candles)
        close = pd.Series(candles["close"].to_numpy(dtype=np.float64), index=candles.index)
        width = ind["bb_upperband"] - ind["bb_lowerband"]
        trend = (ind["ma"] - close).abs()
        roll = trend.rolling(window=14)
        strong = (trend > roll.mean() + STRONG_TREND_FACTOR * roll.std()).to_numpy()
        z = np.column_stack(
            [
                _zscore(close, 10),
                _zscore(ind["macd"], 26),
                _zscore(ind["roc"], 2),
                _zscore(ind["rsi"], 10),
                width.rolling(window=20).mean() / width.rolling(window=20).std(),
                _zscore(ind["cci"], 20),
                _zscore(ind["obv"], 14),
                _zscore(ind["atr"], 14),
                _zscore(ind["stoch"], 14),
                _zscore(ind["momentum"], 4).to_numpy() * np.where(strong, STRONG_TREND_FACTOR, 1.0),
            ]
        )
        c = close.to_numpy()
        upper, middle, lower = (
            ind[k].to_numpy() for k in ("bb_upperband", "bb_middleband", "bb_lowerband")
        )
        regime = np.where(
            (c > middle) & (c > upper), 1.0, np.where((c < middle) & (c < lower), -1.0, 0.0)
        )
        regime2 = np.where(c > ind["ma_100"].to_numpy(), 1.0, -1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            vol = 1.0 / ((upper - lower) / middle)
            vol2 = 1.0 / ind["atr"].to_numpy()
        multiplier = regime * vol * regime2 * vol2
        return cls(
            z=np.ascontiguousarray(z, dtype=np.float64),
            multiplier=np.ascontiguousarray(multiplier, dtype=np.float64),
            strong_trend=strong.astype(bool),
            index=candles.index,
        )

    def __len__(self) -> int:
        return self.z.shape[0]

    @staticmethod
    def effective_weights(weights: Sequence[float]) -> np.ndarray:
        """``w0..w8`` -> the 10 weights of Z's columns (momentum takes w3)."""
        w = check_weights(weights)
        return np.append(w, w[3])

    def aggregate(self, weights: Sequence[float]) -> np.ndarray:
        """The aggregate score ``S`` (n,) for ``weights``."""
        with np.errstate(invalid="ignore", over="ignore"):
            # einsum's own loop: single-threaded, so a busy machine does not stall it waiting for
            # a BLAS thread (a 50k x 10 product is far too small to gain from threads).
            return np.einsum("ij,j->i", self.z, self.effective_weights(weights))

    def score(self, weights: Sequence[float]) -> np.ndarray:
        """The target ``T = S · M`` (n,) for ``weights`` — pure NumPy, no pandas."""
        with np.errstate(invalid="ignore", over="ignore"):
            return self.aggregate(weights) * self.multiplier

    def series(self, weights: Sequence[float]) -> pd.Series:
        """:meth:`score` as a Series named ``T`` on the candles' index."""
        return pd.Series(self.score(weights), index=self.index, name="T")


def target_score(candles: pd.DataFrame, weights: Sequence[float]) -> pd.Series:
    """The seed's target score T for one pair.

    Args:
        candles: one pair's candles (date, open, high, low, close, volume).
        weights: w0..w8 (see :data:`WEIGHT_NAMES`); the seed suggests values in [0, 1].

    Returns:
        Series named ``"T"``, index aligned with ``candles``, NaN in the warm-up.
    """
    check_weights(weights)
    return TargetBasis.from_candles(candles).series(weights)


def make_labels(target: np.ndarray, horizon: int) -> np.ndarray:
    """``y_t = T_{t+h}``; the last ``h`` rows have no label (NaN)."""
    if horizon == 0:
        return target.copy()
    y = np.full_like(target, np.nan)
    y[:-horizon] = target[horizon:]
    return y
