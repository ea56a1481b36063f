"""Backtest metrics with freqtrade's names and definitions, plus equity-curve measures.

The trade-based functions reproduce freqtrade 2026.9's ``data/metrics.py`` and the summary keys of
``optimize_reports.generate_strategy_stats`` (``total_trades``, ``profit_total``, ``cagr``,
``sharpe``, ``sortino``, ``calmar``, ``max_drawdown_account``, ``winrate``, ``profit_factor``,
``expectancy``), so a number printed by this project means what the same key means in a freqtrade
backtest report. They are pure functions of arrays: ``profit_abs`` is the per-trade absolute profit
in stake currency, in close-date order; ``days`` is freqtrade's ``backtest_days``, the whole days
between the first and the last candle (:func:`backtest_days`).

Zero trades never raise: counts and ratios are 0 (freqtrade's convention), ``expectancy_ratio``
is 100 (freqtrade's neutral value), and curve measures of an empty or flat curve are 0.

The equity-curve measures (:func:`max_drawdown_equity`, :func:`period_returns`,
:func:`daily_returns`, :func:`exposure`) work on the mark-to-market balance the engine records at
every candle close; they are what the study's objective and the overfitting statistics use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from optimize.data import to_utc

_NOT_OPTIMAL = -100.0  # freqtrade's value for an undefined Sharpe/Sortino/Calmar (zero spread)


def _profits(profit_abs: Any) -> np.ndarray:
    arr = np.asarray(profit_abs, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"profit_abs must be finite, but got profit_abs[{bad}]={arr[bad]!r}.")
    return arr


def _balance(starting_balance: float) -> float:
    value = float(starting_balance)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"starting_balance must be a positive number, but got {starting_balance=}."
        )
    return value


def backtest_days(start: pd.Timestamp, end: pd.Timestamp) -> int:
    """freqtrade's ``backtest_days``: whole days from first to last candle, at least 1."""
    return (pd.Timestamp(end) - pd.Timestamp(start)).days or 1


def total_trades(profit_abs: Any) -> int:
    """Number of closed trades."""
    return int(_profits(profit_abs).size)


def profit_total(profit_abs: Any, starting_balance: float) -> float:
    """Sum of absolute profits over the starting balance (freqtrade's ``profit_total``, a ratio)."""
    return float(_profits(profit_abs).sum() / _balance(starting_balance))


def cagr(days: float, starting_balance: float, final_balance: float) -> float:
    """Compound annual growth rate over ``days`` (freqtrade's ``calculate_cagr``).

    Returns 0 for a negative final balance, a non-positive start balance or ``days <= 0``.
    """
    if final_balance < 0 or starting_balance <= 0 or days <= 0:
        return 0.0
    try:
        return float((final_balance / starting_balance) ** (1 / (days / 365)) - 1)
    except OverflowError:
        return 0.0


def _annualized(mean: float, denominator: float) -> float:
    if denominator != 0 and not np.isnan(denominator):
        return float(mean / denominator * np.sqrt(365))
    return _NOT_OPTIMAL


def sharpe(profit_abs: Any, starting_balance: float, days: int) -> float:
    """freqtrade's trade-based Sharpe: (sum of trade returns / days) / std(trade returns) *
    sqrt(365).

    Trade returns are ``profit_abs / starting_balance`` (population std). 0 without trades or when
    ``days <= 0`` (first and last candle equal); -100 when the std is 0 (a single trade).
    """
    profits = _profits(profit_abs)
    if profits.size == 0 or days <= 0:
        return 0.0
    returns = profits / _balance(starting_balance)
    return _annualized(returns.sum() / max(1, days), float(np.std(returns)))


def sortino(profit_abs: Any, starting_balance: float, days: int) -> float:
    """freqtrade's trade-based Sortino: like :func:`sharpe` with the std of losing trades only.

    0 without trades or for ``days <= 0``; -100 when there is no spread among losses (e.g. none).
    """
    profits = _profits(profit_abs)
    if profits.size == 0 or days <= 0:
        return 0.0
    returns = profits / _balance(starting_balance)
    losses = returns[profits < 0]
    down = float(np.std(losses)) if losses.size else float("nan")
    return _annualized(returns.sum() / max(1, days), down)


def _drawdown_table(profits: np.ndarray, starting_balance: float) -> tuple[np.ndarray, np.ndarray]:
    """Absolute and relative drawdown after each trade, with freqtrade's leading zero row."""
    cumulative = np.concatenate(([0.0], np.cumsum(profits)))
    high = np.maximum(0.0, np.maximum.accumulate(cumulative))
    high[0] = 0.0
    drawdown = cumulative - high
    relative = ((starting_balance + high) - (starting_balance + cumulative)) / (
        starting_balance + high
    )
    relative[0] = 0.0
    return drawdown, relative


