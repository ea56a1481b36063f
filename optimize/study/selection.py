"""Which trial report, holdout, export and verify use when the user names none.

Single objective: the winner of the robustness step's race (the best mean over fresh seed sets)
when it has run, else Optuna's best trial; multi-objective: the Pareto-optimal trial with the
best first objective. An explicit trial number always wins.
"""

from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from base.errors import InputError, StudyError
from optimize.study.records import TrialRecord
from optimize.study.seednoise import best_by_seed_mean, direction_sign


def select_trial(study: optuna.Study, trial_number: int | None = None) -> FrozenTrial:
    """The trial to evaluate: ``trial_number``, or the best one when None.

    Single objective: the robustness step's race winner, the best trial by the mean over its
    fresh seed sets, when the step has run (:func:`optimize.study.seednoise.best_by_seed_mean`),
    else ``study.best_trial``.
    Multi-objective: the Pareto-optimal trial with the best first objective (ties: lowest number).
    An explicit ``trial_number`` always wins.

    Raises:
        StudyError: no such trial, a trial that is not COMPLETE or has no stored parameters, or
            a study without completed trials.
    """
    if trial_number is None:
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise StudyError(f"study {study.study_name!r} has no COMPLETE trial to evaluate yet.")
        if len(study.directions) == 1:
            trial = best_by_seed_mean(study) or study.best_trial
        else:
            sign = direction_sign(study)
            trial = min(study.best_trials, key=lambda t: (-sign * t.values[0], t.number))
    else:
        if isinstance(trial_number, bool) or not isinstance(trial_number, int | np.integer):
            raise InputError(f"trial_number must be an integer or None, but got {trial_number=!r}.")
        trials = study.get_trials(deepcopy=False)
        if not 0 <= trial_number < len(trials):
            raise StudyError(
                f"study {study.study_name!r} has trials 0..{len(trials) - 1}, but got "
                f"{trial_number=}."
            )
        trial = trials[int(trial_number)]
        if trial.state != TrialState.COMPLETE:
            raise StudyError(
                f"trial {trial_number} of study {study.study_name!r} is {trial.state.name}; only "
                "COMPLETE trials have walk-forward results (to hold out or export)."
            )
    TrialRecord.of(trial, complete=False)  # raises, naming the trial, without stored parameters
    return trial
