"""What drives freqtrade (what freqtrade itself imports lives in :mod:`strategy.freqtrade`).

* :mod:`~optimize.freqtrade.export` — a trial as an export folder (config, strategy parameter
  file, study trades, README): :func:`build_export` builds it, :meth:`ExportBundle.write` writes it;
* :mod:`~optimize.freqtrade.trial_config` — the freqtrade config (FreqAI section included) and
  the strategy parameter file of a trial;
* :mod:`~optimize.freqtrade.timerange` — the study's spans in freqtrade's terms (timeranges,
  warm-up, startup candles);
* :mod:`~optimize.freqtrade.run_setup` — an export made ready for an in-process freqtrade run;
* :mod:`~optimize.freqtrade.verify` — freqtrade's backtest of an export, trade for trade against the
  study's;
* :mod:`~optimize.freqtrade.lookahead` — freqtrade's lookahead analysis of an export;
* :mod:`~optimize.freqtrade.markets` — ``python -m optimize markets``: freqtrade's exchange class
  fetches the markets of any pair (reading and writing markets files is :mod:`optimize.markets`);
* :mod:`~optimize.freqtrade.offline` — freqtrade's ``Backtesting`` in this process, offline
  (static markets, local data; spot or futures with freqtrade's shipped leverage tiers).
"""

from base.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "export_trial": "optimize.freqtrade.export",
        "ExportResult": "optimize.freqtrade.export",
        "ExportBundle": "optimize.freqtrade.export",
        "build_export": "optimize.freqtrade.export",
        "build_freqtrade_config": "optimize.freqtrade.trial_config",
        "span_timerange": "optimize.freqtrade.timerange",
        "verify_export": "optimize.freqtrade.verify",
        "VerifyResult": "optimize.freqtrade.verify",
        "lookahead_analysis": "optimize.freqtrade.lookahead",
        "LookaheadSummary": "optimize.freqtrade.lookahead",
        "run_freqtrade_backtest": "optimize.freqtrade.offline",
        "freqtrade_config": "optimize.freqtrade.offline",
        "fetch_markets": "optimize.freqtrade.markets",
    },
)
