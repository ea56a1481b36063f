"""A span's signals scored: the backtests of the model and its baselines, and what is stored.

A span (one fold's test window, the whole out-of-sample span or the holdout) is traded by every
pair's signals (:class:`PairFold`: the model's and the "no model" baseline's, the same thresholds
and the same direction's rules applied to T itself, so in futures mode with ``direction: both`` the
baseline trades both directions on T) under the trial's backtest settings (its leverage; futures
backtests take the pairs' funding and market records). :func:`score_span` backtests both and adds
equal-weight buy-and-hold (in futures mode a long held at the trial's leverage, with funding);
:class:`SpanScore` gives the objective's values, the metrics (:data:`FOLD_METRIC_KEYS`), the
baselines and the daily returns as trials and holdout records store them. :func:`daily_equity`
and :func:`trade_records` are the other stored views of a span: its end-of-day equity curves and
its trades (what ``python -m optimize verify`` matches against freqtrade's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optimize.backtest.engine import BacktestResult, backtest
from optimize.backtest.metrics import buy_and_hold, max_drawdown_equity
from optimize.backtest.settings import BacktestSettings
from optimize.evaluation.inputs import StudyData
from optimize.search.objectives.base import Objective
from strategy.signals import Signals

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


SIDE_KEYS = ("long_trades", "short_trades", "funding_paid")
"""Stored with every span's metrics next to :data:`FOLD_METRIC_KEYS`: the trades of each side and
the funding the trades paid, in stake currency (``-sum(funding_fees)`` with freqtrade's sign: > 0
paid, < 0 received; 0 in spot mode)."""


def side_metrics(trades: pd.DataFrame) -> dict[str, float]:
    """:data:`SIDE_KEYS` of a trades frame (this engine's or freqtrade's: ``is_short`` and
    ``funding_fees`` columns; a missing or NaN funding fee counts as 0)."""
    short = trades["is_short"].to_numpy(dtype=bool) if len(trades) else np.zeros(0, bool)
    fees = (
        pd.to_numeric(trades["funding_fees"], errors="coerce").fillna(0.0).to_numpy(np.float64)
        if "funding_fees" in trades and len(trades)
        else np.zeros(0)
    )
    return {
        "long_trades": int((~short).sum()),
        "short_trades": int(short.sum()),
        "funding_paid": float(-fees.sum()) + 0.0,  # + 0.0: no -0.0 in the records
    }


@dataclass
class PairFold:
    """Signals of one pair in one fold's test window: the model's and the no-model baseline's
    (the same rules on T itself), each side of the trial's direction
    (:class:`strategy.signals.Signals`)."""

    model: Signals
    base: Signals
    info: dict[str, Any]

    @classmethod
    def flat(cls, n: int) -> PairFold:
        """``n`` candles without any signal (separate arrays, to be filled with :meth:`put`)."""
        return cls(Signals.flat(n), Signals.flat(n), info={})

    def put(self, sl: slice, signals: PairFold) -> None:
        """Write ``signals`` (a window's) into ``sl`` of these arrays."""
        self.model.put(sl, signals.model)
        self.base.put(sl, signals.base)

    def window(self, sl: slice) -> PairFold:
        """These signals on ``sl`` (views)."""
        return PairFold(self.model.window(sl), self.base.window(sl), self.info)


def span_backtest(
    data: StudyData,
    sl: slice,
    signals: Mapping[str, Signals],
    settings: BacktestSettings | None = None,
) -> BacktestResult:
    """Backtest every pair's candles ``sl`` with its ``signals`` (of the span's length).

    Args:
        settings: the trial's backtest settings (:meth:`optimize.search.space.TrialParams.
            settings`; default: the run config's); shorts are passed only when they may short.
            In futures mode the pairs' :class:`~optimize.backtest.futures.FuturesPair` records
            (funding, mark prices, market rules) go with every backtest.
    """
    settings = data.config.backtest if settings is None else settings
    candles = {p: d.candles.iloc[sl] for p, d in data.pairs.items()}
    shorts = settings.can_short
    return backtest(
        candles,
        {p: s.enter_long for p, s in signals.items()},
        {p: s.exit_long for p, s in signals.items()},
        enter_short={p: s.enter_short for p, s in signals.items()} if shorts else None,
        exit_short={p: s.exit_short for p, s in signals.items()} if shorts else None,
        settings=settings,
        futures=data.futures if settings.futures else None,
    )


def metric_subset(metrics: dict[str, float]) -> dict[str, float]:
    """The :data:`FOLD_METRIC_KEYS` of a backtest's ``metrics`` as floats (missing keys omitted)."""
    return {k: float(metrics[k]) for k in FOLD_METRIC_KEYS if k in metrics}


def span_metrics(result: BacktestResult) -> dict[str, float]:
    """What a span stores of a backtest: :func:`metric_subset` and :func:`side_metrics`."""
    return {**metric_subset(result.metrics), **side_metrics(result.trades)}


HOLD_ROI = 1e9
"""The ROI step of the leveraged buy-and-hold (never reached: the position is held to the end)."""


def hold_settings(settings: BacktestSettings) -> BacktestSettings:
    """Settings of the futures buy-and-hold: one long per pair at the trial's leverage, the whole
    wallet staked, no stoploss (-1: the margin), ROI, trailing stop or exit signal; the fee,
    funding, market rules and liquidation as in the trial's backtest."""
    return dataclasses.replace(
        settings,
        stoploss=-1.0,
        minimal_roi={"0": HOLD_ROI},
        trailing_stop=False,
        trailing_stop_positive=None,
        trailing_stop_positive_offset=0.0,
        trailing_only_offset_is_reached=False,
        stake_amount="unlimited",
        max_open_trades=1,
        tradable_balance_ratio=1.0,
        can_short=False,
        use_exit_signal=False,
        exit_profit_only=False,
        ignore_roi_if_entry_signal=False,
    )


@dataclass(frozen=True)
class BuyAndHold:
    """Equal-weight buy-and-hold of the pairs over a span.

    Attributes:
        figures: ``profit_total`` and ``max_drawdown_equity`` (means over the pairs) and each
            pair's profit (``per_pair``), as stored.
        curve: futures mode: the equal-weight mean of the pairs' equity ratios per candle (the
            engine's mark-to-market equity of each held position); None in spot mode (the curve
            is the closes', see :func:`daily_equity`).
    """

    figures: dict[str, Any]
    curve: pd.Series | None = None


def buy_and_hold_span(
    data: StudyData,
    sl: slice,
    start: pd.Timestamp,
    end: pd.Timestamp,
    settings: BacktestSettings | None = None,
) -> BuyAndHold:
    """Equal-weight buy-and-hold of the pairs from ``start`` to ``end`` (the candles ``sl``).

    Spot: :func:`optimize.backtest.metrics.buy_and_hold` per pair (bought at the first close, sold
    at the last, fees on both). Futures: each pair held long at the trial's leverage, with
    funding, as freqtrade would trade it (:func:`hold_settings`: entry signal on the first
    candle, filled at the next open; force exit at the end; liquidation can end it early); the
    profit is the pair's ``profit_abs`` over the wallet.
    """
    settings = data.config.backtest if settings is None else settings
    if not settings.futures:
        per_pair = {
            p: buy_and_hold(d.candles, start, end, fee=settings.fee) for p, d in data.pairs.items()
        }
        return BuyAndHold(
            {
                "profit_total": float(np.mean([m["profit_total"] for m in per_pair.values()])),
                "max_drawdown_equity": float(
                    np.mean([m["max_drawdown_equity"] for m in per_pair.values()])
                ),
                "per_pair": {p: m["profit_total"] for p, m in per_pair.items()},
            }
        )
    hold = hold_settings(settings)
    profits, drawdowns, curves = {}, [], []
    for pair, d in data.pairs.items():
        candles = d.candles.iloc[sl]
        n = len(candles)
        if n < 2:
            profits[pair] = 0.0
            drawdowns.append(0.0)
            continue
        enter = np.zeros(n, dtype=bool)
        enter[0] = True
        result = backtest(
            {pair: candles},
            {pair: enter},
            {pair: np.zeros(n, dtype=bool)},
            settings=hold,
            futures={pair: data.futures[pair]},
        )
        profits[pair] = float(result.trades["profit_abs"].sum() / hold.dry_run_wallet)
        drawdowns.append(max_drawdown_equity(result.equity.to_numpy()))
        curves.append(result.equity / hold.dry_run_wallet)
    return BuyAndHold(
        {
            "profit_total": float(np.mean(list(profits.values()))),
            "max_drawdown_equity": float(np.mean(drawdowns)),
            "per_pair": profits,
        },
        pd.concat(curves, axis=1).mean(axis=1) if curves else None,
    )


@dataclass(frozen=True)
class SpanScore:
    """One span backtested with the model's signals, next to the two baselines.

    Attributes:
        values: the objective of the model's backtest.
        model, no_model: the backtests of the model's and of the no-model signals.
        buy_and_hold: equal-weight buy-and-hold of the pairs over the span (and each pair's profit).
        hold_curve: futures mode: buy-and-hold's equity ratio per candle (see
            :class:`BuyAndHold`); None in spot mode.
    """

    values: tuple[float, ...]
    model: BacktestResult
    no_model: BacktestResult
    buy_and_hold: dict[str, Any]
    hold_curve: pd.Series | None = None

    @property
    def metrics(self) -> dict[str, float]:
        """The model's metrics (:data:`FOLD_METRIC_KEYS` and :data:`SIDE_KEYS`)."""
        return span_metrics(self.model)

    @property
    def baselines(self) -> dict[str, Any]:
        """``buy_and_hold`` and ``no_model`` (its metrics), as stored with trials and holdouts."""
        return {"buy_and_hold": self.buy_and_hold, "no_model": span_metrics(self.no_model)}

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
    settings: BacktestSettings | None = None,
) -> SpanScore:
    """Backtest the candles ``sl`` with every pair's model and no-model ``signals`` (arrays of the
    span's length) under the trial's ``settings`` (default: the run config's) and score the
    model's; buy-and-hold (:func:`buy_and_hold_span`) runs from ``start`` to ``end``."""
    model = span_backtest(data, sl, {p: s.model for p, s in signals.items()}, settings)
    no_model = span_backtest(data, sl, {p: s.base for p, s in signals.items()}, settings)
    hold = buy_and_hold_span(data, sl, start, end, settings)
    return SpanScore(objective(model.metrics), model, no_model, hold.figures, hold.curve)


