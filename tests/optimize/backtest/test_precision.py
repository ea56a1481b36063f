"""Precision kernels against freqtrade's own functions (price/amount rounding, tick inference)."""

from __future__ import annotations

import ast
import subprocess
import sys

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

from optimize.backtest import _precision as precision
from optimize.backtest.engine import candle_price_decimals
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
        assert precision.round_up_tick(x, decimals) == price_to_precision(
            x, tick, TICK_SIZE, rounding_mode=ROUND_UP
        )
        assert precision.round_down_tick(x, decimals) == price_to_precision(
            x, tick, TICK_SIZE, rounding_mode=ROUND_DOWN
        )
        assert precision.round_half_up_tick(x, decimals) == price_to_precision(
            x, tick, TICK_SIZE, rounding_mode=ROUND
        )


def test_exact_ties_and_on_tick_values():
    assert precision.round_half_up_tick(41234.565, 2) == price_to_precision(
        41234.565, 0.01, TICK_SIZE
    )
    assert precision.round_up_tick(37111.05, 2) == 37111.05
    assert precision.round_up_tick(100.37 * 0.9, 2) == 90.34
    assert precision.round_down_tick(0.3, 1) == 0.3
    assert precision.round_up_tick(1.23456, -1) == 1.23456  # -1: no rounding


# Ticks finer than the float spacing (|x| * 10**decimals >= 2**53 - 1): every float sits on a tick.
FINE_TICK_CASES = [(100.3, 15), (123456789.3, 8), (-100.3, 15), (90071.99254740991, 11)]


@pytest.mark.timeout(120)
def test_ticks_finer_than_the_float_spacing_return_the_value_unchanged():
    """Regression: the tick search never ended there (``m + 1.0 == m`` from 2**53 on).

    The calls run in a child process with a time limit: a numba loop holds the GIL, so
    pytest-timeout could not interrupt a hang inside this process.
    """
    code = (
        "from optimize.backtest import _precision as k\n"
        f"print([(k.round_up_tick(x, d), k.round_down_tick(x, d), k.round_half_up_tick(x, d))"
        f" for x, d in {FINE_TICK_CASES!r}])"
    )
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert ast.literal_eval(child.stdout) == [
        (100.3, 100.3, 100.3),
        (123456789.3, 123456789.3, 123456789.3),
        (-100.3, -100.3, -100.3),
        (90071.99254740991, 90071.99254740991, 90071.99254740991),
    ]
    for x, decimals in FINE_TICK_CASES:  # freqtrade leaves these values unchanged too
        for mode in (ROUND_UP, ROUND_DOWN, ROUND):
            assert price_to_precision(x, 10.0**-decimals, TICK_SIZE, rounding_mode=mode) == x


def test_ticks_just_coarser_than_the_float_spacing_still_round():
    """From 2**52 to 2**53 - 1 ticks not every float is on a tick: they round like freqtrade."""
    x = 450359962737050.0625  # x * 10 just above 2**52; freqtrade reads it as ...050.06
    for rounder, mode, expected in (
        (precision.round_up_tick, ROUND_UP, 450359962737050.1),
        (precision.round_down_tick, ROUND_DOWN, 450359962737050.0),
        (precision.round_half_up_tick, ROUND, 450359962737050.1),
    ):
        assert rounder(x, 1) == expected
        assert price_to_precision(x, 0.1, TICK_SIZE, rounding_mode=mode) == expected


@pytest.mark.parametrize("step_decimals", [3, 4, 5])
def test_amount_truncation_matches_freqtrade(step_decimals):
    rng = np.random.default_rng(step_decimals)
    stakes = rng.uniform(10, 5000, 2000)
    rates = np.round(rng.uniform(1, 90000, 2000), 2)
    step = 1 / 10**step_decimals
    for amount in stakes / rates:
        assert precision.round_down_tick(amount, step_decimals) == amount_to_precision(
            amount, step, TICK_SIZE
        )


def test_price_decimals_count_like_freqtrade():
    values = np.array([2.9515, 7195.24, 41000.0, 0.00001234, 3.1, 123456.789, 0.5])
    assert precision.price_decimals(values).tolist() == [4, 2, -1, 8, 1, 3, 1]


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
