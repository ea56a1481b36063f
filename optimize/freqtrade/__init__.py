"""What drives freqtrade (what freqtrade itself imports lives in :mod:`strategy.freqtrade`).

* :mod:`~optimize.freqtrade.export` — a trial as a freqtrade config and strategy parameter file;
* :mod:`~optimize.freqtrade.verify` — freqtrade's backtest of an export, trade for trade against the
  study's;
* :mod:`~optimize.freqtrade.offline` — freqtrade's ``Backtesting`` in this process, offline
  (static markets, local data).
"""

from optimize._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "export_trial": "optimize.freqtrade.export",
        "ExportResult": "optimize.freqtrade.export",
        "verify_export": "optimize.freqtrade.verify",
        "VerifyResult": "optimize.freqtrade.verify",
        "run_freqtrade_backtest": "optimize.freqtrade.offline",
        "freqtrade_config": "optimize.freqtrade.offline",
    },
)
