"""The holdout: one final, never-optimised score for one trial of a finished study.

The walk-forward plan keeps the last ``holdout_days`` of the span away from every fold
(:mod:`optimize.walkforward`). :func:`evaluate_holdout` retrains the chosen trial's models on the
train window that ends ``purge_candles`` before the holdout (``train_days`` long, exactly like a
fold's) and backtests the holdout once, with the study's own backtest settings, next to the same
two baselines the trials carry: buy-and-hold and "no model" (the trial's thresholds applied to T).
It reuses the trial code path of :mod:`optimize.evaluate` (:func:`~optimize.evaluate.fit_fold` and
:func:`~optimize.evaluate.score_span` on a :class:`~optimize.walkforward.Fold` built for the
holdout), so the numbers are comparable to the per-fold ones.

Rules:

* The result is stored in the study (user attr ``"holdout"``: ``{str(trial_number): record}``)
  and the study is marked as touched (user attr ``"holdout_touched"``: when, and for which trials).
  A second call for the same trial returns the stored record; nothing is retrained.
* The holdout is never used to select: nothing here changes a trial's value or user attrs, and
  the trial is chosen from the walk-forward results only (``trial_number=None``: the best trial).
  Every extra trial whose holdout is looked at weakens it as an untouched estimate; the study
  records which trials were evaluated so the report can say so.
* Multi-objective studies: ``trial_number=None`` picks, among the Pareto-optimal trials, the one
  with the best first objective (ties: the lowest trial number); pass an explicit trial number to
  evaluate another member of the front.
* Seeds: the rule of every model (:func:`optimize.evaluate.fold_seeds`, seed set 0): the study's
  seed, the pair, the last training candle and the member index, so a rerun anywhere reproduces
  the record (CPU).
* Two processes evaluating the same trial at the same moment both train; the last write wins
  (on CPU the records are identical).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from optimize import __version__
from optimize.data import timeframe_to_timedelta
from optimize.evaluate import StudyData, check_purge, daily_equity, fit_fold, score_span
from optimize.objectives import get_objective
from optimize.records import TrialRecord, study_config  # study_config: re-exported for callers
from optimize.seednoise import best_by_seed_mean
from optimize.space import TrialParams
from optimize.walkforward import Fold, WalkForwardPlan

logger = logging.getLogger(__name__)

HOLDOUT_ATTR = "holdout"
TOUCHED_ATTR = "holdout_touched"
RECORD_FORMAT = 1
"""Version of the stored record's layout (``record["format"]``)."""


def select_trial(study: optuna.Study, trial_number: int | None = None) -> FrozenTrial:
    """The trial to evaluate: ``trial_number``, or the best one when None.

    Single objective: the best trial by the mean over its fresh seed sets when the robustness
    step has run (:func:`optimize.seednoise.best_by_seed_mean`), else ``study.best_trial``.
    Multi-objective: the Pareto-optimal trial with the best first objective (ties: lowest number).
    An explicit ``trial_number`` always wins.

    Raises:
        ValueError: no such trial, a trial that is not COMPLETE or has no stored parameters, or
            a study without completed trials.
    """
    if trial_number is None:
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise ValueError(f"study {study.study_name!r} has no COMPLETE trial to evaluate yet.")
        if len(study.directions) == 1:
            trial = best_by_seed_mean(study) or study.best_trial
        else:
            sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
            trial = min(study.best_trials, key=lambda t: (-sign * t.values[0], t.number))
    else:
        if isinstance(trial_number, bool) or not isinstance(trial_number, int | np.integer):
            raise ValueError(f"trial_number must be an integer or None, but got {trial_number=!r}.")
        trials = study.get_trials(deepcopy=False)
        if not 0 <= trial_number < len(trials):
            raise ValueError(
                f"study {study.study_name!r} has trials 0..{len(trials) - 1}, but got {trial_number=}."
            )
        trial = trials[int(trial_number)]
        if trial.state != TrialState.COMPLETE:
            raise ValueError(
                f"trial {trial_number} of study {study.study_name!r} is {trial.state.name}; only "
                "COMPLETE trials have walk-forward results (to hold out or export)."
            )
    TrialRecord.of(trial, complete=False)  # raises, naming the trial, without stored parameters
    return trial


def holdout_fold(plan: WalkForwardPlan, dates: pd.DatetimeIndex) -> Fold:
    """A fold that trains like the walk-forward folds and tests on the holdout.

    Train window: ``train_days`` ending ``purge_candles`` candles before the holdout start
    (``[holdout.start - purge - train_days, holdout.start - purge)``); the purge is enforced on
    positions too, as in :func:`optimize.walkforward.make_folds`. Test window: the holdout.
    The fold's index is ``len(plan.folds)`` (the fold after the last one).

    Args:
        plan: the study's walk-forward plan (made from ``dates``).
        dates: the candle dates the plan was made from.

    Raises:
        ValueError: the plan has no holdout, or the train window holds no candles.
    """
    holdout = plan.holdout
    if holdout is None:
        raise ValueError(
            "the study has no holdout: walkforward.holdout_days must be > 0, but got "
            f"holdout_days={plan.settings.holdout_days!r}."
        )
    index = pd.DatetimeIndex(dates)
    purge = plan.settings.purge_candles
    train_end = holdout.start - timeframe_to_timedelta(plan.timeframe) * purge
    train_start = train_end - pd.Timedelta(days=plan.settings.train_days)
    lo = int(index.searchsorted(max(train_start, plan.span_start)))
    hi = min(int(index.searchsorted(train_end)), holdout.slice.start - purge)
    if hi <= lo or holdout.slice.stop <= holdout.slice.start:
        raise ValueError(
            f"the holdout fold has no candles in its {'train' if hi <= lo else 'test'} window "
            f"({train_start} .. {holdout.end})."
        )
    return Fold(
        len(plan.folds),
        slice(lo, hi),
        holdout.slice,
        train_start,
        train_end,
        holdout.start,
        holdout.end,
    )


