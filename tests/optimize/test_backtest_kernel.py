"""Precision kernels against freqtrade's own functions (price/amount rounding, tick inference)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from freqtrade.data.btanalysis import get_tick_size_over_time
from freqtrade.exchange.exchange_utils import (
    ROUND,
    ROUND_DOWN,
    ROUND_UP,
    TICK_SIZE,
    amount_to_precision,
    price_to_precision,
)

from optimize import _backtest_kernel as kernel
from optimize.backtest import candle_price_decimals
from optimize.data import load_candles


def _prices(seed: int, n: int = 3000) -> np.ndarray:
    """Prices the engine rounds: stop and ROI prices derived from 2-decimal opens."""
    rng = np.random.default_rng(seed)
    opens = np.round(rng.uniform(0.5, 90000, n), 2)
    factors = rng.choice([0.9, 0.95, 0.97, 1.01, 1.02, 1.05, 1.1], n)
    return np.concatenate([opens * factors, opens, opens * (1.001 * 1.05 / 0.999)])


@pytest.mark.parametrize("decimals", [0, 2, 4])
def test_price_rounding_matches_freqtrade(decimals):
    tick = 1 / 10**decimals
    for x in _prices(decimals):
        assert kernel.round_up_tick(x, decimals) == price_to_precision(
            x, tick, TICK_SIZE, rounding_mode=ROUND_UP
        )
        assert kernel.round_down_tick(x, decimals) == price_to_precision(
            x, tick, TICK_SIZE, rounding_mode=ROUND_DOWN
        )
        assert kernel.round_half_up_tick(x, decimals) == price_to_precision(
            x, tick, TICK_SIZE, rounding_mode=ROUND
        )


def test_exact_ties_and_on_tick_values():
    assert kernel.round_half_up_tick(41234.565, 2) == price_to_precision(41234.565, 0.01, TICK_SIZE)
    assert kernel.round_up_tick(37111.05, 2) == 37111.05
    assert kernel.round_up_tick(100.37 * 0.9, 2) == 90.34
    assert kernel.round_down_tick(0.3, 1) == 0.3
    assert kernel.round_up_tick(1.23456, -1) == 1.23456  # -1: no rounding


@pytest.mark.parametrize("step_decimals", [3, 4, 5])
def test_amount_truncation_matches_freqtrade(step_decimals):
    rng = np.random.default_rng(step_decimals)
    stakes = rng.uniform(10, 5000, 2000)
    rates = np.round(rng.uniform(1, 90000, 2000), 2)
    step = 1 / 10**step_decimals
    for amount in stakes / rates:
        assert kernel.round_down_tick(amount, step_decimals) == amount_to_precision(
            amount, step, TICK_SIZE
        )


def test_price_decimals_count_like_freqtrade():
    values = np.array([2.9515, 7195.24, 41000.0, 0.00001234, 3.1, 123456.789, 0.5])
    assert kernel.price_decimals(values).tolist() == [4, 2, -1, 8, 1, 3, 1]


@pytest.mark.parametrize(
    ("pair", "start", "end"),
    [("BTC/USDT", "2020-01-01", "2020-07-01"), ("SOL/USDT", "2020-08-01", "2021-03-01")],
)
def test_candle_ticks_match_freqtrade_tick_size_over_time(datadir, pair, start, end):
    candles = load_candles(pair, "1h", datadir=datadir, start=start, end=end)
    ours = candle_price_decimals(candles)
    monthly = get_tick_size_over_time(candles.copy())
    theirs = np.array([monthly.asof(d) for d in candles["date"]])
    assert np.all(np.isfinite(theirs))
    np.testing.assert_allclose(1.0 / 10.0**ours, theirs, rtol=1e-12)


def test_candle_ticks_fill_months_without_decimals_from_the_previous_month():
    dates = pd.date_range("2024-01-31 22:00", periods=4, freq="1h", tz="UTC")
    frame = pd.DataFrame(
        {
            "date": dates,
            "open": [1.25, 1.5, 2.0, 3.0],
            "high": [1.25, 1.5, 2.0, 3.0],
            "low": [1.25, 1.5, 2.0, 3.0],
            "close": [1.25, 1.5, 2.0, 3.0],
        }
    )
    assert candle_price_decimals(frame).tolist() == [2, 2, 2, 2]
