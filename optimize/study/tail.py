"""The race starts in the search's tail: its first evaluations run on the cores that workers which
have finished leave idle while the others run the search's last trials.

A search of ``workers`` processes ends with a tail: once every trial the study needs has started,
the workers that finish first wait while the others still run a trial each (on average half a
trial, at worst a whole one). :class:`TailStart` is polled by ``run`` while it watches its
workers: whenever the study runs fewer trials than ``workers`` and none is left to start, it starts
the evaluations the race will start first (:func:`optimize.study.robustness.next_jobs`: the race's
certain first rounds, longest trials first), one per idle core, and stores each value as the race
stores it. The race that follows (:func:`optimize.study.robustness.run_robustness`) takes over the
same evaluation processes and the evaluations still running. ``run`` uses it with two or more
local workers: on a Dask cluster each worker loop holds its Dask worker until the search ends, so
the race starts then, and a single worker leaves no core idle.

Nothing is guessed: it evaluates only candidates that stay in the race whatever the running
trials record (while ``k`` trials run, the best ``top - k`` complete trials by recorded value;
each running trial can push at most one candidate out), and a value is a function of the trial's
parameters and the seed set alone, so a value computed in the tail is the value the race would
compute. The race replays stored values whatever computed them: its candidates, rounds and winner
are those of a race started after the search.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import Future
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from base.errors import StorageError
from optimize.config import RunConfig
from optimize.study.robustness import Evaluator, Job, next_jobs, store_value
from optimize.study.storage import FINISHED

logger = logging.getLogger(__name__)


class TailStart(contextlib.AbstractContextManager):
    """Starts the race's first evaluations on idle cores while the search's last trials run.

    Use as a context manager around the search and the race; :meth:`poll` while the workers run,
    then hand :attr:`evaluator` and :attr:`pending` to the race. Leaving the block stores the
    evaluations that finished and kills those still running (an interrupted run).

    Args:
        study: the study being searched.
        config: the run config (its ``training.ensemble_size`` is stored with each value).
        top, budget, seed_sets: the race's settings.
        workers: the search's worker processes (= evaluation processes, at most ``top``).
        target: the study's trial target: nothing starts before every trial still to finish is
            running (a worker that died early leaves its core to the search's retries).
    """

    def __init__(
        self,
        study: optuna.Study,
        config: RunConfig,
        *,
        top: int,
        budget: int,
        seed_sets: int,
        workers: int,
        target: int,
    ) -> None:
        self.study, self.config, self.target = study, config, target
        self.top, self.budget, self.seed_sets, self.workers = top, budget, seed_sets, workers
        self.evaluator = Evaluator(config, max(1, min(workers, top)))
        self.pending: dict[tuple[int, int], Future] = {}
        self.stored = 0
        self.failed = False
        self._seen: tuple[int, int, int] | None = None
        self._jobs: list[Job] = []

    def __enter__(self) -> TailStart:
        self.evaluator.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        if exc[0] is None:
            self._collect()
        return self.evaluator.__exit__(*exc)

    def poll(self, trials: list[FrozenTrial] | None = None) -> None:
        """Store the evaluations that finished; start the race's next ones on the cores that
        the study's running trials leave idle (none while every worker runs a trial, or while
        the study still has trials to start).

        Args:
            trials: the study's trials as just read (e.g. by the progress bar); None: read now.
        """
        if self.failed or not self.top:
            return
        try:
            self._poll(self.study.get_trials(deepcopy=False) if trials is None else trials)
        except StorageError:
            raise
        except Exception as exc:  # never let the head start stop the search
            logger.warning("tail: no more early evaluations (%r); the race computes them", exc)
            self.failed = True

    def _poll(self, trials: list[FrozenTrial]) -> None:
        self._collect()
        states = [t.state for t in trials]
        running = states.count(TrialState.RUNNING)
        finished = sum(state in FINISHED for state in states)
        if TrialState.WAITING in states or finished + running < self.target:
            return  # trials still to start: a worker takes the core
        idle = self.workers - running - len(self.pending)
        if idle <= 0:
            return
        seen = (states.count(TrialState.COMPLETE), running, self.stored)
        if seen != self._seen:  # a trial ended or a value came in: the race may differ
            self._seen = seen
            sure = self.top - running  # no running trial can push these out of the race
            self._jobs = next_jobs(self.study, self.top, self.budget, self.seed_sets, sure=sure)
        for job in [j for j in self._jobs if (j[0], j[2]) not in self.pending][:idle]:
            logger.info("tail: trial %d, seed set %d started on an idle core", job[0], job[2])
            self.pending[(job[0], job[2])] = self.evaluator.submit(job)

    def _collect(self) -> None:
        """Store every finished evaluation; after a failure (an evaluation process died), stop
        starting any: the race starts its own evaluator and recomputes what is missing."""
        for key, future in list(self.pending.items()):
            if not future.done():
                continue
            del self.pending[key]
            try:
                result = future.result()
            except Exception as exc:  # the race reports it if it happens again
                logger.warning("tail: evaluation of trial %d, seed set %d failed: %r", *key, exc)
                self.failed = True
                continue
            store_value(self.study, self.config.training.ensemble_size, result)
            self.stored += 1
