"""A study's holdout: one trial scored on it once, the record stored in the study.

:func:`evaluate_holdout` picks the trial (:func:`~optimize.study.selection.select_trial`), returns
its stored record when there is one, else scores it
(:func:`optimize.evaluation.holdout.score_holdout`) and stores the record
(:func:`~optimize.study.records.store_holdout`).

Rules:

* Each record is stored under its own study user attr (``"holdout:<trial number>"``), written once
  by the process that computed it: two processes storing the holdouts of different trials at the
  same moment lose neither. Studies written before keep their records in one attr (``"holdout"``:
  ``{str(trial_number): record}``), which is still read. Which trials were looked at, and when, is
  read from the records (:class:`~optimize.study.records.HoldoutTouched`).
* A second call for the same trial returns the stored record; nothing is retrained (a record of
  an older format is recomputed and stored again).
* The holdout is never used to select: nothing here changes a trial's value or user attrs, and
  the trial is chosen from the walk-forward results only (``trial_number=None``: the best trial).
  Every extra trial whose holdout is looked at weakens it as an untouched estimate; the study
  records which trials were evaluated so the report can say so.
* Multi-objective studies: ``trial_number=None`` picks, among the Pareto-optimal trials, the one
  with the best first objective (ties: the lowest trial number); pass an explicit trial number to
  evaluate another member of the front.
* Two processes evaluating the same trial at the same moment both train; the last write wins (on
  CPU the records are identical).
"""

from __future__ import annotations

import logging

import optuna
from optuna.trial import FrozenTrial

from optimize.evaluation.holdout import score_holdout
from optimize.evaluation.records import HOLDOUT_FORMAT, HoldoutRecord
from optimize.search.space import TrialParams
from optimize.study.records import TrialRecord, store_holdout, stored_holdouts, study_config
from optimize.study.selection import select_trial

logger = logging.getLogger(__name__)

__all__ = ["evaluate_holdout", "evaluate_trial_holdout", "stored_holdout"]


def stored_holdout(study: optuna.Study, trial_number: int) -> HoldoutRecord | None:
    """The stored holdout record of a trial; None when it was never evaluated or its record has
    an older format (it is then recomputed by :func:`evaluate_trial_holdout`)."""
    raw = stored_holdouts(study).get(int(trial_number))
    if raw is None or raw.get("format") != HOLDOUT_FORMAT:
        return None
    return HoldoutRecord.from_dict(raw, f"holdout record of trial {int(trial_number)}")


def evaluate_holdout(study: optuna.Study, trial_number: int | None = None) -> HoldoutRecord:
    """Score one trial on the holdout, once; later calls return the stored record.

    Args:
        study: a study made by :func:`optimize.study.runner.run_worker` (its run config is read from
            it).
        trial_number: the trial; None: the best trial (multi-objective: see :func:`select_trial`).

    Returns:
        The trial's :class:`~optimize.evaluation.records.HoldoutRecord`.

    Raises:
        StudyError: see :func:`select_trial`.
        InputError: the purge gap is shorter than the trial's ``window_size + label_horizon``.
        DataError: the study has no holdout (see :func:`~optimize.walkforward.holdout_windows`).
    """
    return evaluate_trial_holdout(study, select_trial(study, trial_number))


def evaluate_trial_holdout(study: optuna.Study, trial: FrozenTrial) -> HoldoutRecord:
    """:func:`evaluate_holdout` of a trial the caller has already chosen with
    :func:`select_trial`."""
    raw = stored_holdouts(study).get(trial.number)
    stored = stored_holdout(study, trial.number)
    if stored is not None:
        logger.info("holdout of trial %d reused (computed %s)", trial.number, stored.computed_at)
        return stored
    if raw is not None:  # an older layout: one model for the whole holdout, no trades
        logger.warning(
            "holdout record of trial %d has format %s, this version writes %d (windows of the "
            "walk-forward schedule, trades); recomputing it",
            trial.number,
            raw.get("format"),
            HOLDOUT_FORMAT,
        )
    params = TrialParams.from_dict(TrialRecord.of(trial, complete=False).params)
    record = score_holdout(
        study_config(study), params, trial=trial.number, trial_values=list(trial.values)
    )
    store_holdout(study, record.trial, record.to_dict())
    return record
