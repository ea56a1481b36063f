"""Futures backtests: hand-computed micro cases for each futures rule, the records' checks.

Synthetic round-number candles (exact arithmetic only; parity with freqtrade on the real futures
data is in ``test_ftparity.py``). Every expected value is computed here from freqtrade's formulas:
amount ``stake / open * leverage``, stop at ``stoploss / leverage`` from the open, profit ratio
``profit_abs / open value * leverage``, funding ``sum(rate * mark open * amount)`` (paid by longs,
received by shorts for a positive rate), Binance's isolated liquidation price.
"""

from __future__ import annotations

import pandas as pd
import pytest

from optimize.backtest.engine import backtest
from optimize.backtest.futures import FuturesPair, LeverageTier, PerpetualMarket
from optimize.backtest.settings import BacktestSettings
from tests.optimize.backtest.helpers import candles, sig

FEE = 0.001
STAKE = 1000.0 * 0.99
PAIR = "BTC/USDT:USDT"
FLAT = (100.0, 101.0, 99.0, 100.0)


def settings(**kw) -> BacktestSettings:
    base = {
        "fee": FEE,
        "stoploss": -0.99,
        "price_precision": None,
        "trading_mode": "futures",
        "can_short": True,
    }
    base.update(kw)
    return BacktestSettings(**base)


def funding(c: pd.DataFrame, rates: dict[int, float], mark: float | None = None) -> FuturesPair:
    """Funding events at candle rows ``rates`` (row -> rate); mark candles equal to the candles
    (or flat at ``mark``)."""
    marks = c[["date", "open", "high", "low", "close", "volume"]].copy()
    if mark is not None:
        marks[["open", "high", "low", "close"]] = mark
    events = pd.DataFrame(
        {
            "date": c["date"].iloc[list(rates)].reset_index(drop=True),
            "funding_rate": pd.Series(list(rates.values()), dtype=float),
        }
    )
    return FuturesPair(funding_rates=events, mark=marks)


def run(c, el, xl, es=None, xs=None, s=None, futures=None):
    n = len(c)
    return backtest(
        {PAIR: c},
        {PAIR: el},
        {PAIR: xl},
        enter_short={PAIR: sig(n) if es is None else es},
        exit_short={PAIR: sig(n) if xs is None else xs},
        settings=s or settings(),
        futures=None if futures is None else {PAIR: futures},
    )


def one(result):
    assert len(result.trades) == 1, result.trades
    return result.trades.iloc[0]


def test_leverage_multiplies_amount_and_profit_ratio_not_the_stake():
    c = candles([FLAT, (100, 101, 99, 100), (104, 111, 103, 110), (110, 111, 109, 110), FLAT])
    tr = one(run(c, sig(5, 0), sig(5, 2), s=settings(leverage=3)))
    amount = STAKE / 100 * 3
    value = amount * 100 * (1 + FEE)
    pa = round(amount * 110 * (1 - FEE) - value, 8)
    assert tr.amount == pytest.approx(amount, rel=1e-15)
    assert tr.stake_amount == pytest.approx(STAKE, rel=1e-15)  # the margin
    assert tr.leverage == 3.0 and tr.funding_fees == 0.0
    assert tr.profit_abs == pytest.approx(pa, abs=1e-8)
    assert tr.profit_ratio == pytest.approx(pa / value * 3, rel=1e-12)
    assert tr.profit_ratio == pytest.approx(3 * (110 * 0.999 / 100.1 - 1), rel=1e-9)


@pytest.mark.parametrize(("short", "stop"), [(False, 98.0), (True, 102.0)])
def test_stoploss_is_measured_on_the_leveraged_return(short, stop):
    """stoploss -10 % at 5x: the stop sits 2 % from the open."""
    c = candles([FLAT, (100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100), (100, 103, 97, 100), FLAT])
    entry = sig(5, 0)
    none = sig(5)
    s = settings(leverage=5, stoploss=-0.1)
    res = run(c, none, none, entry, none, s) if short else run(c, entry, none, s=s)
    tr = one(res)
    assert tr.exit_reason == "stop_loss" and tr.close_rate == pytest.approx(stop, rel=1e-12)
    assert tr.is_short == short and tr.close_date == c.date[3]


def test_roi_is_measured_on_the_leveraged_return():
    """ROI 10 % at 2x: reached by a ~5 % move, filled at the rate whose leveraged ratio is 10 %."""
    c = candles([FLAT, (100, 101, 99, 100), (100, 108, 99, 101), FLAT])
    tr = one(run(c, sig(4, 0), sig(4), s=settings(leverage=2, minimal_roi={"0": 0.1})))
    amount = STAKE / 100 * 2
    value = amount * 100 * (1 + FEE)
    target = (1 + 0.1 / 2) * value / (amount * (1 - FEE))
    assert tr.exit_reason == "roi" and tr.close_rate == pytest.approx(target, rel=1e-12)
    assert tr.profit_ratio == pytest.approx(0.1, abs=1e-8)


