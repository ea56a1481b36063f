"""lstm-optuna: joint Optuna search of an LSTM and the 'dynamic weighting and aggregate scoring'
strategy, scored by walk-forward backtests, exported to freqtrade.

The public API, one concept per sub-package (each name is imported when first read):

* :mod:`optimize.config`, :mod:`optimize.data`, :mod:`optimize.walkforward` — the run config, the
  candles and the walk-forward plan;
* :mod:`optimize.search` — the search space and the objectives;
* :mod:`optimize.backtest` — the freqtrade-exact backtest engine; :mod:`optimize.markets` — the
  exchange's rules of each pair (markets files);
* :mod:`optimize.evaluation` — one parameter set scored by the walk-forward backtest, and on the
  holdout;
* :mod:`optimize.study` — the Optuna side: storage, workers, records, robustness, the selected
  trial and its stored holdout;
* :mod:`optimize.analysis` — deflated Sharpe, PBO and the report;
* :mod:`optimize.freqtrade` — export to freqtrade and verification;
* :mod:`optimize.cli` — ``python -m optimize``.
"""

from base.lazy import lazy_exports
from optimize._version import __version__

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "RunConfig": "optimize.config",
        "load_config": "optimize.config",
        "ConfigError": "optimize.config",
        "load_candles": "optimize.data",
        "WalkForwardPlan": "optimize.walkforward",
        "make_folds": "optimize.walkforward",
        "SearchSpace": "optimize.search.space",
        "TrialParams": "optimize.search.space",
        "load_space": "optimize.search.space",
        "get_objective": "optimize.search.objectives",
        "BacktestResult": "optimize.backtest.engine",
        "BacktestSettings": "optimize.backtest.settings",
        "make_storage": "optimize.study.storage",
        "load_existing_study": "optimize.study.storage",
        "open_study": "optimize.study.runner",
        "run_worker": "optimize.study.runner",
        "read_markets": "optimize.markets",
        "MarketsError": "optimize.markets",
        "StudyData": "optimize.evaluation.inputs",
        "evaluate": "optimize.evaluation.trial",
        "score_holdout": "optimize.evaluation.holdout",
        "TrialRecord": "optimize.study.records",
        "StudyRecord": "optimize.study.records",
        "run_robustness": "optimize.study.robustness",
        "select_trial": "optimize.study.selection",
        "evaluate_holdout": "optimize.study.holdout",
        "deflated_sharpe_ratio": "optimize.analysis.stats",
        "probability_of_backtest_overfitting": "optimize.analysis.pbo",
        "write_report": "optimize.analysis.html",
        "export_trial": "optimize.freqtrade.export",
        "verify_export": "optimize.freqtrade.verify",
        "main": "optimize.cli",
    },
)
__all__ = [*__all__, "__version__"]
