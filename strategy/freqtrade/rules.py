"""How a trial's parameters become freqtrade strategy parameters, thresholds and signals.

Pure functions shared by the FreqAI strategy, the FreqAI model and the export (no freqtrade
import, no I/O), so that all three agree on names, rounding and semantics.

Strategy parameters (freqtrade ``DecimalParameter`` / ``CategoricalParameter``):

* ``buy`` space: ``w0``..``w8`` (target weights), ``threshold_mode`` and ``entry_threshold``;
* ``sell`` space: ``exit_gap``;
* ``futures`` space (futures exports only): ``trade_direction`` (``long``, ``short``, ``both``:
  :data:`strategy.signals.DIRECTIONS`) and ``trade_leverage`` (what the strategy's ``leverage()``
  callback returns; freqtrade caps it by the pair's leverage tiers).

freqtrade rounds a ``DecimalParameter`` to its ``decimals`` when it loads a value, so the export
writes values already rounded with :func:`round_param` and freqtrade loads exactly those.

Thresholds per candle (the three modes of :mod:`strategy.signals`), from the columns FreqAI
returns to the strategy:

``quantile``
    The quantiles of the model's in-sample training predictions. The FreqAI model computes them
    at train time with :func:`strategy.signals.resolve_thresholds` (the study's own code) for the
    strategy's current ``entry_threshold`` / ``exit_gap`` and returns them, with the parameters
    they were computed for, through FreqAI's ``extra_returns_per_train`` (columns
    :data:`EXTRA_RETURNS`). Changing those parameters afterwards (freqtrade hyperopt) would need
    new quantiles: :func:`candle_thresholds` refuses stale ones with a clear error.
``zscore``
    ``buy = mean + entry * std`` and ``sell = buy - exit_gap * std`` of the training labels, read
    from FreqAI's ``&-target_mean`` / ``&-target_std`` columns (the model stores
    :func:`strategy.signals.label_stats` of the training labels: mean and population std of the
    finite labels, the statistic :func:`~strategy.signals.resolve_thresholds` uses). Hyperopt-safe.
``absolute``
    ``buy = entry``, ``sell = entry - exit_gap``. Hyperopt-safe.

Signals: :func:`side_signals` applies :func:`strategy.signals.direction_signals` with each
candle's thresholds (one pair per FreqAI training window): entries only where FreqAI's
``do_predict`` is 1, exits there and where only the dissimilarity index set it to 0
(:func:`di_blocked`), as the study trades (:func:`trade_signals`: its long side).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from base.errors import ConfigError, InputError
from strategy.pipeline import DataPipeline
from strategy.signals import (
    THRESHOLD_MODES,
    SignalParams,
    Signals,
    Thresholds,
    direction_signals,
)
from strategy.target import WEIGHT_NAMES

SETTINGS_KEY = "lstm_optuna"
"""Top-level freqtrade config block with the project's settings and export metadata."""

LABEL = "&-target"
"""FreqAI label column: ``y_t = T_{t+h}`` (the model's prediction replaces it in backtests)."""
LABEL_MEAN = f"{LABEL}_mean"
LABEL_STD = f"{LABEL}_std"

WEIGHT_DECIMALS = 6
THRESHOLD_DECIMALS = 8
LEVERAGE_DECIMALS = 2
"""Decimals of ``trade_leverage`` (the search space rounds a trial's leverage to them)."""
BUY_SPACE = "buy"
SELL_SPACE = "sell"
FUTURES_SPACE = "futures"
"""Parameter space of ``trade_direction`` and ``trade_leverage`` (written for futures only)."""

EXTRA_BUY = "lstm_threshold_buy"
EXTRA_SELL = "lstm_threshold_sell"
EXTRA_MODE = "lstm_threshold_mode"
EXTRA_ENTRY = "lstm_threshold_entry"
EXTRA_EXIT_GAP = "lstm_threshold_exit_gap"
EXTRA_RETURNS = (EXTRA_BUY, EXTRA_SELL, EXTRA_MODE, EXTRA_ENTRY, EXTRA_EXIT_GAP)
"""Per-train values the FreqAI model returns (FreqAI ``extra_returns_per_train``)."""


def round_param(value: float, decimals: int) -> float:
    """Round like freqtrade's ``DecimalParameter`` does when it loads a value."""
    return float(round(float(value), decimals))


