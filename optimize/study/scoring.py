"""A span's signals scored: the backtests of the model and its baselines, and what is stored.

A span (one fold's test window, the whole out-of-sample span or the holdout) is traded by every
pair's signals (:class:`PairFold`: the model's and the "no model" baseline's, the same thresholds
applied to T itself). :func:`score_span` backtests both and adds equal-weight buy-and-hold;
:class:`SpanScore` gives the objective's values, the metrics (:data:`FOLD_METRIC_KEYS`), the
baselines and the daily returns as trials and holdout records store them. :func:`daily_equity`
and :func:`trade_records` are the other stored views of a span: its end-of-day equity curves and
its trades (what ``python -m optimize verify`` matches against freqtrade's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optimize.backtest.engine import BacktestResult, backtest
from optimize.backtest.metrics import buy_and_hold
from optimize.search.objectives.base import Objective
from optimize.study.inputs import StudyData

FOLD_METRIC_KEYS = (
    "total_trades",
    "profit_total",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_account",
    "winrate",
    "profit_factor",
    "exposure",
    "cagr",
)
"""The metrics stored per span (fold, out-of-sample span, holdout) and compared by ``verify``."""


@dataclass
class PairFold:
    """Signals of one pair in one fold's test window (model and no-model baseline)."""

    enter: np.ndarray
    exit: np.ndarray
    base_enter: np.ndarray
    base_exit: np.ndarray
    info: dict[str, Any]

    @classmethod
    def flat(cls, n: int) -> PairFold:
        """``n`` candles without any signal (four separate arrays, to be filled with
        :meth:`put`)."""
        return cls(*(np.zeros(n, bool) for _ in range(4)), info={})

    def put(self, sl: slice, signals: PairFold) -> None:
        """Write ``signals`` (a window's) into ``sl`` of these arrays."""
        for name in ("enter", "exit", "base_enter", "base_exit"):
            getattr(self, name)[sl] = getattr(signals, name)

    def window(self, sl: slice) -> PairFold:
        """These signals on ``sl`` (views)."""
        return PairFold(
            self.enter[sl], self.exit[sl], self.base_enter[sl], self.base_exit[sl], self.info
        )


def span_backtest(data: StudyData, sl: slice, enter: dict, exit_: dict) -> BacktestResult:
    """Backtest every pair's candles ``sl`` with ``enter``/``exit_`` (``pair -> bool array`` of
    the span's length) under the study's backtest settings."""
    candles = {p: d.candles.iloc[sl] for p, d in data.pairs.items()}
    return backtest(candles, enter, exit_, settings=data.config.backtest)


def metric_subset(metrics: dict[str, float]) -> dict[str, float]:
    """The :data:`FOLD_METRIC_KEYS` of a backtest's ``metrics`` as floats (missing keys omitted)."""
    return {k: float(metrics[k]) for k in FOLD_METRIC_KEYS if k in metrics}


def _buy_and_hold(data: StudyData, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, float]:
    """Equal-weight buy-and-hold of the pairs from ``start`` to ``end``: the mean profit and
    drawdown, and each pair's profit (``per_pair``)."""
    per_pair = {
        p: buy_and_hold(d.candles, start, end, fee=data.config.backtest.fee)
        for p, d in data.pairs.items()
    }
    return {
        "profit_total": float(np.mean([m["profit_total"] for m in per_pair.values()])),
        "max_drawdown_equity": float(
            np.mean([m["max_drawdown_equity"] for m in per_pair.values()])
        ),
        "per_pair": {p: m["profit_total"] for p, m in per_pair.items()},
    }


@dataclass(frozen=True)
class SpanScore:
    """One span backtested with the model's signals, next to the two baselines.

    Attributes:
        values: the objective of the model's backtest.
        model, no_model: the backtests of the model's and of the no-model signals.
        buy_and_hold: equal-weight buy-and-hold of the pairs over the span (and each pair's profit).
    """

    values: tuple[float, ...]
    model: BacktestResult
    no_model: BacktestResult
    buy_and_hold: dict[str, Any]

    @property
    def metrics(self) -> dict[str, float]:
        """The model's metrics (:data:`FOLD_METRIC_KEYS`)."""
        return metric_subset(self.model.metrics)

    @property
    def baselines(self) -> dict[str, Any]:
        """``buy_and_hold`` and ``no_model`` (its metrics), as stored with trials and holdouts."""
        return {"buy_and_hold": self.buy_and_hold, "no_model": metric_subset(self.no_model.metrics)}

    @property
    def daily_returns(self) -> list[float]:
        """The model's daily returns (a day without any, NaN, counts as 0)."""
        return [float(x) for x in np.nan_to_num(self.model.daily_returns.to_numpy(), nan=0.0)]