def stored_holdout(study: optuna.Study, trial_number: int) -> dict[str, Any] | None:
    """The stored holdout record of a trial, or None when it was never evaluated."""
    return (study.user_attrs.get(HOLDOUT_ATTR) or {}).get(str(int(trial_number)))


def evaluate_holdout(study: optuna.Study, trial_number: int | None = None) -> dict[str, Any]:
    """Score one trial on the holdout, once; later calls return the stored record.

    Args:
        study: a study made by :func:`optimize.study.run_worker` (its run config is read from it).
        trial_number: the trial; None: the best trial (multi-objective: see :func:`select_trial`).

    Returns:
        The JSON-able record: ``trial``, ``objective``, ``values`` (the objective on the holdout),
        ``trial_values`` (the trial's walk-forward values), ``holdout`` and ``train`` windows,
        ``metrics`` (same keys as a fold's), ``baselines`` (``buy_and_hold``, ``no_model``),
        ``pairs`` (per-pair thresholds and training info), ``daily_equity`` (see
        :func:`optimize.evaluate.daily_equity`), ``daily_returns``, ``study_seed``, ``ensemble_size``, ``duration_s``,
        ``computed_at`` (ISO UTC), ``version`` (lstm-optuna) and ``format``.

    Raises:
        ValueError: see :func:`select_trial` and :func:`holdout_fold`; the purge gap is shorter
            than the trial's ``window_size + label_horizon``.
    """
    return evaluate_trial_holdout(study, select_trial(study, trial_number))


def evaluate_trial_holdout(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """:func:`evaluate_holdout` of a trial the caller has already chosen with :func:`select_trial`."""
    stored = stored_holdout(study, trial.number)
    if stored is not None:
        logger.info(
            "holdout of trial %d reused (computed %s)", trial.number, stored.get("computed_at")
        )
        return stored
    config = study_config(study)
    params = TrialParams.from_dict(TrialRecord.of(trial, complete=False).params)
    check_purge(config.walkforward.purge_candles, params,
                f"trial {trial.number}'s holdout fit would see the holdout")
    data = StudyData.load(config)
    fold = holdout_fold(data.plan, data.dates)
    started = time.perf_counter()
    logger.info(
        "holdout of trial %d: train %s..%s, test %s..%s",
        trial.number,
        fold.train_start,
        fold.train_end,
        fold.test_start,
        fold.test_end,
    )
    fits = fit_fold(data, params, fold)  # seed set 0: the seeds the trial itself trained with
    objective = get_objective(config.study.objective)
    span = score_span(data, objective, fold.test, fold.test_start, fold.test_end, fits)
    record = {
        "format": RECORD_FORMAT,
        "trial": trial.number,
        "objective": objective.name,
        "values": list(span.values),
        "trial_values": list(trial.values),
        "holdout": {
            "start": str(fold.test_start),
            "end": str(fold.test_end),
            "candles": fold.test.stop - fold.test.start,
        },
        "train": {
            "start": str(fold.train_start),
            "end": str(fold.train_end),
            "candles": fold.train.stop - fold.train.start,
        },
        "metrics": span.metrics,
        "baselines": span.baselines,
        "pairs": {pair: pf.info for pair, pf in fits.items()},
        "daily_equity": daily_equity(data, fold.test, span.model, span.no_model),
        "daily_returns": span.daily_returns,
        "study_seed": config.study.seed,
        "ensemble_size": config.training.ensemble_size,
        "duration_s": time.perf_counter() - started,
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
    }
    _store(study, trial.number, record)
    logger.info(
        "holdout of trial %d: profit %.4f, buy-and-hold %.4f, no-model %.4f",
        trial.number,
        record["metrics"].get("profit_total", float("nan")),
        record["baselines"]["buy_and_hold"]["profit_total"],
        record["baselines"]["no_model"].get("profit_total", float("nan")),
    )
    return record


def _store(study: optuna.Study, number: int, record: dict[str, Any]) -> None:
    """Merge the record into the study's attrs (re-read first: other processes may have written)."""
    attrs = study.user_attrs
    records = dict(attrs.get(HOLDOUT_ATTR) or {})
    records[str(number)] = record
    study.set_user_attr(HOLDOUT_ATTR, records)
    touched = dict(attrs.get(TOUCHED_ATTR) or {"first_at": record["computed_at"], "trials": []})
    touched["trials"] = sorted(set(touched.get("trials", [])) | {number})
    touched["last_at"] = record["computed_at"]
    study.set_user_attr(TOUCHED_ATTR, touched)
