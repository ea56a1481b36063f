"""A worker's sampler, seeded by a token no other worker has: the number of its first trial.

Workers that join a study at the same moment read the same state from the storage (no trial yet,
the same worker index), so a seed derived from what they read at start gives them the same draws.
Trial numbers, though, are handed out by the storage one at a time: the number of the first trial
a worker runs is unique among every worker that ever joined the study, in this run or any other.
:class:`FirstTrialSeeded` builds the worker's real sampler when that first trial starts (Optuna
calls ``before_trial`` before anything is sampled), seeded by :func:`worker_seed` of the worker's
seed and that number, and delegates everything to it.

Reproducible as before: the first worker of a new study (first trial 0) gets its seed itself, and
a single worker resuming a study whose trials end at ``n - 1`` (first trial ``n``) gets
``resume_seed(seed, n)``, so a single worker's draws are the same from run to run and a resumed
study does not repeat the draws of the first run. The seed is stored with each trial
(:attr:`optimize.study.records.TrialRecord.sampler_seed`). A trial's value does not depend on it:
the models' seeds come from :func:`lstm.seeds.model_seed` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from optimize.study.fingerprint import resume_seed


def worker_seed(seed: int, first_trial: int) -> int:
    """The sampler seed of a worker (seed ``seed``) whose first trial is number ``first_trial``:
    ``seed`` itself for trial 0, else :func:`~optimize.study.fingerprint.resume_seed`."""
    return seed if first_trial == 0 else resume_seed(seed, first_trial)


class FirstTrialSeeded(BaseSampler):
    """Delegates to ``make(worker_seed(seed, n))``, built when the worker's first trial ``n``
    starts.

    Args:
        make: builds the real sampler from a seed (e.g. TPE with the study's settings).
        seed: the worker's seed (the study's seed + the worker index).

    Attributes:
        seed: the real sampler's seed (None until the first trial starts).
    """

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self._make = make
        self._base_seed = seed
        self._sampler: BaseSampler | None = None
        self.seed: int | None = None

    def _inner(self, first_trial: int = 0) -> BaseSampler:
        if self._sampler is None:
            self.seed = worker_seed(self._base_seed, first_trial)
            self._sampler = self._make(self.seed)
        return self._sampler

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._inner(trial.number).before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner().infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        return self._inner().sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._inner().sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._inner().after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner().reseed_rng()


__all__ = ["FirstTrialSeeded", "worker_seed"]