def score_span(
    data: StudyData,
    objective: Objective,
    sl: slice,
    start: pd.Timestamp,
    end: pd.Timestamp,
    signals: Mapping[str, PairFold],
) -> SpanScore:
    """Backtest the candles ``sl`` with every pair's model and no-model ``signals`` (arrays of the
    span's length) and score the model's; buy-and-hold runs from ``start`` to ``end``."""
    model = span_backtest(
        data, sl, {p: s.enter for p, s in signals.items()}, {p: s.exit for p, s in signals.items()}
    )
    no_model = span_backtest(
        data,
        sl,
        {p: s.base_enter for p, s in signals.items()},
        {p: s.base_exit for p, s in signals.items()},
    )
    return SpanScore(objective(model.metrics), model, no_model, _buy_and_hold(data, start, end))


def daily_equity(
    data: StudyData, sl: slice, model: BacktestResult, no_model: BacktestResult
) -> dict[str, Any]:
    """End-of-day equity over ``sl`` of the model, the no-model baseline and buy-and-hold.

    Values are ratios to the starting wallet (1.0 = unchanged), one per calendar day (UTC) from
    ``start``, rounded to 6 decimals. Buy-and-hold is the equal-weight mean over the pairs of
    ``close_t / close_0 * (1 - fee) / (1 + fee)`` (bought at the first close, as in
    :func:`optimize.backtest.metrics.buy_and_hold`), so its last value is ``1 + profit_total``.
    """
    fee = data.config.backtest.fee
    growth = (
        np.mean(
            [
                d.candles["close"].to_numpy(np.float64)[sl]
                / float(d.candles["close"].iloc[sl.start])
                for d in data.pairs.values()
            ],
            axis=0,
        )
        * (1.0 - fee)
        / (1.0 + fee)
    )
    curves = pd.DataFrame(
        {
            "model": model.equity.to_numpy() / model.settings.dry_run_wallet,
            "no_model": no_model.equity.to_numpy() / no_model.settings.dry_run_wallet,
            "buy_and_hold": growth,
        },
        index=model.equity.index,
    )
    days = curves.resample("1D").last().dropna()
    out: dict[str, Any] = {"start": days.index[0].strftime("%Y-%m-%d") if len(days) else None}
    out.update({k: [round(float(x), 6) for x in days[k]] for k in curves.columns})
    return out


TRADE_RECORD_KEYS = ("pair", "open_date", "close_date", "exit_reason", "profit_ratio", "profit_abs")
"""What is stored of each trade (with the trial, the holdout record and the export)."""


def trade_records(result: BacktestResult) -> list[dict[str, Any]]:
    """The trades of a backtest as JSON-able dicts (:data:`TRADE_RECORD_KEYS`; dates ISO UTC).

    These are what ``python -m optimize verify`` matches against freqtrade's trades (pair, open
    and close date, exit reason).
    """
    return records_of_trades(result.trades)


def records_of_trades(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a trades frame (this engine's or freqtrade's: the same column names) as the
    :data:`TRADE_RECORD_KEYS` dicts, dates as ISO strings."""
    return [
        {
            "pair": str(row.pair),
            "open_date": pd.Timestamp(row.open_date).isoformat(),
            "close_date": pd.Timestamp(row.close_date).isoformat(),
            "exit_reason": str(row.exit_reason),
            "profit_ratio": float(row.profit_ratio),
            "profit_abs": float(row.profit_abs),
        }
        for row in frame.itertuples(index=False)
    ]


__all__ = [
    "FOLD_METRIC_KEYS",
    "TRADE_RECORD_KEYS",
    "PairFold",
    "SpanScore",
    "daily_equity",
    "metric_subset",
    "score_span",
    "span_backtest",
    "trade_records",
]
