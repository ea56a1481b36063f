"""The backtest engine: freqtrade's backtest rules on precomputed signals, compiled with numba.

* :mod:`~optimize.backtest.engine` — :func:`backtest` validates candles and signals, runs the
  kernel and returns a :class:`BacktestResult` (trades, equity, metrics);
* :mod:`~optimize.backtest._kernel` — the pure numeric trade loop (arrays in, arrays out), in
  freqtrade's order of entry, exit checks, close and force-exit;
* :mod:`~optimize.backtest._records` — the kernel's record layouts (candles, rules, ROI table,
  trades, exit reasons);
* :mod:`~optimize.backtest._precision` — freqtrade's tick rounding and price-decimal counting;
* :mod:`~optimize.backtest.settings` — :class:`BacktestSettings`, the rules both engines read;
* :mod:`~optimize.backtest.futures` — :class:`FuturesPair` (a perpetual's funding rates, mark
  candles and :class:`PerpetualMarket`), what a futures backtest takes per pair;
* :mod:`~optimize.backtest.metrics` — freqtrade's summary metrics and the buy-and-hold baseline.
"""

from base.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "backtest": "optimize.backtest.engine",
        "BacktestResult": "optimize.backtest.engine",
        "BacktestSettings": "optimize.backtest.settings",
        "FuturesPair": "optimize.backtest.futures",
        "PerpetualMarket": "optimize.backtest.futures",
        "LeverageTier": "optimize.backtest.futures",
        "load_futures_pair": "optimize.backtest.futures",
        "summarize": "optimize.backtest.metrics",
        "buy_and_hold": "optimize.backtest.metrics",
        "daily_returns": "optimize.backtest.metrics",
    },
)
