"""One parameter set scored by the walk-forward backtest, apart from any Optuna study.

* :mod:`~optimize.evaluation.inputs` — the trial-independent inputs of a study (:class:`StudyData`:
  candles, target basis, features, folds, markets), built once per process;
* :mod:`~optimize.evaluation.walk` — the one walk over windows (:class:`FoldWalk`): every pair's
  ensemble fitted window by window and its signals placed, the span scored once;
* :mod:`~optimize.evaluation.trial` — a trial's walk over the folds (:func:`evaluate`), with the
  value the pruner sees after each fold;
* :mod:`~optimize.evaluation.holdout` — a trial's walk over the holdout's windows
  (:func:`score_holdout`);
* :mod:`~optimize.evaluation.scoring` — a span's signals backtested and scored next to the
  baselines, with its daily equity and trade records;
* :mod:`~optimize.evaluation.records` — what a walk records: each window, a trial's folds, the
  holdout (typed).
"""

from base.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "StudyData": "optimize.evaluation.inputs",
        "FoldWalk": "optimize.evaluation.walk",
        "fit_fold": "optimize.evaluation.walk",
        "fold_seeds": "optimize.evaluation.walk",
        "TrialOutcome": "optimize.evaluation.trial",
        "evaluate": "optimize.evaluation.trial",
        "score_holdout": "optimize.evaluation.holdout",
        "holdout_warmup_start": "optimize.evaluation.holdout",
        "SpanScore": "optimize.evaluation.scoring",
        "score_span": "optimize.evaluation.scoring",
        "WindowRecord": "optimize.evaluation.records",
        "FoldRecord": "optimize.evaluation.records",
        "HoldoutRecord": "optimize.evaluation.records",
    },
)