def mode_code(mode: str) -> float:
    """Numeric code of a threshold mode (extra returns are numbers): its index in
    THRESHOLD_MODES."""
    if mode not in THRESHOLD_MODES:
        raise ConfigError(f"threshold mode must be one of {THRESHOLD_MODES}, but got {mode=!r}.")
    return float(THRESHOLD_MODES.index(mode))


def strategy_params(
    weights: tuple[float, ...], signal: SignalParams, leverage: float | None = None
) -> dict[str, dict[str, Any]]:
    """The strategy's parameter values for a trial, per freqtrade space, rounded as freqtrade loads
    them.

    Args:
        weights: ``w0..w8``.
        signal: the trial's threshold parameters and direction.
        leverage: the trial's leverage in futures mode; None in spot mode (no ``futures`` space:
            the strategy trades long at leverage 1).

    Returns:
        ``{"buy": {"w0": .., .., "threshold_mode": .., "entry_threshold": ..},
        "sell": {"exit_gap": ..}}``, plus ``"futures": {"trade_direction": ..,
        "trade_leverage": ..}`` with a leverage.

    Raises:
        ValueError: a wrong number of weights, or a direction with shorts without a leverage
            (spot mode).
    """
    if len(weights) != len(WEIGHT_NAMES):
        raise InputError(f"weights must be the 9 values w0..w8, but got {len(weights)} values.")
    if leverage is None and signal.shorts:
        raise InputError(
            f"direction={signal.direction!r} shorts, which needs futures mode (pass the trial's "
            "leverage); spot strategies trade long only."
        )
    buy: dict[str, Any] = {
        name: round_param(w, WEIGHT_DECIMALS) for name, w in zip(WEIGHT_NAMES, weights, strict=True)
    }
    buy["threshold_mode"] = signal.mode
    buy["entry_threshold"] = round_param(signal.entry, THRESHOLD_DECIMALS)
    sell = {"exit_gap": round_param(signal.exit_gap, THRESHOLD_DECIMALS)}
    out: dict[str, dict[str, Any]] = {BUY_SPACE: buy, SELL_SPACE: sell}
    if leverage is not None:
        out[FUTURES_SPACE] = {
            "trade_direction": signal.direction,
            "trade_leverage": round_param(leverage, LEVERAGE_DECIMALS),
        }
    return out


def label_horizon(freqai_info: Mapping[str, Any]) -> int:
    """``h`` of ``y_t = T_{t+h}``: ``freqai.feature_parameters.label_period_candles`` (default 0).

    Raises:
        ValueError: it is not an integer >= 0.
    """
    h = freqai_info.get("feature_parameters", {}).get("label_period_candles", 0)
    if isinstance(h, bool) or not isinstance(h, int) or h < 0:
        raise ConfigError(
            "freqai.feature_parameters.label_period_candles must be an integer >= 0, but got "
            f"label_period_candles={h!r}."
        )
    return h


def extra_returns(signal: SignalParams | None, thresholds: Thresholds | None) -> dict[str, float]:
    """The per-train values the FreqAI model hands to the strategy (NaN where unknown)."""
    if signal is None or thresholds is None:
        return {name: math.nan for name in EXTRA_RETURNS}
    return {
        EXTRA_BUY: float(thresholds.buy),
        EXTRA_SELL: float(thresholds.sell),
        EXTRA_MODE: mode_code(signal.mode),
        EXTRA_ENTRY: float(signal.entry),
        EXTRA_EXIT_GAP: float(signal.exit_gap),
    }


def _column(columns: Mapping[str, Any], name: str, n: int) -> np.ndarray:
    if name not in columns:
        raise KeyError(
            f"the strategy dataframe lacks the FreqAI column {name!r}; is the FreqAI model "
            f"LstmOptunaRegressor (freqai.extra_returns_per_train must list {list(EXTRA_RETURNS)})?"
        )
    values = np.asarray(columns[name], dtype=np.float64)
    if values.shape != (n,):
        raise ValueError(f"column {name!r} must have {n} values, but got shape {values.shape}.")
    return values


