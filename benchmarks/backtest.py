"""Benchmark: the backtest engine against freqtrade's own backtesting, same pair-year, same run.

Both sides trade one year of real BTC/USDT 1h candles (2024) with the same precomputed signals
and the same exit rules (stoploss, ROI table, trailing stop). The reference is freqtrade's
``Backtesting.backtest`` call, run in-process and offline through :mod:`optimize.freqtrade.offline`
(signal advice and the trade loop; data loading and indicator computation excluded). Ours is
:func:`optimize.backtest.engine.backtest` (input validation, price ticks, the numba kernel, result
frames and metrics), timed as the median of repeated calls after one warm-up call that compiles
or loads the kernel; freqtrade's loop is timed as the median of a few runs. The run fails loudly if
the two sides do not produce the same trades, so the figures always compare the same work. Figures
are throughputs in candles per second and their ratio (> 1: ours is faster).

The replay strategy is ``strategy/freqtrade/replay/signal_replay.py``.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import make_row, median_seconds
from optimize.backtest import _kernel as kernel
from optimize.backtest.engine import backtest, kernel_rules, roi_table
from optimize.backtest.settings import BacktestSettings
from optimize.data import DEFAULT_DATADIR, load_candles
from optimize.freqtrade import offline as ftoffline

log = logging.getLogger(__name__)

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
) -> list[dict]:
    """Throughput of the engine vs freqtrade's backtesting on one pair-year.

    Rounds alternate one freqtrade run with ``repeats`` engine calls, so background load hits
    both sides alike; value and reference are medians over all timings.

    Args:
        repeats: timed engine (and bare kernel) calls per round.
        rounds: alternating rounds; each runs freqtrade's backtest loop once.
        datadir: data folder with ``binance/BTC_USDT-1h.feather``.

    Returns:
        Row dicts ``{"name", "value", "reference", "ratio", "unit", "goal"}``: the full
        ``backtest()`` call and the bare kernel, each against freqtrade's backtest loop;
        ``ratio`` = value / reference, > 1 means ours is faster.

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
    raw_enter = rng.random(len(raw)) < 0.05
    raw_exit = rng.random(len(raw)) < 0.03
    markets = ftoffline.load_markets()
    settings = BacktestSettings(
        **{**SETTINGS.__dict__, "amount_precision": ftoffline.amount_precisions(markets, [PAIR])}
    )
    ft_times: list[float] = []
    engine_times: list[float] = []
    kernel_times: list[float] = []
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
            ft_times.append(ft.seconds)
            if k == 0:
                candles = ft.candles[PAIR]
                index = pd.Series(np.arange(len(raw)), index=raw["date"])
                rows = index.reindex(candles["date"]).to_numpy()
                enter, exit_ = raw_enter[rows], raw_exit[rows]
                ours = _engine_call(candles, enter, exit_, settings)
                bare_kernel = _bare_kernel(candles, enter, exit_, settings)
                _check_same_trades(ours(), ft)  # also the warm-up (compiles or loads the kernel)
                bare_kernel()
            engine_times.append(median_seconds(ours, repeats))
            kernel_times.append(median_seconds(bare_kernel, repeats))
    n = len(candles)
    ft_s = statistics.median(ft_times)
    engine_s = statistics.median(engine_times)
    kernel_s = statistics.median(kernel_times)
    log.info(
        "bench_backtest: %d candles, %d trades; freqtrade %.3f s, backtest() %.5f s, kernel %.5f s",
        n,
        len(ft.trades),
        ft_s,
        engine_s,
        kernel_s,
    )
    reference = n / ft_s
    return [
        make_row(
            f"backtest() vs freqtrade Backtesting.backtest ({PAIR} {TIMEFRAME}, 2024)",
            n / engine_s,
            reference,
            "candles/s",
            ">= 200x",
        ),
        make_row(
            f"backtest kernel alone vs freqtrade ({PAIR} {TIMEFRAME}, 2024)",
            n / kernel_s,
            reference,
            "candles/s",
            "info",
        ),
    ]


def _check_same_trades(result, ft: ftoffline.FreqtradeBacktest) -> None:
    ours = result.trades.sort_values("open_date")
    theirs = ft.trades.sort_values("open_date")
    same = len(ours) == len(theirs) and np.allclose(
        ours["profit_ratio"].to_numpy(), theirs["profit_ratio"].to_numpy(), rtol=0, atol=1e-6
    )
    if not same:
        raise RuntimeError(f"engine and freqtrade disagree: {len(ours)} vs {len(theirs)} trades.")


def _engine_call(candles: pd.DataFrame, enter: np.ndarray, exit_: np.ndarray, settings):
    """The public ``backtest()`` call on fixed inputs."""

    def run():
        return backtest(candles, enter, exit_, settings=settings)

    return run


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
    rules = kernel_rules(settings, 60)
    roi = roi_table(settings)

    def run():
        kernel.simulate(market, rules, roi)

    return run
