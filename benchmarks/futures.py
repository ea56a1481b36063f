"""One year (2024) of real BTC/USDT:USDT 1h perpetual candles, its 1h mark candles and funding
rates, with the same precomputed random long and short entry/exit signals and exit rules (3x
leverage, stoploss, ROI table, trailing stop; isolated margin, liquidation, funding). Reference:
freqtrade's own ``Backtesting.backtest`` in futures mode, in-process and offline
(``optimize.freqtrade.offline``: the embedded futures markets, freqtrade's shipped leverage tiers),
median of its runs; ours: ``optimize.backtest.engine.backtest()`` with the pair's ``FuturesPair``
(built once, as a study builds it once per pair; freqtrade likewise joins funding and mark candles
once, when it loads the data) and, as info, the bare kernel, median of repeated calls after a
warm-up; rounds alternate. The run stops if the two disagree on the trades. Figures in candles/s.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import Row
from benchmarks.backtest import alternate_rounds, engine_rows
from optimize import markets as markets_mod
from optimize.backtest import _kernel as kernel
from optimize.backtest import engine
from optimize.backtest.futures import load_futures_pair
from optimize.backtest.settings import BacktestSettings
from optimize.data import DEFAULT_DATADIR, load_candles
from optimize.freqtrade import offline as ftoffline

PAIR, TIMERANGE = "BTC/USDT:USDT", "20240101-20241231"
SETTINGS = BacktestSettings(
    trading_mode="futures",
    can_short=True,
    leverage=3,
    stoploss=-0.12,
    minimal_roi={"0": 0.15, "240": 0.06, "720": 0.0},
    trailing_stop=True,
    trailing_stop_positive=0.02,
    trailing_stop_positive_offset=0.06,
)
SIGNALS = (("enter_long", 0.04), ("exit_long", 0.03), ("enter_short", 0.04), ("exit_short", 0.03))


def bench_futures(*, repeats: int = 30, rounds: int = 3) -> list[Row]:
    """Candles/s of ``backtest()`` (futures) and the bare kernel vs freqtrade's futures
    backtesting; per round one freqtrade run, then ``repeats`` calls of each of ours."""
    raw = load_candles(PAIR, "1h", candle_type="futures", start="2024-01-01", end="2025-01-02")
    rng = np.random.default_rng(2024)
    raw_signals = {name: rng.random(len(raw)) < rate for name, rate in SIGNALS}
    futures = {PAIR: load_futures_pair(PAIR, markets_mod.perpetual_markets([PAIR])[PAIR])}
    with tempfile.TemporaryDirectory(prefix="bench-futures-") as tmp:
        signal_file = Path(tmp) / "signals.feather"
        signals = {name: {PAIR: values} for name, values in raw_signals.items()}
        ftoffline.save_signals(signal_file, {PAIR: raw}, signals)
        config = ftoffline.freqtrade_config(
            [PAIR], SETTINGS, **{ftoffline.SIGNAL_FILE_KEY: str(signal_file)}
        )
        run_ft = functools.partial(ftoffline.run_replay_backtest, config, datadir=DEFAULT_DATADIR)
        ft = run_ft(timerange=TIMERANGE)
        candles = ft.candles[PAIR]
        at = pd.Series(np.arange(len(raw)), index=raw["date"]).reindex(candles["date"]).to_numpy()
        ours_signals = {name: values[at] for name, values in raw_signals.items()}
        ours = functools.partial(
            engine.backtest,
            {PAIR: candles},
            {PAIR: ours_signals["enter_long"]},
            {PAIR: ours_signals["exit_long"]},
            enter_short={PAIR: ours_signals["enter_short"]},
            exit_short={PAIR: ours_signals["exit_short"]},
            settings=SETTINGS,
            futures=futures,
        )
        mine, theirs = ours().trades, ft.trades  # also the warm-up (loads the kernel)
        _same_trades(mine, theirs)
        bare = _bare_kernel(candles, ours_signals, futures)
        rate = alternate_rounds(ft, run_ft, ours, bare, len(candles), rounds, repeats, TIMERANGE)
    return engine_rows(rate, f"({PAIR} 1h, 2024, 3x, longs and shorts, funding)", "futures ")


def _same_trades(mine: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Stop the run unless both engines made the same trades (count, reasons, profits)."""
    a = mine.sort_values("open_date")
    b = theirs.sort_values("open_date")
    if (
        len(a) != len(b)
        or a["exit_reason"].astype(str).tolist() != b["exit_reason"].tolist()
        or not np.allclose(a["profit_abs"], b["profit_abs"], rtol=1e-9, atol=0)
        or not np.array_equal(a["funding_fees"].to_numpy(), b["funding_fees"].to_numpy())
    ):
        raise RuntimeError(f"engine and freqtrade disagree: {len(a)} vs {len(b)} trades")


def _bare_kernel(candles: pd.DataFrame, signals: dict[str, np.ndarray], futures):
    """The kernel call alone on the records ``backtest()`` builds once."""
    n = len(candles)
    grid = pd.DatetimeIndex(candles["date"])
    prices = np.stack([candles[c].to_numpy(np.float64) for c in ("open", "high", "low", "close")])
    settings = SETTINGS
    market = engine._market(
        grid,
        grid[1] - grid[0],
        {PAIR: (grid, prices)},
        {name: {PAIR: values} for name, values in signals.items()},
        settings,
        futures,
    )
    assert market.candles.shape == (n, 1)
    rules, roi = engine.kernel_rules(settings, 60), engine.roi_table(settings)
    return lambda: kernel.simulate(market, rules, roi)