def candle_thresholds(
    signal: SignalParams, columns: Mapping[str, Any], do_predict: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Entry/exit thresholds for every candle, from the columns FreqAI returned.

    Args:
        signal: the strategy's current threshold parameters.
        columns: the strategy dataframe (or any mapping of column name -> values).
        do_predict: FreqAI's ``do_predict`` per candle; only rows where it is 1 are checked.

    Returns:
        ``(buy, sell)`` float64 arrays, one value per candle (NaN: no signal possible).

    Raises:
        KeyError: a needed FreqAI column is missing.
        ValueError: ``quantile`` mode with quantiles computed for other parameters than
            ``signal`` (e.g. freqtrade hyperopt changed ``entry_threshold`` after training).
    """
    ok = np.asarray(do_predict) == 1
    n = ok.shape[0]
    if signal.mode == "absolute":
        return np.full(n, signal.entry), np.full(n, signal.entry - signal.exit_gap)
    if signal.mode == "zscore":
        mean = _column(columns, LABEL_MEAN, n)
        std = _column(columns, LABEL_STD, n)
        buy = mean + signal.entry * std
        return buy, buy - signal.exit_gap * std
    buy = _column(columns, EXTRA_BUY, n)
    sell = _column(columns, EXTRA_SELL, n)
    used = {
        "threshold_mode": (_column(columns, EXTRA_MODE, n), mode_code(signal.mode)),
        "entry_threshold": (_column(columns, EXTRA_ENTRY, n), signal.entry),
        "exit_gap": (_column(columns, EXTRA_EXIT_GAP, n), signal.exit_gap),
    }
    for name, (values, wanted) in used.items():
        stale = ok & ~np.isclose(values, wanted, rtol=0.0, atol=1e-12)
        if stale.any():
            got = values[np.flatnonzero(stale)[0]]
            raise ConfigError(
                f"quantile thresholds were computed at training time for {name}={got!r}, but the "
                f"strategy now has {name}={wanted!r}. Quantile thresholds need a retrain (a new "
                "FreqAI identifier); freqtrade hyperopt can only re-threshold in zscore or "
                "absolute mode."
            )
    return buy, sell


def di_blocked(
    freqai_info: Mapping[str, Any], columns: Mapping[str, Any], n: int
) -> np.ndarray | None:
    """Candles whose ``do_predict`` the dissimilarity index set to 0: ``DI_values >=
    DI_threshold`` (None when ``freqai.feature_parameters.DI_threshold`` is off)."""
    threshold = DataPipeline.from_feature_parameters(
        freqai_info.get("feature_parameters", {})
    ).DI_threshold
    if not threshold:
        return None
    values = _column(columns, "DI_values", n)
    with np.errstate(invalid="ignore"):
        return values >= threshold


def side_signals(
    prediction: np.ndarray,
    do_predict: np.ndarray,
    buy: np.ndarray,
    sell: np.ndarray,
    blocked: np.ndarray | None = None,
    direction: str = "long",
) -> Signals:
    """Entry/exit booleans of both sides with the study's rules, each candle against its own
    thresholds.

    :func:`strategy.signals.direction_signals` with per-candle thresholds (one pair per FreqAI
    training window): entries where ``do_predict == 1``; exits there and on the ``blocked``
    candles (the dissimilarity index's, :func:`di_blocked`: it stops entries, not exits);
    candles with non-finite thresholds get no signal.

    Returns:
        :class:`strategy.signals.Signals`: never both entries on one candle, never an entry with
        the exit of its own side; the sides ``direction`` does not trade are all False.
    """
    pred = np.asarray(prediction, dtype=np.float64)
    n = pred.shape[0]
    buy = np.broadcast_to(np.asarray(buy, dtype=np.float64), (n,))
    sell = np.broadcast_to(np.asarray(sell, dtype=np.float64), (n,))
    finite = np.isfinite(buy) & np.isfinite(sell)
    predicted = np.asarray(do_predict) == 1
    raw = direction_signals(pred, Thresholds(buy, sell), direction, predicted)
    exits = predicted if blocked is None else predicted | np.asarray(blocked, dtype=bool)
    return Signals(
        enter_long=raw.enter_long & finite,
        exit_long=raw.exit_long & finite & exits,
        enter_short=raw.enter_short & finite,
        exit_short=raw.exit_short & finite & exits,
    )


def trade_signals(
    prediction: np.ndarray,
    do_predict: np.ndarray,
    buy: np.ndarray,
    sell: np.ndarray,
    blocked: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The long side of :func:`side_signals`: ``(enter_long, exit_long)``, never both True."""
    signals = side_signals(prediction, do_predict, buy, sell, blocked, "long")
    return signals.enter_long, signals.exit_long
