"""The engine's numbers are pinned bit for bit: real candles, seeded signals, eight rule sets.

The digests were recorded with the engine before its kernel was split into helpers (settings as
one tuple, trades as records); any change to a trade, an equity value or a position changes a
digest. A deliberate change of the engine's numbers must re-record them (and say why).

The two cases that short ("short", "no_tick") were recorded when the engine simulated shorts in
spot mode as 1x trades without funding; freqtrade shorts only in futures mode, so they now run in
futures mode at leverage 1 without funding data, which reproduces the recorded digests bit for bit.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from optimize.backtest.engine import TRADE_COLUMNS, BacktestResult, backtest
from optimize.backtest.settings import BacktestSettings
from optimize.data import load_candles

PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
CASES = {
    "default": {},
    "trail": {
        "stoploss": -0.04,
        "minimal_roi": {"0": 0.06, "180": 0.02, "600": 0.0},
        "trailing_stop": True,
        "trailing_stop_positive": 0.01,
        "trailing_stop_positive_offset": 0.02,
        "max_open_trades": 2,
    },
    "trail_only_offset": {
        "stoploss": -0.03,
        "minimal_roi": {"0": 0.05, "120": -1},
        "trailing_stop": True,
        "trailing_stop_positive": 0.005,
        "trailing_stop_positive_offset": 0.01,
        "trailing_only_offset_is_reached": True,
        "max_open_trades": 3,
    },
    "trail_plain": {"stoploss": -0.02, "trailing_stop": True, "max_open_trades": 3},
    "short": {
        "trading_mode": "futures",
        "can_short": True,
        "stoploss": -0.05,
        "minimal_roi": {"0": 0.04, "60": 0.01, "300": -1},
        "max_open_trades": 3,
        "trailing_stop": True,
        "trailing_stop_positive": 0.01,
        "trailing_stop_positive_offset": 0.015,
    },
    "fixed_stake": {
        "stake_amount": 120.0,
        "max_open_trades": -1,
        "amount_precision": 1e-5,
        "exit_profit_only": True,
        "exit_profit_offset": 0.005,
        "ignore_roi_if_entry_signal": True,
        "minimal_roi": {"0": 0.03, "240": 0.0},
    },
    "fixed_tick": {
        "price_precision": 0.01,
        "use_exit_signal": False,
        "stoploss": -0.06,
        "minimal_roi": {"0": 0.02},
        "tradable_balance_ratio": 0.5,
        "max_open_trades": 2,
    },
    "no_tick": {
        "trading_mode": "futures",
        "price_precision": None,
        "can_short": True,
        "max_open_trades": 2,
        "fee": 0.0005,
    },
}
GOLDEN = {
    "default": "bfff6464e2290ce42de1ae008c434e6e7301a0bc6c21f2e63b9b54b127bf6cf6",
    "trail": "d09fcd1af114072cad73812a7193c604bd22393164b6c334e079673198eab4d2",
    "trail_only_offset": "3e98ba708637cff2ca24cc2032c5f92c379a70cc4bc0b2b9ff19aedc9f2592c9",
    "trail_plain": "9cbce23e1ccaade138520f4065888a4d0f543aef48eed46d4a1025fb178d3adf",
    "short": "c08965b359a7e2bb3363b60dec643775daf1a8a3d79089b4da576f62b79339d1",
    "fixed_stake": "fffa0077691c34cc3faf2700a97c97f7c4f1b1ee32c954ac47c899499927dddf",
    "fixed_tick": "73d43e69e6e48b4f19d5d2a017cc23d991fd945ea389ddc76dc371160dccb457",
    "no_tick": "1c84738565677f9c2a06955aff3c01c7b66511a954387d48af439cfc01a8282e",
}
"""sha256 of (trades, equity, positions) per case, see :func:`digest`."""


@pytest.fixture(scope="module")
def market(datadir):
    """Nine months of real 1h candles of three pairs (SOL starts later) and seeded signals."""
    candles, signals = {}, {k: {} for k in ("el", "xl", "es", "xs")}
    rng = np.random.default_rng(14)
    for pair in PAIRS:
        frame = load_candles(pair, "1h", datadir=datadir, start="2020-06-01", end="2021-03-01")
        candles[pair] = frame
        for key, rate in (("el", 0.06), ("xl", 0.04), ("es", 0.05), ("xs", 0.04)):
            signals[key][pair] = rng.random(len(frame)) < rate
    return candles, signals


def run_case(market, name: str) -> BacktestResult:
    candles, sig = market
    settings = BacktestSettings(**CASES[name])
    shorts = {"enter_short": sig["es"], "exit_short": sig["xs"]} if settings.can_short else {}
    return backtest(candles, sig["el"], sig["xl"], settings=settings, **shorts)


def digest(trades: pd.DataFrame, equity: pd.Series, positions: pd.DataFrame) -> str:
    """sha256 over every trade field, the equity curve and the positions (exact bytes)."""
    h = hashlib.sha256()
    for column in TRADE_COLUMNS:
        values = trades[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            h.update("\n".join(values.astype(str)).encode())
        elif pd.api.types.is_datetime64_any_dtype(values):
            h.update(pd.DatetimeIndex(values).as_unit("ns").asi8.tobytes())
        else:
            h.update(np.ascontiguousarray(values.to_numpy()).tobytes())
    h.update(np.ascontiguousarray(equity.to_numpy(np.float64)).tobytes())
    h.update(pd.DatetimeIndex(equity.index).as_unit("ns").asi8.tobytes())
    h.update(np.ascontiguousarray(positions.to_numpy(np.int8)).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", list(CASES))
def test_results_are_bit_identical_to_the_recorded_engine(market, name):
    res = run_case(market, name)
    assert len(res.trades) > 100
    assert digest(res.trades, res.equity, res.positions) == GOLDEN[name]