def test_funding_sign_and_window_follow_freqtrade():
    """Events at the open and at the close count, the one before the open does not; a long pays a
    positive rate and receives a negative one (``calculate_funding_fees``)."""
    rows = [FLAT] * 8
    c = candles(rows)
    rates = {0: 0.5, 1: 0.001, 3: -0.004, 5: 0.002, 7: 0.1}
    tr = one(run(c, sig(8, 0), sig(8, 4), s=settings(leverage=2), futures=funding(c, rates)))
    amount = STAKE / 100 * 2
    fees = 0.001 * 100 * amount + -0.004 * 100 * amount + 0.002 * 100 * amount
    assert (tr.open_date, tr.close_date) == (c.date[1], c.date[5])
    assert tr.funding_fees == pytest.approx(-fees, rel=1e-12) and tr.funding_fees > 0
    value = amount * 100 * (1 + FEE)
    pa = round(amount * 100 * (1 - FEE) + tr.funding_fees - value, 8)
    assert tr.profit_abs == pytest.approx(pa, abs=1e-8)

    short = one(
        run(c, sig(8), sig(8), sig(8, 0), sig(8, 4), settings(leverage=2), funding(c, rates))
    )
    assert short.is_short and short.funding_fees == pytest.approx(fees, rel=1e-12)


def test_funding_uses_the_mark_price_and_skips_events_without_one():
    c = candles([FLAT] * 6)
    events = funding(c, {2: 0.01, 3: 0.01}, mark=50.0)
    marks = events.mark.drop(index=3)  # no mark candle at row 3: freqtrade's inner join drops it
    record = FuturesPair(funding_rates=events.funding_rates, mark=marks)
    tr = one(run(c, sig(6, 0), sig(6, 4), s=settings(), futures=record))
    assert tr.funding_fees == pytest.approx(-0.01 * 50.0 * STAKE / 100, rel=1e-12)


def test_isolated_liquidation_price_is_binances_formula_with_the_tier_and_buffer():
    """A 10x long liquidates before its -100 % stop, at Binance's isolated price moved by the
    5 % liquidation buffer (``dry_run_liquidation_price``, ``get_liquidation_price``)."""
    tier = LeverageTier(0.0, None, 0.004, 125.0, 0.0)
    market = PerpetualMarket(PAIR, amount_step=None, price_tick=None, tiers=(tier,))
    c = candles([FLAT, (100, 101, 99, 100), (99, 100, 90.5, 95), FLAT])
    f = FuturesPair(funding(c, {}).funding_rates, funding(c, {}).mark, market)
    tr = one(run(c, sig(4, 0), sig(4), s=settings(leverage=10, stoploss=-1.0), futures=f))
    amount, stake = STAKE / 100 * 10, STAKE
    liq = (stake + 0.0 - amount * 100) / (amount * 0.004 - amount)
    liq = liq + abs(100 - liq) * 0.05
    assert tr.exit_reason == "liquidation" and tr.close_rate == pytest.approx(liq, rel=1e-12)
    assert 90.5 < liq < 91  # the stop (90, at -100 % / 10x) is not reached


def test_leverage_is_capped_by_the_tier_of_the_stake():
    tiers = (
        LeverageTier(0.0, 50_000.0, 0.01, 20.0, 0.0),
        LeverageTier(50_000.0, None, 0.05, 5.0, 2000.0),
    )
    market = PerpetualMarket(PAIR, amount_step=None, price_tick=None, tiers=tiers)
    c = candles([FLAT] * 4)
    f = FuturesPair(funding(c, {}).funding_rates, funding(c, {}).mark, market)
    tr = one(run(c, sig(4, 0), sig(4, 1), s=settings(leverage=50), futures=f))
    assert tr.leverage == 20.0  # stake 990 <= 50000 / 20
    rich = settings(leverage=50, dry_run_wallet=200_000.0)
    assert one(run(c, sig(4, 0), sig(4, 1), s=rich, futures=f)).leverage == 5.0


def test_minimum_stake_raises_a_small_stake_or_skips_the_entry():
    """``get_min_pair_stake_amount``: max(min cost x 1.05 / 0.95, min amount x price x 1.05) /
    leverage; a stake up to 30 % below it is raised, further below the entry is skipped."""
    market = PerpetualMarket(PAIR, amount_step=0.001, price_tick=None, min_amount=0.5, min_cost=5.0)
    c = candles([FLAT] * 4)
    f = FuturesPair(funding(c, {}).funding_rates, funding(c, {}).mark, market)
    minimum = 0.5 * 100 * 1.05 / 2  # the amount limit binds, per unit of margin at 2x
    raised = one(run(c, sig(4, 0), sig(4, 1), s=settings(leverage=2, stake_amount=21.0), futures=f))
    assert raised.stake_amount == pytest.approx(minimum, rel=1e-12)  # 21 * 1.3 >= 26.25
    skipped = run(c, sig(4, 0), sig(4, 1), s=settings(leverage=2, stake_amount=20.0), futures=f)
    assert skipped.trades.empty  # 20 * 1.3 < 26.25


