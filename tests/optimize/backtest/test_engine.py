"""Backtest engine: hand-computed micro cases for every exit rule, wallet logic, input errors.

The micro cases use a few synthetic candles with round prices so every expected fill price and
profit is computed by hand from freqtrade's rules (fee on both sides, ``profit_abs`` rounded to
8 decimals, ``profit_ratio = profit_abs / (amount * open_rate * (1 + fee))``). Price rounding is
switched off (``price_precision=None``) except where rounding itself is tested. Parity with
freqtrade on real candles is in ``test_ftparity.py``; invariants on real candles in
``test_backtest_invariants.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimize.backtest.engine import backtest
from optimize.backtest.settings import BacktestSettings
from tests.optimize.backtest.helpers import candles, sig

FEE = 0.001
WALLET = 1000.0
STAKE = WALLET * 0.99  # unlimited stake, one slot, tradable_balance_ratio 0.99


def settings(**kw) -> BacktestSettings:
    base = {"fee": FEE, "stoploss": -0.5, "price_precision": None}
    base.update(kw)
    return BacktestSettings(**base)


def long_profit(open_rate: float, close_rate: float, stake: float = STAKE, fee: float = FEE):
    amount = stake / open_rate
    open_value = amount * open_rate * (1 + fee)
    profit_abs = round(amount * close_rate * (1 - fee) - open_value, 8)
    return profit_abs / open_value, profit_abs


def short_profit(open_rate: float, close_rate: float, stake: float = STAKE, fee: float = FEE):
    amount = stake / open_rate
    open_value = amount * open_rate * (1 - fee)
    profit_abs = round(open_value - amount * close_rate * (1 + fee), 8)
    return profit_abs / open_value, profit_abs


FLAT = (100.0, 101.0, 99.0, 100.0)


def one_trade(result):
    assert len(result.trades) == 1, result.trades
    return result.trades.iloc[0]


# --- entries and exit signals ---------------------------------------------------------------


def test_exit_signal_fills_at_next_open():
    c = candles([FLAT, (100, 104, 99, 103), (103, 106, 102, 105), (110, 112, 108, 111), FLAT])
    res = backtest(c, sig(5, 0), sig(5, 2), settings=settings())
    tr = one_trade(res)
    assert tr.open_date == c.date[1] and tr.open_rate == 100
    assert tr.close_date == c.date[3] and tr.close_rate == 110
    assert tr.exit_reason == "exit_signal"
    ratio, pa = long_profit(100, 110)
    assert tr.profit_ratio == pytest.approx(ratio, abs=1e-12)
    assert tr.profit_abs == pytest.approx(pa, abs=1e-9)
    assert tr.stake_amount == pytest.approx(STAKE)
    assert tr.trade_duration == 120
    assert res.equity.iloc[-1] == pytest.approx(WALLET + pa, abs=1e-9)


def test_entry_and_exit_on_same_candle_is_ignored():
    c = candles([FLAT] * 5)
    res = backtest(c, sig(5, 0), sig(5, 0), settings=settings())
    assert res.trades.empty


def test_exit_signal_is_ignored_while_entry_signal_is_set():
    c = candles([FLAT, (100, 101, 99, 100), (101, 102, 100, 101), (102, 103, 101, 102), FLAT])
    res = backtest(c, sig(5, 0, 2), sig(5, 2, 3), settings=settings())
    tr = one_trade(res)
    assert tr.close_date == c.date[4] and tr.close_rate == 100  # exit from candle 3's signal


def test_no_entry_on_the_last_candle_and_force_exit_at_its_open():
    c = candles([FLAT, FLAT, (100, 101, 99, 100), (97, 98, 96, 97)])
    assert backtest(c, sig(4, 2), sig(4), settings=settings()).trades.empty
    tr = one_trade(backtest(c, sig(4, 1), sig(4), settings=settings()))
    assert tr.open_date == c.date[2] and tr.close_date == c.date[3]
    assert tr.close_rate == 97 and tr.exit_reason == "force_exit"


def test_use_exit_signal_false_and_exit_profit_only():
    c = candles(
        [FLAT, (100, 101, 99, 100), (99, 100, 98, 99), (98, 99, 97, 98), (104, 105, 103, 104), FLAT]
    )
    off = backtest(c, sig(6, 0), sig(6, 1, 2), settings=settings(use_exit_signal=False))
    assert one_trade(off).exit_reason == "force_exit"
    # exit_profit_only: the exit signals at candles 1 and 2 meet losing opens (99, 98) and are
    # skipped; the one at candle 3 meets the open 104, a profit above the offset.
    only = backtest(c, sig(6, 0), sig(6, 1, 2, 3), settings=settings(exit_profit_only=True))
    tr = one_trade(only)
    assert tr.close_date == c.date[4] and tr.close_rate == 104 and tr.exit_reason == "exit_signal"


# --- stoploss ---------------------------------------------------------------------------


def test_stoploss_fills_at_stop_price():
    c = candles([FLAT, (100, 101, 95, 96), (96, 97, 89, 91), FLAT])
    tr = one_trade(backtest(c, sig(4, 0), sig(4), settings=settings(stoploss=-0.1)))
    assert tr.exit_reason == "stop_loss" and tr.close_date == c.date[2]
    assert tr.close_rate == pytest.approx(90.0)
    assert tr.profit_ratio == pytest.approx(long_profit(100, 90)[0], abs=1e-12)


def test_stoploss_gap_below_fills_at_open():
    c = candles([FLAT, (100, 101, 95, 96), (85, 88, 84, 86), FLAT])
    tr = one_trade(backtest(c, sig(4, 0), sig(4), settings=settings(stoploss=-0.1)))
    assert tr.exit_reason == "stop_loss" and tr.close_rate == 85


def test_stoploss_inside_the_entry_candle():
    c = candles([FLAT, (100, 101, 80, 85), FLAT])
    tr = one_trade(backtest(c, sig(3, 0), sig(3), settings=settings(stoploss=-0.1)))
    assert tr.open_date == tr.close_date == c.date[1]
    assert tr.close_rate == pytest.approx(90.0) and tr.trade_duration == 0


def test_exit_signal_comes_before_stoploss():
    c = candles([FLAT, (100, 101, 99, 100), (99, 100, 80, 85), FLAT])
    tr = one_trade(backtest(c, sig(4, 0), sig(4, 1), settings=settings(stoploss=-0.1)))
    assert tr.exit_reason == "exit_signal" and tr.close_rate == 99


def test_stop_price_rounds_up_to_the_tick():
    c = candles([FLAT, (100.37, 101, 99, 100), (99, 100, 85, 86), FLAT])
    tr = one_trade(
        backtest(c, sig(4, 0), sig(4), settings=settings(stoploss=-0.1, price_precision=0.01))
    )
    assert tr.close_rate == 90.34  # 100.37 * 0.9 = 90.333 -> up to the next cent


# --- ROI --------------------------------------------------------------------------------


def test_roi_fills_at_target_price_net_of_fees():
    c = candles([FLAT, (100, 101, 99, 100), (101, 107, 100, 106), FLAT])
    tr = one_trade(backtest(c, sig(4, 0), sig(4), settings=settings(minimal_roi={"0": 0.05})))
    target = 100 * (1 + FEE) * 1.05 / (1 - FEE)
    assert tr.exit_reason == "roi" and tr.close_date == c.date[2]
    assert tr.close_rate == pytest.approx(target, rel=1e-12)
    assert tr.profit_ratio == pytest.approx(0.05, abs=1e-9)


def test_roi_needs_profit_above_target_at_the_high():
    target = 100 * (1 + FEE) * 1.05 / (1 - FEE)  # ~105.21
    c = candles([FLAT, (100, 101, 99, 100), (101, 105.2, 100, 105), FLAT])
    res = backtest(c, sig(4, 0), sig(4), settings=settings(minimal_roi={"0": 0.05}))
    assert one_trade(res).exit_reason == "force_exit"
    assert 105.2 < target
    # exactly at the target is not enough: freqtrade requires profit > roi (fee 0: high 105)
    exact = candles([FLAT, (100, 101, 99, 100), (101, 105, 100, 104), FLAT])
    res = backtest(exact, sig(4, 0), sig(4), settings=settings(fee=0.0, minimal_roi={"0": 0.05}))
    assert one_trade(res).exit_reason == "force_exit"


def test_new_roi_step_below_the_open_fills_at_open():
    # {0: 50%, 120: 1%}: the 1% step starts 120 minutes after entry (candle 3), opening at 103,
    # above the 1% target (~101.2): freqtrade exits at the open.
    c = candles([FLAT, (100, 101, 99, 100), (100, 101, 99, 101), (103, 104, 102, 103), FLAT])
    tr = one_trade(
        backtest(c, sig(5, 0), sig(5), settings=settings(minimal_roi={"0": 0.5, "120": 0.01}))
    )
    assert tr.exit_reason == "roi" and tr.close_date == c.date[3] and tr.close_rate == 103


def test_roi_already_active_gap_up_fills_at_target():
    # The 1% step is active from the start; the candle gaps up from 100.5 to 103: the ROI
    # price (~101.2) lies inside the candle, so freqtrade fills there, not at the open.
    c = candles([FLAT, (100, 100.8, 99, 100.5), (103, 104, 100.9, 103), FLAT])
    tr = one_trade(backtest(c, sig(4, 0), sig(4), settings=settings(minimal_roi={"0": 0.01})))
    target = 100 * (1 + FEE) * 1.01 / (1 - FEE)
    assert tr.exit_reason == "roi" and tr.close_date == c.date[2]
    assert tr.close_rate == pytest.approx(target, rel=1e-12)


def test_roi_minus_one_exits_at_open_after_the_given_age():
    c = candles([FLAT, (100, 101, 99, 100), (98, 99, 97, 98), (96, 97, 95, 96), FLAT])
    tr = one_trade(
        backtest(c, sig(5, 0), sig(5), settings=settings(minimal_roi={"0": 10, "120": -1}))
    )
    assert tr.exit_reason == "roi" and tr.close_date == c.date[3] and tr.close_rate == 96


def test_stoploss_comes_before_roi_and_ignore_roi_if_entry_signal():
    c = candles([FLAT, (100, 101, 99, 100), (100, 110, 85, 90), FLAT])
    tr = one_trade(
        backtest(c, sig(4, 0), sig(4), settings=settings(stoploss=-0.1, minimal_roi={"0": 0.05}))
    )
    assert tr.exit_reason == "stop_loss"
    c2 = candles([FLAT, (100, 101, 99, 100), (101, 107, 100, 106), FLAT])
    s = settings(minimal_roi={"0": 0.05}, ignore_roi_if_entry_signal=True)
    assert one_trade(backtest(c2, sig(4, 0, 1), sig(4), settings=s)).exit_reason == "force_exit"


# --- trailing stop ----------------------------------------------------------------------

TRAILING_FROM_OFFSET = settings(
    stoploss=-0.1,
    trailing_stop=True,
    trailing_stop_positive=0.02,
    trailing_stop_positive_offset=0.05,
    trailing_only_offset_is_reached=True,
)
"""Stop at -10 % that only trails (2 % below the high) once the profit reaches 5 %."""


def test_trailing_stop_follows_the_high():
    c = candles([FLAT, (100, 101, 99, 100), (111, 120, 110, 115), (115, 116, 107, 108), FLAT])
    tr = one_trade(
        backtest(c, sig(5, 0), sig(5), settings=settings(stoploss=-0.1, trailing_stop=True))
    )
    assert tr.exit_reason == "trailing_stop_loss" and tr.close_date == c.date[3]
    assert tr.close_rate == pytest.approx(108.0)  # 120 * (1 - 0.1)


def test_trailing_positive_only_once_offset_is_reached():
    s = TRAILING_FROM_OFFSET
    # high 104 (< 5% profit) leaves the stop at 90; high 110 moves it to 110 * 0.98 = 107.8
    c = candles(
        [
            FLAT,
            (100, 101, 99, 100),
            (100, 104, 99, 103),
            (108.5, 110, 108, 109),
            (109, 109, 107, 107),
            FLAT,
        ]
    )
    tr = one_trade(backtest(c, sig(6, 0), sig(6), settings=s))
    assert tr.exit_reason == "trailing_stop_loss" and tr.close_date == c.date[4]
    assert tr.close_rate == pytest.approx(107.8)
    c_low = candles([FLAT, (100, 101, 99, 100), (100, 104, 91, 103), FLAT])
    assert one_trade(backtest(c_low, sig(4, 0), sig(4), settings=s)).exit_reason == "force_exit"


def test_trailing_inside_the_entry_candle_takes_the_worst_case():
    c = candles([FLAT, (100, 110, 95, 96), FLAT])
    tr = one_trade(backtest(c, sig(3, 0), sig(3), settings=TRAILING_FROM_OFFSET))
    assert tr.exit_reason == "trailing_stop_loss" and tr.trade_duration == 0
    assert tr.close_rate == pytest.approx(100 * (1 + 0.05 - 0.02))  # open * (1 + offset - tsp)


def test_roi_comes_before_trailing_stop():
    s = settings(stoploss=-0.1, trailing_stop=True, minimal_roi={"0": 0.15})
    c = candles([FLAT, (100, 101, 99, 100), (106, 125, 105, 110), FLAT])
    tr = one_trade(backtest(c, sig(4, 0), sig(4), settings=s))
    assert tr.exit_reason == "roi"
    assert tr.close_rate == pytest.approx(100 * (1 + FEE) * 1.15 / (1 - FEE), rel=1e-12)


# --- shorts (futures mode at leverage 1 without funding data: freqtrade shorts only in futures) --


def test_short_exit_signal_and_stoploss():
    c = candles([FLAT, (100, 101, 99, 100), (95, 96, 94, 95), (92, 93, 91, 92), FLAT])
    s = settings(can_short=True, stoploss=-0.1, trading_mode="futures")
    res = backtest(c, sig(5), sig(5), enter_short=sig(5, 0), exit_short=sig(5, 2), settings=s)
    tr = one_trade(res)
    assert tr.is_short and tr.close_rate == 92 and tr.exit_reason == "exit_signal"
    ratio, pa = short_profit(100, 92)
    assert tr.profit_ratio == pytest.approx(ratio, abs=1e-12)
    assert tr.profit_abs == pytest.approx(pa, abs=1e-9)
    c2 = candles([FLAT, (100, 101, 99, 100), (104, 112, 103, 111), FLAT])
    tr2 = one_trade(
        backtest(c2, sig(4), sig(4), enter_short=sig(4, 0), exit_short=sig(4), settings=s)
    )
    assert tr2.exit_reason == "stop_loss" and tr2.close_rate == pytest.approx(110.0)


def test_reversal_closes_long_and_opens_short_on_the_same_open():
    c = candles([FLAT, (100, 101, 99, 100), (102, 103, 101, 102), (98, 99, 97, 98), FLAT])
    s = settings(can_short=True, trading_mode="futures")
    res = backtest(c, sig(5, 0), sig(5, 1), enter_short=sig(5, 1), exit_short=sig(5), settings=s)
    assert list(res.trades.exit_reason) == ["exit_signal", "force_exit"]
    long_tr, short_tr = res.trades.iloc[0], res.trades.iloc[1]
    assert not long_tr.is_short and short_tr.is_short
    assert long_tr.close_date == short_tr.open_date == c.date[2]
    assert long_tr.close_rate == short_tr.open_rate == 102


# --- wallet and several pairs -----------------------------------------------------------


def test_unlimited_stake_splits_over_max_open_trades_and_compounds():
    a = candles([FLAT, (100, 101, 99, 100), (110, 111, 109, 110), FLAT, FLAT])
    b = candles([FLAT, FLAT, (50, 51, 49, 50), (50, 51, 49, 50), FLAT])
    s = settings(max_open_trades=2)
    res = backtest(
        {"A/USDT": a, "B/USDT": b},
        {"A/USDT": sig(5, 0), "B/USDT": sig(5, 1)},
        {"A/USDT": sig(5, 1), "B/USDT": sig(5)},
        settings=s,
    )
    tr = res.trades.set_index("pair")
    first = WALLET * 0.99 / 2  # (available + staked) / max_open_trades
    assert tr.loc["A/USDT", "stake_amount"] == pytest.approx(first)
    # candle 2: A closes first (pairs with open trades go first), then B enters with the profit
    pa_a = long_profit(100, 110, stake=first)[1]
    free = WALLET + pa_a
    second = min((free * 0.99) / 2, free * 0.99)
    assert tr.loc["B/USDT", "stake_amount"] == pytest.approx(second, rel=1e-12)


def test_max_open_trades_rejects_and_frees_slot_in_processing_order():
    a = candles([FLAT] * 6)
    b = candles([FLAT] * 6)
    s = settings(max_open_trades=1)
    # B (second pair) opens first; A's signal at candle 1 is rejected while B is open; B exits
    # at candle 3's open and, processed first as the pair with the open trade, frees the slot
    # for A's entry on the same candle.
    res = backtest(
        {"A/USDT": a, "B/USDT": b},
        {"A/USDT": sig(6, 1, 2), "B/USDT": sig(6, 0)},
        {"A/USDT": sig(6), "B/USDT": sig(6, 2)},
        settings=s,
    )
    tr = res.trades.sort_values("open_date").reset_index(drop=True)
    assert list(tr.pair) == ["B/USDT", "A/USDT"]
    assert tr.open_date[1] == tr.close_date[0] == a.date[3]
    assert res.positions.sum(axis=1).abs().max() == 1


def test_fixed_stake_and_insufficient_balance():
    c = candles([FLAT, (100, 101, 99, 100), FLAT])
    tr = one_trade(backtest(c, sig(3, 0), sig(3), settings=settings(stake_amount=100.0)))
    assert tr.stake_amount == pytest.approx(100.0)
    assert backtest(c, sig(3, 0), sig(3), settings=settings(stake_amount=995.0)).trades.empty


def test_amount_is_truncated_to_the_market_step():
    c = candles([FLAT, (300, 301, 299, 300), FLAT])
    tr = one_trade(backtest(c, sig(3, 0), sig(3), settings=settings(amount_precision=0.01)))
    assert tr.amount == pytest.approx(3.3)  # 990 / 300 = 3.3 exactly -> stays
    tr = one_trade(backtest(c, sig(3, 0), sig(3), settings=settings(amount_precision=1.0)))
    assert tr.amount == 3.0 and tr.stake_amount == pytest.approx(900.0)


def test_zero_trades_gives_defined_metrics():
    c = candles([FLAT] * 30)
    res = backtest(c, sig(30), sig(30), settings=settings())
    assert res.trades.empty
    m = res.metrics
    assert m["total_trades"] == 0 and m["profit_total"] == 0.0 and m["sharpe"] == 0.0
    assert m["max_drawdown_account"] == 0.0 and m["exposure"] == 0.0
    assert m["final_balance"] == WALLET
    assert np.all(res.equity.to_numpy() == WALLET)


# --- input validation -------------------------------------------------------------------


def test_gapped_candles_are_rejected():
    c = candles([FLAT] * 5).drop(index=2).reset_index(drop=True)
    with pytest.raises(ValueError, match="gapless"):
        backtest(c, sig(4), sig(4), settings=settings())


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda c: c.drop(columns="low"), "lacks columns"),
        (lambda c: c.assign(high=c["low"] - 1), "low <= open"),
        (lambda c: c.assign(close=np.nan), "finite"),
        (lambda c: c.assign(date=c["date"].dt.tz_localize(None)), "timezone"),
    ],
)
def test_bad_candles_are_rejected(mutate, match):
    with pytest.raises(ValueError, match=match):
        backtest(mutate(candles([FLAT] * 5)), sig(5), sig(5), settings=settings())


def test_bad_signals_are_rejected():
    c = candles([FLAT] * 5)
    with pytest.raises(ValueError, match="aligned with the 5 candles"):
        backtest(c, sig(4), sig(5), settings=settings())
    with pytest.raises(ValueError, match="only 0/1"):
        backtest(c, np.array([0, 2, 0, 0, 0]), sig(5), settings=settings())
    with pytest.raises(ValueError, match="can_short"):
        backtest(c, sig(5), sig(5), enter_short=sig(5), settings=settings())
    with pytest.raises(ValueError, match="exactly the candles' pairs"):
        backtest({"A/USDT": c}, {"B/USDT": sig(5)}, {"A/USDT": sig(5)}, settings=settings())
