"""Backtest settings: every bad value is rejected with its key named; the ROI table is
normalised."""

from __future__ import annotations

import dataclasses

import pytest

from optimize.backtest.settings import BacktestSettings, power_of_ten_decimals


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fee": 1.5}, "fee"),
        ({"stoploss": 0.1}, "stoploss"),
        ({"minimal_roi": {"ten": 0.1}}, "minimal_roi"),
        ({"minimal_roi": {}}, "minimal_roi"),
        ({"minimal_roi": {"-5": 0.1}}, "minimal_roi"),
        ({"stake_amount": "all"}, "stake_amount"),
        ({"max_open_trades": 0}, "max_open_trades"),
        ({"max_open_trades": -1}, "fixed stake_amount"),
        ({"trailing_stop_positive": 0.0}, "trailing_stop_positive"),
        ({"timeframe": "7x"}, "timeframe"),
        ({"price_precision": 0.03}, "power of ten"),
        ({"amount_precision": {"BTC/USDT": 0.5}}, "power of ten"),
    ],
)
def test_bad_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BacktestSettings(**kwargs)


def test_settings_normalise_the_roi_table():
    s = BacktestSettings(minimal_roi={"60": 0.01, 0: 0.05, "30": 0.02})
    keys, vals = s.roi_arrays()
    assert keys.tolist() == [0, 30, 60] and vals.tolist() == [0.05, 0.02, 0.01]
    assert dataclasses.replace(s, fee=0.0).minimal_roi == {0: 0.05, 30: 0.02, 60: 0.01}


@pytest.mark.parametrize(("step", "decimals"), [(1, 0), (0.01, 2), (1e-5, 5), (1e-8, 8)])
def test_power_of_ten_decimals(step, decimals):
    assert power_of_ten_decimals("tick", step) == decimals


@pytest.mark.parametrize("step", [0, -0.01, 0.03, 2, float("nan"), True, "0.01"])
def test_power_of_ten_decimals_rejects_other_steps(step):
    with pytest.raises(ValueError, match=r"tick must be a power of ten .* but got tick="):
        power_of_ten_decimals("tick", step)


FUTURES = {"trading_mode": "futures"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"trading_mode": "margin"},
            "trading_mode must be one of ('spot', 'futures'), but got trading_mode='margin'.",
        ),
        (
            {"leverage": 3.0},
            "leverage must be 1 in spot mode (leverage needs trading_mode='futures'), but got "
            "leverage=3.0.",
        ),
        (
            {"can_short": True},
            "can_short must be False in spot mode (freqtrade shorts only with "
            "trading_mode='futures'), but got can_short=True.",
        ),
        (
            {"margin_mode": "isolated"},
            "margin_mode must be '' or None in spot mode (margin is a futures setting), but got "
            "margin_mode='isolated'.",
        ),
        (
            {**FUTURES, "margin_mode": "cross"},
            "margin_mode='cross' is not supported: futures are backtested with isolated margin "
            "only (each trade's liquidation price from its own stake); expected "
            "margin_mode='isolated'.",
        ),
        (
            {**FUTURES, "margin_mode": "portfolio"},
            "margin_mode must be 'isolated' in futures mode, but got margin_mode='portfolio'.",
        ),
        (
            {**FUTURES, "leverage": 0.5},
            "leverage must be a finite number >= 1.0, but got leverage=0.5.",
        ),
        (
            {**FUTURES, "leverage": float("inf")},
            "leverage must be a finite number >= 1.0, but got leverage=inf.",
        ),
        (
            {**FUTURES, "leverage": "3"},
            "leverage must be a finite number >= 1.0, but got leverage='3'.",
        ),
        (
            {**FUTURES, "liquidation_buffer": 1.0},
            "liquidation_buffer must be a finite number in [0.0, 0.99], but got "
            "liquidation_buffer=1.0.",
        ),
        (
            {**FUTURES, "amount_reserve_percent": -0.1},
            "amount_reserve_percent must be a finite number in [0.0, 0.5], but got "
            "amount_reserve_percent=-0.1.",
        ),
    ],
)
def test_futures_keys_are_checked_with_one_line_messages(kwargs, message):
    with pytest.raises(ValueError) as err:
        BacktestSettings(**kwargs)
    assert str(err.value) == message
    assert "\n" not in message


def test_trading_mode_defaults_follow_freqtrade():
    spot = BacktestSettings()
    assert (spot.trading_mode, spot.margin_mode, spot.leverage, spot.futures) == (
        "spot",
        "",
        1.0,
        False,
    )
    futures = BacktestSettings(trading_mode="futures", leverage=3, can_short=True)
    assert (futures.margin_mode, futures.leverage, futures.futures) == ("isolated", 3, True)
    assert BacktestSettings(trading_mode="futures", margin_mode="").margin_mode == "isolated"
    assert futures.liquidation_buffer == 0.05 and futures.amount_reserve_percent == 0.05
    # switching a spot object to futures keeps it valid (margin_mode "" means "the default")
    assert dataclasses.replace(spot, trading_mode="futures").margin_mode == "isolated"