def test_worst_case_trailing_exit_outside_the_opening_candle_fills_later():
    """At 3x, trailing from a 5 % offset: freqtrade's worst-case price in the opening candle
    (open x (1 + 5 % - 2 % / 3)) is above the candle's high, so the exit order waits and fills on
    the next candle that reaches it (its trailed stop, 104.5 x (1 - 2 % / 3), is not hit there)."""
    c = candles([FLAT, (100, 102.5, 99.9, 102), (104.3, 104.5, 104.2, 104.4), FLAT])
    s = settings(
        leverage=3,
        trailing_stop=True,
        trailing_stop_positive=0.02,
        trailing_stop_positive_offset=0.05,
        trailing_only_offset_is_reached=True,
    )
    tr = one(run(c, sig(4, 0), sig(4), s=s))
    rate = 100 * (1 + 0.05 - 0.02 / 3)
    assert rate > 102.5
    assert tr.exit_reason == "trailing_stop_loss" and tr.close_date == c.date[2]
    assert tr.close_rate == pytest.approx(rate, rel=1e-12)


def test_reversal_opens_the_short_on_the_candle_the_long_closes():
    c = candles([FLAT, (100, 101, 99, 100), (102, 103, 101, 102), (98, 99, 97, 98), FLAT])
    res = run(c, sig(5, 0), sig(5, 1), sig(5, 1), sig(5), settings(leverage=3))
    long_tr, short_tr = res.trades.iloc[0], res.trades.iloc[1]
    assert not long_tr.is_short and short_tr.is_short
    assert long_tr.close_date == short_tr.open_date == c.date[2]
    assert short_tr.leverage == 3.0


def test_equity_marks_leveraged_trades_with_their_funding():
    c = candles([FLAT, (100, 101, 99, 100), (100, 106, 99, 105), (105, 106, 104, 105), FLAT])
    res = run(c, sig(5, 0), sig(5, 3), s=settings(leverage=4), futures=funding(c, {2: 0.01}))
    amount = STAKE / 100 * 4
    value = amount * 100 * (1 + FEE)
    paid = 0.01 * 100 * amount
    assert res.equity.iloc[1] == pytest.approx(1000 + amount * 100 * (1 - FEE) - value, rel=1e-12)
    assert res.equity.iloc[2] == pytest.approx(
        1000 + amount * 105 * (1 - FEE) - paid - value, rel=1e-12
    )
    assert res.equity.iloc[-1] == pytest.approx(1000 + res.trades.profit_abs.sum(), rel=1e-12)


def test_futures_data_is_checked():
    c = candles([FLAT] * 4)
    f = funding(c, {})
    with pytest.raises(ValueError, match="trading_mode is 'spot'"):
        backtest(c, sig(4), sig(4), settings=BacktestSettings(), futures={"PAIR": f})
    with pytest.raises(ValueError, match=r"exactly the candles' pairs \['BTC/USDT:USDT'\]"):
        backtest({PAIR: c}, {PAIR: sig(4)}, {PAIR: sig(4)}, settings=settings(), futures={})
    with pytest.raises(TypeError, match="must be a FuturesPair"):
        backtest({PAIR: c}, {PAIR: sig(4)}, {PAIR: sig(4)}, settings=settings(), futures={PAIR: 1})
    with pytest.raises(ValueError, match=r"FuturesPair.mark lacks columns \['open'\]"):
        FuturesPair(funding_rates=f.funding_rates, mark=f.mark.drop(columns=["open"]))


@pytest.mark.parametrize(
    ("market", "tiers", "match"),
    [
        ({"swap": True, "linear": False}, [], "must be a linear perpetual swap"),
        (
            {"swap": True, "linear": True, "precision": {"amount": 0.003}},
            [],
            r"markets\['X/USDT:USDT'\].precision.amount must be a power of ten",
        ),
        (
            {"swap": True, "linear": True, "limits": {"cost": {"min": -5}}},
            [],
            r"limits.cost.min must be a finite number >= 0.0, but got .*=-5",
        ),
        (
            {"swap": True, "linear": True},
            [{"minNotional": 0, "maxNotional": 10, "maintenanceMarginRate": 0.01}],
            r"leverage tiers of 'X/USDT:USDT'\[0\] must be a ccxt leverage tier .* lacks",
        ),
    ],
    ids=["spot", "step", "limit", "tier"],
)
def test_perpetual_market_from_ccxt_names_the_bad_value(market, tiers, match):
    with pytest.raises(ValueError, match=match):
        PerpetualMarket.from_ccxt("X/USDT:USDT", market, tiers)
