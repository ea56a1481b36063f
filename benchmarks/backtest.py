"""The backtest engine against freqtrade's own ``Backtesting.backtest``, same pair-year, same run.

Both sides trade one year of real BTC/USDT 1h candles (2024) with the same precomputed random
signals and exit rules (stoploss, ROI table, trailing stop). The reference runs in-process and
offline (:mod:`optimize.freqtrade.offline`); ours is :func:`optimize.backtest.engine.backtest`
(validation, ticks, the numba kernel, result frames, metrics), median of repeated calls after a
warm-up. The run stops if the two sides disagree on the trades. Figures in candles per second.
"""

from __future__ import annotations

import functools
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import Row, median_seconds, row
from optimize.backtest import _kernel as kernel
from optimize.backtest.engine import backtest, kernel_rules, roi_table
from optimize.backtest.settings import BacktestSettings
from optimize.data import DEFAULT_DATADIR, load_candles
from optimize.freqtrade import offline as ftoffline

PAIR, TIMEFRAME = "BTC/USDT", "1h"
START, END, TIMERANGE = "2024-01-01", "2025-01-02", "20240101-20241231"
SETTINGS = BacktestSettings(
    stoploss=-0.04,
    minimal_roi={"0": 0.05, "240": 0.02, "720": 0.0},
    trailing_stop=True,
    trailing_stop_positive=0.01,
    trailing_stop_positive_offset=0.02,
)


def bench_backtest(
    *, repeats: int = 30, rounds: int = 3, datadir: Path | str = DEFAULT_DATADIR
) -> list[Row]:
    """Candles/s of ``backtest()`` and of the bare kernel vs freqtrade's backtest loop.

    Each round runs freqtrade once, then ``repeats`` engine and kernel calls.

    Raises:
        ValueError: ``repeats`` or ``rounds`` < 1.
        RuntimeError: the two sides disagree on the trades.
    """
    if repeats < 1 or rounds < 1:
        raise ValueError(
            f"bench_backtest needs repeats, rounds >= 1, but got {repeats=}, {rounds=}."
        )
    raw = load_candles(PAIR, TIMEFRAME, datadir=datadir, start=START, end=END)
    rng = np.random.default_rng(2024)
    raw_enter, raw_exit = rng.random(len(raw)) < 0.05, rng.random(len(raw)) < 0.03
    markets = ftoffline.load_markets()
    precision = ftoffline.amount_precisions(markets, [PAIR])
    settings = BacktestSettings(**{**SETTINGS.__dict__, "amount_precision": precision})
    times: dict[str, list[float]] = {"ft": [], "engine": [], "kernel": []}
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        signal_file = Path(tmp) / "signals.feather"
        signals = {"enter_long": {PAIR: raw_enter}, "exit_long": {PAIR: raw_exit}}
        ftoffline.save_signals(signal_file, {PAIR: raw}, signals)
        config = ftoffline.freqtrade_config(
            [PAIR], SETTINGS, **{ftoffline.SIGNAL_FILE_KEY: str(signal_file)}
        )
        for k in range(rounds):
            ft = ftoffline.run_replay_backtest(
                config, datadir=datadir, timerange=TIMERANGE, markets=markets
            )
            times["ft"].append(ft.seconds)
            if k == 0:
                candles = ft.candles[PAIR]
                index = pd.Series(np.arange(len(raw)), index=raw["date"])
                rows = index.reindex(candles["date"]).to_numpy()
                enter, exit_ = raw_enter[rows], raw_exit[rows]
                ours = functools.partial(backtest, candles, enter, exit_, settings=settings)
                bare_kernel = _bare_kernel(candles, enter, exit_, settings)
                _check_same_trades(ours(), ft)  # also the warm-up (compiles or loads the kernel)
                bare_kernel()
            times["engine"].append(median_seconds(ours, repeats))
            times["kernel"].append(median_seconds(bare_kernel, repeats))
    n = len(candles)
    rate = {side: n / statistics.median(t) for side, t in times.items()}
    what = f"({PAIR} {TIMEFRAME}, 2024)"
    return [
        row(
            f"backtest() vs freqtrade Backtesting.backtest {what}",
            rate["engine"],
            rate["ft"],
            "candles/s",
            ">= 200x",
            at_least=200,
        ),
        row(f"backtest kernel alone vs freqtrade {what}", rate["kernel"], rate["ft"], "candles/s"),
    ]


def _check_same_trades(result, ft: ftoffline.FreqtradeBacktest) -> None:
    ours = result.trades.sort_values("open_date")
    theirs = ft.trades.sort_values("open_date")
    same = len(ours) == len(theirs) and np.allclose(
        ours["profit_ratio"].to_numpy(), theirs["profit_ratio"].to_numpy(), rtol=0, atol=1e-6
    )
    if not same:
        raise RuntimeError(f"engine and freqtrade disagree: {len(ours)} vs {len(theirs)} trades.")


def _bare_kernel(candles: pd.DataFrame, enter: np.ndarray, exit_: np.ndarray, settings):
    """The kernel call alone, on arrays prepared once (what ``backtest()`` wraps)."""
    n = len(candles)
    bars = np.zeros((n, 1), kernel.CANDLE_DTYPE)
    for column in ("open", "high", "low", "close"):
        bars[column][:, 0] = candles[column].to_numpy(np.float64)
    bars["enter_long"][:, 0] = enter
    bars["exit_long"][:, 0] = exit_
    bars["price_dec"] = 2
    market = kernel.Market(bars, np.array([0]), np.array([n - 1]), np.array([5]))
    rules, roi = kernel_rules(settings, 60), roi_table(settings)
    return lambda: kernel.simulate(market, rules, roi)