def daily_equity(data: StudyData, sl: slice, span: SpanScore) -> dict[str, Any]:
    """End-of-day equity over ``sl`` of the model, the no-model baseline and buy-and-hold.

    Values are ratios to the starting wallet (1.0 = unchanged), one per calendar day (UTC) from
    ``start``, rounded to 6 decimals. Spot buy-and-hold is the equal-weight mean over the pairs of
    ``close_t / close_0 * (1 - fee) / (1 + fee)`` (bought at the first close, as in
    :func:`optimize.backtest.metrics.buy_and_hold`), so its last value is ``1 + profit_total``;
    futures buy-and-hold is the mean of the held positions' equity (:class:`BuyAndHold`).
    """
    model, no_model = span.model, span.no_model
    if span.hold_curve is not None:
        growth = span.hold_curve.to_numpy()
    else:
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


TRADE_RECORD_KEYS = (
    "pair",
    "open_date",
    "close_date",
    "exit_reason",
    "profit_ratio",
    "profit_abs",
    "is_short",
    "leverage",
    "funding_fees",
)
"""What is stored of each trade (with the trial, the holdout record and the export); the side,
leverage and funding fees (freqtrade's sign: > 0 received) since trial record schema 4 (trades
stored before are spot longs at leverage 1 without funding)."""


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
            "is_short": bool(getattr(row, "is_short", False)),
            "leverage": _number(getattr(row, "leverage", 1.0), 1.0),
            "funding_fees": _number(getattr(row, "funding_fees", 0.0), 0.0),
        }
        for row in frame.itertuples(index=False)
    ]


def _number(value: Any, missing: float) -> float:
    """``value`` as a float, ``missing`` for None or NaN (freqtrade leaves spot funding unset)."""
    return missing if value is None or pd.isna(value) else float(value)


__all__ = [
    "FOLD_METRIC_KEYS",
    "SIDE_KEYS",
    "TRADE_RECORD_KEYS",
    "BuyAndHold",
    "PairFold",
    "SpanScore",
    "buy_and_hold_span",
    "daily_equity",
    "metric_subset",
    "score_span",
    "side_metrics",
    "span_backtest",
    "span_metrics",
    "trade_records",
]
