"""One year (2024) of real BTC/USDT 1h candles with the same precomputed random entry/exit signals
and exit rules (stoploss, ROI table, trailing stop). Reference: freqtrade's own
``Backtesting.backtest`` in-process and offline (``optimize.freqtrade.offline``), median of its
runs; ours: ``optimize.backtest.engine.backtest()`` (validation, ticks, numba kernel, result
frames, metrics) and, as info, the bare kernel, median of repeated calls after a warm-up; rounds
alternate. The run stops if the two disagree on the trades. Figures in candles/s.
"""

from __future__ import annotations

import functools
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import Row, median_seconds, row
from optimize import markets as markets_mod
from optimize.backtest import _kernel as kernel
from optimize.backtest.engine import backtest, kernel_rules, roi_table
from optimize.backtest.settings import BacktestSettings
from optimize.data import DEFAULT_DATADIR, load_candles
from optimize.freqtrade import offline as ftoffline

PAIR, TIMERANGE = "BTC/USDT", "20240101-20241231"
SETTINGS = BacktestSettings(
    stoploss=-0.04,
    minimal_roi={"0": 0.05, "240": 0.02, "720": 0.0},
    trailing_stop=True,
    trailing_stop_positive=0.01,
    trailing_stop_positive_offset=0.02,
)


def bench_backtest(*, repeats: int = 30, rounds: int = 3) -> list[Row]:
    """Candles/s of ``backtest()`` and the bare kernel vs freqtrade; per round one freqtrade run,
    then ``repeats`` calls of each of ours."""
    raw = load_candles(PAIR, "1h", start="2024-01-01", end="2025-01-02")
    rng = np.random.default_rng(2024)
    raw_enter, raw_exit = rng.random(len(raw)) < 0.05, rng.random(len(raw)) < 0.03
    markets = markets_mod.load_markets()
    precision = markets_mod.amount_precisions(markets, [PAIR])
    settings = BacktestSettings(**{**SETTINGS.__dict__, "amount_precision": precision})
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        signal_file = Path(tmp) / "signals.feather"
        signals = {"enter_long": {PAIR: raw_enter}, "exit_long": {PAIR: raw_exit}}
        ftoffline.save_signals(signal_file, {PAIR: raw}, signals)
        config = ftoffline.freqtrade_config(
            [PAIR], SETTINGS, **{ftoffline.SIGNAL_FILE_KEY: str(signal_file)}
        )
        run_ft = functools.partial(
            ftoffline.run_replay_backtest, config, datadir=DEFAULT_DATADIR, markets=markets
        )
        ft = run_ft(timerange=TIMERANGE)
        candles = ft.candles[PAIR]
        at = pd.Series(np.arange(len(raw)), index=raw["date"]).reindex(candles["date"]).to_numpy()
        enter, exit_ = raw_enter[at], raw_exit[at]
        ours = functools.partial(backtest, candles, enter, exit_, settings=settings)
        bare = _bare_kernel(candles, enter, exit_, settings)
        mine, theirs = ours().trades, ft.trades  # also the warm-up (loads the kernel)
        if len(mine) != len(theirs) or not np.allclose(
            mine.sort_values("open_date")["profit_ratio"].to_numpy(),
            theirs.sort_values("open_date")["profit_ratio"].to_numpy(),
            rtol=0,
            atol=1e-6,
        ):
            raise RuntimeError(f"engine and freqtrade disagree: {len(mine)} vs {len(theirs)}")
        rate = alternate_rounds(ft, run_ft, ours, bare, len(candles), rounds, repeats, TIMERANGE)
    return engine_rows(rate, f"({PAIR} 1h, 2024)")


def alternate_rounds(
    ft, run_ft, ours, bare, n_candles: int, rounds: int, repeats: int, timerange: str
) -> dict:
    """Candles/s of freqtrade (``ft``, then ``run_ft`` over ``timerange`` each further round),
    ``ours`` and ``bare`` (the median of ``repeats`` calls per round; ``bare`` is warmed up
    first): the median over ``rounds`` rounds that alternate the sides."""
    times: dict[str, list[float]] = {"ft": [], "engine": [], "kernel": []}
    bare()
    for k in range(rounds):
        if k:
            ft = run_ft(timerange=timerange)
        times["ft"].append(ft.seconds)
        times["engine"].append(median_seconds(ours, repeats))
        times["kernel"].append(median_seconds(bare, repeats))
    return {side: n_candles / statistics.median(t) for side, t in times.items()}


def engine_rows(rate: dict, what: str, mode: str = "") -> list[Row]:
    """The engine's and the bare kernel's rows against freqtrade (``mode``: "" or "futures ")."""
    return [
        row(
            f"{mode}backtest() vs freqtrade {mode}Backtesting.backtest {what}",
            rate["engine"],
            rate["ft"],
            "candles/s",
            ">= 200x",
            at_least=200,
        ),
        row(
            f"{mode}backtest kernel alone vs freqtrade {what}",
            rate["kernel"],
            rate["ft"],
            "candles/s",
        ),
    ]


def _bare_kernel(candles: pd.DataFrame, enter: np.ndarray, exit_: np.ndarray, settings):
    """The kernel call alone on arrays prepared once (what ``backtest()`` wraps)."""
    n = len(candles)
    bars = np.zeros((n, 1), kernel.CANDLE_DTYPE)
    for column in ("open", "high", "low", "close"):
        bars[column][:, 0] = candles[column].to_numpy(np.float64)
    bars["enter_long"][:, 0], bars["exit_long"][:, 0], bars["price_dec"] = enter, exit_, 2
    market = kernel.Market(bars, np.array([0]), np.array([n - 1]), np.array([5]))
    rules, roi = kernel_rules(settings, 60), roi_table(settings)
    return lambda: kernel.simulate(market, rules, roi)