def max_drawdown_account(profit_abs: Any, starting_balance: float) -> float:
    """freqtrade's ``max_drawdown_account``: relative account drawdown at the largest absolute drop.

    The account is the starting balance plus cumulative closed-trade profits (trades in close-date
    order); the drawdown is measured from the running maximum. 0 without trades.
    """
    profits = _profits(profit_abs)
    if profits.size == 0:
        return 0.0
    drawdown, relative = _drawdown_table(profits, _balance(starting_balance))
    return float(relative[int(np.argmin(drawdown))])


def calmar(profit_abs: Any, starting_balance: float, days: int) -> float:
    """freqtrade's trade-based Calmar: (profit_total / days * 100) / max_drawdown_account *
    sqrt(365).

    0 without trades or for ``days <= 0``; -100 when the drawdown is 0.
    """
    profits = _profits(profit_abs)
    if profits.size == 0 or days <= 0:
        return 0.0
    balance = _balance(starting_balance)
    mean = profits.sum() / balance / max(1, days) * 100
    return _annualized(mean, max_drawdown_account(profits, balance))


def winrate(profit_abs: Any) -> float:
    """Share of trades with ``profit_abs > 0``; 0 without trades."""
    profits = _profits(profit_abs)
    return float((profits > 0).sum() / profits.size) if profits.size else 0.0


def profit_factor(profit_abs: Any) -> float:
    """Gross profit over gross loss; 0 when there is no losing trade (freqtrade's convention)."""
    profits = _profits(profit_abs)
    losses = profits[profits < 0].sum()
    return float(profits[profits > 0].sum() / abs(losses)) if losses else 0.0


def expectancy(profit_abs: Any) -> tuple[float, float]:
    """freqtrade's ``(expectancy, expectancy_ratio)``; ``(0, 100)`` without trades.

    expectancy = winrate * average win - loserate * average loss (stake currency);
    expectancy_ratio = (1 + average win / average loss) * winrate - 1 (100 when no loss).
    """
    profits = _profits(profit_abs)
    if profits.size == 0:
        return 0.0, 100.0
    wins = profits[profits > 0]
    losses = profits[profits < 0]
    avg_win = wins.sum() / wins.size if wins.size else 0.0
    avg_loss = abs(losses.sum()) / losses.size if losses.size else 0.0
    win_rate = wins.size / profits.size
    loss_rate = losses.size / profits.size
    value = win_rate * avg_win - loss_rate * avg_loss
    ratio = (1 + avg_win / avg_loss) * win_rate - 1 if avg_loss > 0 else 100.0
    return float(value), float(ratio)


def exposure(positions: Any) -> float:
    """Share of candles with at least one open position.

    Args:
        positions: ``(n,)`` or ``(n, pairs)`` array, non-zero where a position is held.

    Returns:
        A ratio in [0, 1]; 0 for an empty array.
    """
    arr = np.asarray(positions)
    if arr.size == 0:
        return 0.0
    held = arr != 0 if arr.ndim == 1 else (arr != 0).any(axis=1)
    return float(held.mean())


def period_returns(equity: Any) -> np.ndarray:
    """Simple returns between consecutive equity values (length ``n - 1``; empty for n < 2)."""
    arr = np.asarray(equity, dtype=np.float64).ravel()
    if arr.size < 2:
        return np.empty(0, dtype=np.float64)
    return arr[1:] / arr[:-1] - 1.0


def max_drawdown_equity(equity: Any) -> float:
    """Largest relative drop of an equity curve from its running maximum (0 for n < 2)."""
    arr = np.asarray(equity, dtype=np.float64).ravel()
    if arr.size < 2:
        return 0.0
    peak = np.maximum.accumulate(arr)
    return float(np.max((peak - arr) / peak))


def daily_returns(equity: pd.Series) -> pd.Series:
    """Day-over-day returns of an equity curve indexed by candle date (end-of-day values, UTC).

    Same sampling as freqtrade's ``_calculate_daily_returns_from_balance``: the last value of each
    calendar day, then the percentage change; empty when the curve spans fewer than two days.
    """
    if not isinstance(equity, pd.Series) or not isinstance(equity.index, pd.DatetimeIndex):
        raise TypeError(
            "equity must be a pandas Series indexed by a DatetimeIndex, but got "
            f"{type(equity).__name__} with index {type(getattr(equity, 'index', None)).__name__}."
        )
    daily = equity.resample("1D").last().dropna()
    if len(daily) < 2:
        return pd.Series(dtype=np.float64, index=pd.DatetimeIndex([], tz=equity.index.tz))
    return daily.pct_change().dropna()


