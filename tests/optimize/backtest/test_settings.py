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
