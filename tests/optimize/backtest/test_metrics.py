"""Metrics: freqtrade's definitions (checked against freqtrade's own functions), edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from freqtrade.data import metrics as ftm

from optimize.backtest import metrics
from optimize.backtest.engine import backtest
from optimize.backtest.settings import BacktestSettings
from optimize.data import load_candles

BALANCE = 1000.0


@pytest.fixture(scope="module")
def trades(datadir) -> pd.DataFrame:
    """Trades of a backtest on real ETH/USDT candles (seeded signals), sorted by close date."""
    c = load_candles("ETH/USDT", "1h", datadir=datadir, start="2022-01-01", end="2022-04-01")
    rng = np.random.default_rng(3)
    res = backtest(
        c,
        rng.random(len(c)) < 0.05,
        rng.random(len(c)) < 0.05,
        settings=BacktestSettings(stoploss=-0.05, minimal_roi={"0": 0.04}),
    )
    assert len(res.trades) > 30
    return res.trades.sort_values("close_date").reset_index(drop=True)


START, END = pd.Timestamp("2022-01-01", tz="UTC"), pd.Timestamp("2022-03-31 23:00", tz="UTC")


def test_trade_metrics_match_freqtrade(trades):
    start, end = START, END
    days = metrics.backtest_days(start, end)
    pa = trades["profit_abs"].to_numpy()
    assert metrics.sharpe(pa, BALANCE, days) == pytest.approx(
        ftm.calculate_sharpe(trades, start, end, BALANCE), rel=1e-12
    )
    assert metrics.sortino(pa, BALANCE, days) == pytest.approx(
        ftm.calculate_sortino(trades, start, end, BALANCE), rel=1e-12
    )
    assert metrics.calmar(pa, BALANCE, days) == pytest.approx(
        ftm.calculate_calmar(trades, start, end, BALANCE), rel=1e-12
    )
    dd = ftm.calculate_max_drawdown(trades, value_col="profit_abs", starting_balance=BALANCE)
    assert metrics.max_drawdown_account(pa, BALANCE) == pytest.approx(
        dd.relative_account_drawdown, rel=1e-12
    )
    assert metrics.expectancy(pa) == pytest.approx(ftm.calculate_expectancy(trades), rel=1e-12)
    final = BALANCE + pa.sum()
    assert metrics.cagr(days, BALANCE, final) == pytest.approx(
        ftm.calculate_cagr(days, BALANCE, final), rel=1e-12
    )


def test_hand_computed_small_case():
    pa = np.array([30.0, -10.0, 20.0, -40.0])
    assert metrics.total_trades(pa) == 4
    assert metrics.profit_total(pa, 1000) == pytest.approx(0.0)
    assert metrics.winrate(pa) == 0.5
    assert metrics.profit_factor(pa) == pytest.approx(50 / 50)
    # expectancy = 0.5 * 25 - 0.5 * 25 = 0; ratio = (1 + 25/25) * 0.5 - 1 = 0
    assert metrics.expectancy(pa) == pytest.approx((0.0, 0.0))
    # account 1000 -> 1030 (peak) -> 1020 -> 1040 (peak) -> 1000: largest drop 40 from 1040
    assert metrics.max_drawdown_account(pa, 1000) == pytest.approx(40 / 1040)
    assert metrics.max_drawdown_equity([1000, 1030, 1020, 1040, 1000]) == pytest.approx(40 / 1040)
    r = pa / 1000
    assert metrics.sharpe(pa, 1000, 10) == pytest.approx(r.sum() / 10 / r.std() * math.sqrt(365))


def test_zero_trades_are_defined():
    empty = np.array([])
    assert metrics.total_trades(empty) == 0
    assert metrics.profit_total(empty, BALANCE) == 0.0
    assert metrics.sharpe(empty, BALANCE, 30) == 0.0
    assert metrics.sortino(empty, BALANCE, 30) == 0.0
    assert metrics.calmar(empty, BALANCE, 30) == 0.0
    assert metrics.max_drawdown_account(empty, BALANCE) == 0.0
    assert metrics.winrate(empty) == 0.0
    assert metrics.profit_factor(empty) == 0.0
    assert metrics.expectancy(empty) == (0.0, 100.0)
    assert metrics.exposure(np.zeros((0, 2))) == 0.0
    assert metrics.max_drawdown_equity([BALANCE]) == 0.0
    assert metrics.period_returns([BALANCE]).size == 0


def test_single_trade_spread_is_freqtrades_not_optimal_value():
    assert metrics.sharpe(np.array([5.0]), BALANCE, 10) == -100.0
    assert metrics.sortino(np.array([5.0]), BALANCE, 10) == -100.0


def test_exposure_counts_candles_with_any_position():
    pos = np.array([[0, 0], [1, 0], [1, -1], [0, 0]])
    assert metrics.exposure(pos) == 0.5
    assert metrics.exposure(np.array([0, 1, 1, 1])) == 0.75


def test_daily_returns_match_freqtrades_balance_sampling():
    idx = pd.date_range("2024-01-01", periods=24 * 5, freq="1h", tz="UTC")
    equity = pd.Series(1000 + np.cumsum(np.sin(np.arange(len(idx)))), index=idx)
    ours = metrics.daily_returns(equity)
    theirs = ftm._calculate_daily_returns_from_balance(
        pd.DataFrame({"date": idx, "total_quote": equity.to_numpy()}), "date", "total_quote"
    )
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-12)
    assert len(ours) == 4
    assert metrics.daily_returns(equity.iloc[:10]).empty
    with pytest.raises(TypeError, match="DatetimeIndex"):
        metrics.daily_returns(equity.to_numpy())


def test_buy_and_hold_matches_freqtrade_market_change(datadir):
    c = load_candles("BTC/USDT", "1h", datadir=datadir, start="2023-01-01", end="2023-07-01")
    bh = metrics.buy_and_hold(c)
    assert bh["market_change"] == pytest.approx(ftm.calculate_market_change({"BTC/USDT": c}))
    fee = 0.001
    with_fee = metrics.buy_and_hold(c, fee=fee)
    close = c["close"].to_numpy()
    assert with_fee["profit_total"] == pytest.approx(
        close[-1] * (1 - fee) / (close[0] * (1 + fee)) - 1
    )
    part = metrics.buy_and_hold(c, "2023-03-01", "2023-04-01")
    sel = c[(c["date"] >= "2023-03-01") & (c["date"] < "2023-04-01")]["close"].to_numpy()
    assert part["market_change"] == pytest.approx(sel[-1] / sel[0] - 1)
    assert 0 < part["max_drawdown_equity"] < 1
    assert metrics.buy_and_hold(c, "2030-01-01")["profit_total"] == 0.0


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="starting_balance"):
        metrics.profit_total([1.0], 0)
    with pytest.raises(ValueError, match=r"profit_abs\[1\]"):
        metrics.winrate([1.0, float("nan")])
    with pytest.raises(ValueError, match="fee"):
        metrics.buy_and_hold(pd.DataFrame({"date": [], "close": []}), fee=2)