def buy_and_hold(
    candles: pd.DataFrame,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    *,
    fee: float = 0.0,
) -> dict[str, float]:
    """Buy-and-hold baseline over ``start <= date < end`` (whole frame when None).

    Buys at the first candle's close and sells at the last candle's close: the earliest fill a
    signal strategy on the same candles can get is the second candle's open, which is the first
    close up to the gap between candles. With ``fee = 0`` the return equals freqtrade's
    ``market_change`` for one pair.

    Args:
        candles: one pair's candles (``date``, ``close`` at least).
        start: first candle date to include (UTC); None: the first candle.
        end: candles strictly before ``end`` are included; None: up to the last candle.
        fee: fee per side, paid on the buy and on the sell.

    Returns:
        ``{"market_change", "profit_total", "cagr", "max_drawdown_equity", "days"}``; a range
        with fewer than two candles gives zeros.

    Raises:
        ValueError: missing columns, a fee outside [0, 1), or non-positive closes.
    """
    missing = {"date", "close"} - set(candles.columns)
    if missing:
        raise ValueError(
            f"candles must have columns date and close, but got {sorted(candles.columns)}."
        )
    if not 0.0 <= float(fee) < 1.0:
        raise ValueError(f"fee must be a ratio in [0, 1), but got {fee=}.")
    dates = pd.DatetimeIndex(candles["date"])
    mask = np.ones(len(candles), dtype=bool)
    if start is not None:
        mask &= dates >= to_utc(start)
    if end is not None:
        mask &= dates < to_utc(end)
    close = candles["close"].to_numpy(dtype=np.float64)[mask]
    if close.size < 2:
        return {
            "market_change": 0.0,
            "profit_total": 0.0,
            "cagr": 0.0,
            "max_drawdown_equity": 0.0,
            "days": 0,
        }
    if not np.all(close > 0):
        raise ValueError("candles close must be positive in the buy-and-hold range.")
    sel = dates[mask]
    days = backtest_days(sel[0], sel[-1])
    growth = close[-1] * (1.0 - fee) / (close[0] * (1.0 + fee))
    return {
        "market_change": float(close[-1] / close[0] - 1.0),
        "profit_total": float(growth - 1.0),
        "cagr": cagr(days, 1.0, growth),
        "max_drawdown_equity": max_drawdown_equity(close),
        "days": days,
    }


def summarize(
    profit_abs: Any,
    *,
    starting_balance: float,
    start: pd.Timestamp,
    end: pd.Timestamp,
    equity: Any,
    positions: Any,
) -> dict[str, float]:
    """The metrics dict of a backtest: freqtrade's summary keys plus equity-curve measures.

    Args:
        profit_abs: per-trade absolute profits in close-date order.
        starting_balance: the wallet at the start (freqtrade's ``dry_run_wallet``).
        start, end: first and last candle dates of the backtest.
        equity: mark-to-market balance per candle (last value: final balance).
        positions: ``(n, pairs)`` array of held positions per candle.

    Returns:
        Dict with ``total_trades, profit_total, profit_total_abs, final_balance, cagr, sharpe,
        sortino, calmar, max_drawdown_account, winrate, profit_factor, expectancy,
        expectancy_ratio, backtest_days, exposure, max_drawdown_equity``.
    """
    profits = _profits(profit_abs)
    balance = _balance(starting_balance)
    days = backtest_days(start, end)
    eq = np.asarray(equity, dtype=np.float64)
    final = float(eq[-1]) if eq.size else balance
    exp_value, exp_ratio = expectancy(profits)
    # freqtrade reports 0 for these ratios when the first and last candle coincide (days <= 0)
    ratio_days = days if start != end else 0
    return {
        "total_trades": total_trades(profits),
        "profit_total": profit_total(profits, balance),
        "profit_total_abs": float(profits.sum()),
        "final_balance": final,
        "cagr": cagr(days, balance, final),
        "sharpe": sharpe(profits, balance, ratio_days),
        "sortino": sortino(profits, balance, ratio_days),
        "calmar": calmar(profits, balance, ratio_days),
        "max_drawdown_account": max_drawdown_account(profits, balance),
        "winrate": winrate(profits),
        "profit_factor": profit_factor(profits),
        "expectancy": exp_value,
        "expectancy_ratio": exp_ratio,
        "backtest_days": days,
        "exposure": exposure(positions),
        "max_drawdown_equity": max_drawdown_equity(np.concatenate(([balance], eq))),
    }
