"""The study's spans in freqtrade's terms: timeranges, the walk-forward plan and the warm-up.

freqtrade backtests a ``--timerange`` and loads ``startup_candle_count`` candles (plus FreqAI's
``train_period_days``) before it; the study trades the candles ``start <= date < end`` of each
span and computes its indicators from a warm-up start. These functions translate one into the
other, for the export (:mod:`optimize.freqtrade.export`) and the verification
(:mod:`optimize.freqtrade.verify`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from base.errors import InputError
from optimize.config import RunConfig
from optimize.evaluation.holdout import first_pair_candles
from optimize.walkforward import WalkForwardPlan, make_folds
from strategy.features import warmup_start
from strategy.timeframes import timeframe_to_timedelta


def timerange_of(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """freqtrade timerange in epoch seconds (``start-end``) for a UTC span."""
    return f"{int(pd.Timestamp(start).timestamp())}-{int(pd.Timestamp(end).timestamp())}"


def span_timerange(start: pd.Timestamp, end: pd.Timestamp, timeframe: str) -> str:
    """The freqtrade timerange whose backtest trades exactly the candles ``start <= date < end``.

    freqtrade keeps the candle that opens at the timerange's end (and force-exits open trades on
    the last candle it has), while FreqAI predicts only before it; the study's span ends with the
    candle before ``end``. Ending the timerange at that candle's open gives freqtrade the study's
    candles: the same last candle for force exits, and no fill at a candle the study never sees.
    """
    return timerange_of(start, pd.Timestamp(end) - timeframe_to_timedelta(timeframe))


def study_plan(config: RunConfig) -> WalkForwardPlan:
    """The study's walk-forward plan (folds and holdout), from the first pair's base candles."""
    candles = first_pair_candles(config, from_span_start=True)
    return make_folds(pd.DatetimeIndex(candles["date"]), config.walkforward, config.data.timeframe)


def study_warmup_start(config: RunConfig) -> pd.Timestamp:
    """The first candle the study computes indicators from
    (:func:`strategy.features.warmup_start`)."""
    data = config.data
    candles = first_pair_candles(config)
    start = pd.Timestamp(data.start, tz="UTC") if data.start else None
    return warmup_start(start, candles["date"].iloc[0], data.timeframe)


def startup_candles(start: Any, train_period_days: float, warmup: Any, timeframe: str) -> int:
    """freqtrade's ``startup_candle_count`` that makes a FreqAI backtest from ``start`` load the
    base candles from ``warmup`` on.

    freqtrade loads ``startup_candle_count`` + ``train_period_days`` worth of base candles before
    the timerange's start; the strategy computes its indicators from ``warmup`` on, so loading
    exactly back to it (or further) gives the study's values.

    Raises:
        InputError: ``start`` is less than ``train_period_days`` after ``warmup`` (FreqAI's
            first training window would begin before the study's first candle).
    """
    first = pd.Timestamp(start) - pd.Timedelta(days=train_period_days)
    gap = first - pd.Timestamp(warmup)
    if gap < pd.Timedelta(0):
        raise InputError(
            f"a FreqAI backtest from {pd.Timestamp(start)} trains from {first}, before the study's "
            f"first candle {pd.Timestamp(warmup)} (warm-up start); choose a later timerange."
        )
    return int(gap // timeframe_to_timedelta(timeframe))


__all__ = [
    "span_timerange",
    "startup_candles",
    "study_plan",
    "study_warmup_start",
    "timerange_of",
]
