"""The robustness step: race the best complete trials on fresh seed sets.

``python -m optimize robustness --study-name NAME [--top N] [--budget B] [--seeds M]`` (and
``run`` at its end) takes the ``N`` best complete trials by their recorded value and races them
(:mod:`optimize.study.racing`): round ``r`` evaluates every candidate still in the race with its
parameters on fresh seed set ``r`` (:func:`optimize.evaluation.trial.evaluate` with ``seed_set``),
then a paired test drops the candidates shown worse than the leader. The race stops when one
candidate is left, when the next round would pass ``B`` evaluations, or after ``M`` rounds; the
winner is the best mean over fresh seed sets. Every value is stored as soon as it is known and the
race after every round (:mod:`optimize.study.seednoise`). A rerun replays the race from the stored
values and computes only what is missing, so an interrupted step resumes and a finished one costs
nothing. With ``workers > 1`` each round's evaluations run in that many processes, started once
for the whole race (each loads the study's data once); given an ``executor`` (e.g. the Dask
cluster's, :meth:`optimize.study.cluster.Cluster.executor`) they run there instead, each worker
process loading the data once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from base.checks import check_int
from base.errors import StudyError
from optimize._version import __version__
from optimize.config import parse_config
from optimize.evaluation.inputs import StudyData
from optimize.evaluation.trial import evaluate
from optimize.search.space import TrialParams
from optimize.study.pool import die_with_parent, evaluation_pool, kill
from optimize.study.racing import Race, run_race
from optimize.study.records import TrialRecord, study_config
from optimize.study.seednoise import (
    RaceRecord,
    SeedValue,
    attr_key,
    direction_sign,
    read_values,
)

logger = logging.getLogger(__name__)

Job = tuple[int, dict[str, Any], int]
"""(trial number, resolved params, seed set)."""
Result = tuple[int, int, float, float]
"""(trial number, seed set, value, seconds)."""


@dataclass(frozen=True)
class RobustnessPlan:
    """What one run of the step starts from, once its settings are resolved (progress displays).

    Attributes:
        candidates: the trials in the race (the best complete ones by recorded value).
        budget: the most evaluations the race may use.
        seed_sets: the most fresh seed sets (rounds) per candidate.
        evaluations: evaluations the race has already used (values stored earlier and replayed).
        rounds: rounds already run (replayed).
    """

    candidates: tuple[int, ...]
    budget: int
    seed_sets: int
    evaluations: int
    rounds: int

    @property
    def most_evaluations(self) -> int:
        """The most evaluations the race can use: its budget, or every candidate on every seed
        set when that is fewer."""
        return min(self.budget, len(self.candidates) * self.seed_sets)


def top_trials(study: optuna.Study, n: int) -> list[FrozenTrial]:
    """The ``n`` best complete trials by recorded (first) value; ties: lower number first."""
    if len(study.directions) != 1:
        raise StudyError(
            f"study {study.study_name!r} has {len(study.directions)} objectives; the robustness "
            "step ranks trials by one value, so it needs a single-objective study."
        )
    sign = direction_sign(study)
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and math.isfinite(t.values[0])
    ]
    return sorted(done, key=lambda t: (-sign * t.values[0], t.number))[:n]


_WORKER_DATA: dict[str, Any] = {}


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@contextlib.contextmanager
def _one_thread_per_process() -> Iterator[None]:
    """Spawned evaluation processes start with one BLAS/OpenMP thread each, as `run` gives its
    workers (several processes each with a thread per core would oversubscribe the cores)."""
    before = {k: os.environ.get(k) for k in _THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _init_worker(config_dict: dict[str, Any], source: str, parent: int) -> None:
    # An evaluation process never outlives `run` / `robustness` (the parent stores every value);
    # a parent that died while this process was still starting is caught by the pid check.
    die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    config = parse_config(config_dict, source)
    _WORKER_DATA["data"] = StudyData.load(config)


def evaluate_shipped(job: Job, config_dict: dict[str, Any], source: str) -> Result:
    """One evaluation in any process, the run config shipped with it (an executor's task).

    The study's data is loaded on the first call in a process and kept for later calls with the
    same config; returns ``(trial number, seed set, value, seconds)``.
    """
    key = (source, json.dumps(config_dict, sort_keys=True, default=str))
    if _WORKER_DATA.get("key") != key:
        _WORKER_DATA.pop("data", None)
        _WORKER_DATA["data"] = StudyData.load(parse_config(config_dict, source))
        _WORKER_DATA["key"] = key
    return _evaluate_job(job, _WORKER_DATA["data"])


def _evaluate_job(job: Job, data: StudyData | None = None) -> Result:
    number, params, seed_set = job
    data = data if data is not None else _WORKER_DATA["data"]
    started = time.perf_counter()
    objective = data.config.study.resolved_objective
    outcome = evaluate(data, TrialParams.from_dict(params), objective, seed_set=seed_set)
    return number, seed_set, float(outcome.values[0]), time.perf_counter() - started


def store_value(study: optuna.Study, ensemble_size: int, result: Result) -> SeedValue:
    """Write one evaluation's value as its seed-noise record."""
    number, seed_set, value, duration = result
    record = SeedValue(
        number,
        seed_set,
        value,
        ensemble_size,
        duration,
        datetime.now(UTC).isoformat(timespec="seconds"),
        __version__,
    )
    study.set_user_attr(attr_key(number, seed_set), record.to_attr())
    logger.info("trial %d, seed set %d: %.4f (%.1f s)", number, seed_set, value, duration)
    return record


class Evaluator(contextlib.AbstractContextManager):
    """Evaluates jobs on an ``executor`` (a cluster's: each job ships the run config, each of its
    processes loads the study's data once), in this process (``workers == 1``), or in a pool of
    ``workers`` spawned processes (:func:`optimize.study.pool.evaluation_pool`), started at the
    first job and kept until the evaluator is closed (each process loads the study's data once),
    so a race pays the start-up once, not once per round.

    Use as a context manager; :meth:`run` yields each job's :data:`Result` as it completes,
    :meth:`submit` starts one job without waiting. An exception that ends the block kills the
    pool's processes at once; so does a normal end with submitted jobs still running (nobody will
    read them).
    """

    def __init__(self, config: Any, workers: int = 1, executor: Executor | None = None) -> None:
        self.config, self.workers = config, check_int("workers", workers, 1)
        self.executor = executor
        self._stack = contextlib.ExitStack()
        self._data: StudyData | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._submitted: list[Future] = []

    def __exit__(self, *exc: Any) -> bool | None:
        unread = [f for f in self._submitted if not f.done()]
        if exc[0] is None and unread:
            logger.info("%d evaluation(s) nobody needs any more: stopped", len(unread))
            for future in unread:
                future.cancel()
            if self._pool is not None:
                kill(self._pool)
        return self._stack.__exit__(*exc)

    def submit(self, job: Job) -> Future:
        """Start ``job`` without waiting: on the executor, else in the pool (started now if it
        is not running yet, even with ``workers == 1``). The future's result is a
        :data:`Result`."""
        if self.executor is not None:
            shipped = (self.config.to_dict(), self.config.source)
            future = self.executor.submit(evaluate_shipped, job, *shipped)
        else:
            future = self._processes().submit(_evaluate_job, job)
        self._submitted = [f for f in self._submitted if not f.done()] + [future]
        return future

    def run(
        self, jobs: list[Job], pending: dict[tuple[int, int], Future] | None = None
    ) -> Iterator[Result]:
        """Each job's result, in completion order.

        Args:
            jobs: what to evaluate.
            pending: jobs already started (:meth:`submit`), by (trial number, seed set): a job
                found there is not started again; its future is taken out of ``pending`` and
                read here.
        """
        if not jobs:
            return
        pending = {} if pending is None else pending
        inline = self.executor is None and self.workers == 1 and self._pool is None
        if inline and not any((n, m) in pending for n, _, m in jobs):
            if self._data is None:
                self._data = StudyData.load(self.config)
            for job in jobs:
                yield _evaluate_job(job, self._data)
            return
        futures = [pending.pop((job[0], job[2]), None) or self.submit(job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()

    def _processes(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Spawned processes read the thread variables when they start, and a pool may start
            # one at any submit: the variables stay set until the evaluator is closed.
            self._stack.enter_context(_one_thread_per_process())
            self._pool = self._stack.enter_context(
                evaluation_pool(
                    self.workers,
                    initializer=_init_worker,
                    initargs=(self.config.to_dict(), self.config.source, os.getpid()),
                )
            )
        return self._pool


def _replay(
    study: optuna.Study, candidates: list[int], budget: int, seed_sets: int
) -> tuple[Race, dict[tuple[int, int], float]]:
    """The race as far as the stored values take it, and those values by (trial, seed set)."""
    stored = {(v.trial, v.seed_set): float(v.value) for v in read_values(study)}
    race = run_race(
        candidates,
        lambda t, b: stored.get((t, b)),
        budget=budget,
        max_blocks=seed_sets,
        maximize=direction_sign(study) > 0,
    )
    return race, stored


def _log_replay(study: optuna.Study, race: Race) -> None:
    previous = RaceRecord.stored(study)
    if previous is None:
        logger.info("race of study %s: new", study.study_name)
    elif previous.race().candidates == race.candidates:
        logger.info(
            "race of study %s: resumed at round %d of the stored race (%d rounds, %s); "
            "%d rounds replayed from stored values",
            study.study_name,
            len(race.rounds) + 1,
            len(previous.rounds),
            previous.stop or "unfinished",
            len(race.rounds),
        )
    else:
        logger.info(
            "race of study %s: candidates changed (stored %s, now %s): a new race, reusing the "
            "stored values of its seed sets",
            study.study_name,
            previous.candidates,
            list(race.candidates),
        )


def _round_jobs(
    race: Race,
    blocks: tuple[int, ...],
    stored: dict[tuple[int, int], float],
    records: dict[int, TrialRecord],
) -> list[Job]:
    """The survivors' missing values on ``blocks``, the candidates with the longest trials first
    (an evaluation costs about its trial), so the workers end a round together."""
    cost = {n: r.duration_s if math.isfinite(r.duration_s) else 0.0 for n, r in records.items()}
    todo = [(t, b) for b in blocks for t in race.survivors if (t, b) not in stored]
    todo.sort(key=lambda job: (-cost[job[0]], job[1], job[0]))
    return [(t, records[t].params, b) for t, b in todo]


def next_jobs(
    study: optuna.Study, top: int, budget: int, seed_sets: int, *, sure: int | None = None
) -> list[Job]:
    """The evaluations the race of the best ``top`` complete trials would start first, as things
    stand: the race replayed from the stored values, then its next certain rounds' missing values
    in :func:`run_robustness`'s order. Empty: no complete trial, no race, or nothing certain left.

    Args:
        sure: keep only the jobs of the best ``sure`` candidates, and none unless the study has
            ``top`` complete trials: while ``k`` trials still run, only the best ``top - k`` are
            sure to stay in the race whatever those trials record (and with fewer than ``top``
            candidates the race's first rounds may differ).
    """
    trials = top_trials(study, top) if top else []
    if sure is not None and (sure <= 0 or len(trials) < top):
        return []
    race, stored = _replay(study, [t.number for t in trials], budget, seed_sets)
    records = {t.number: TrialRecord.of(t) for t in trials}
    jobs = _round_jobs(race, race.certain_blocks, stored, records)
    keep = {t.number for t in trials[:sure]} if sure is not None else set(records)
    return [job for job in jobs if job[0] in keep]


def _write_race(study: optuna.Study, race: Race) -> None:
    record = RaceRecord.of(
        race, updated_at=datetime.now(UTC).isoformat(timespec="seconds"), version=__version__
    )
    previous = RaceRecord.stored(study)
    if previous is None or {**previous.to_attr(), "updated_at": ""} != {
        **record.to_attr(),
        "updated_at": "",
    }:
        record.write(study)


def run_robustness(
    study: optuna.Study,
    *,
    top: int | None = None,
    budget: int | None = None,
    seed_sets: int | None = None,
    workers: int = 1,
    on_plan: Callable[[RobustnessPlan], None] | None = None,
    on_value: Callable[[SeedValue], None] | None = None,
    on_round: Callable[[Race], None] | None = None,
    executor: Executor | None = None,
    evaluator: Evaluator | None = None,
    pending: dict[tuple[int, int], Future] | None = None,
) -> Race:
    """Race the best complete trials on fresh seed sets, store every value and the race.

    The race (:mod:`optimize.study.racing`) is replayed first from the values already stored, so
    a rerun resumes where the last one stopped and computes only what is missing; a finished race
    costs nothing. Each round's missing values are evaluated in parallel (``workers``
    processes; the candidates with the longest trials first, so the workers end a round together),
    each value stored as soon as it is known, the race record after every round.

    Args:
        study: a single-objective study made by this project's runner.
        top: candidates: the best this many complete trials by recorded value (default: the
            stored config's ``study.robustness_top``; 0: no race).
        budget: the most evaluations (default ``study.robustness_budget``).
        seed_sets: the most fresh seed sets (rounds) per candidate (default
            ``study.robustness_seed_sets``).
        workers: processes to evaluate in (1: this process); ignored with ``executor``.
        on_plan: called once with the resolved plan, before the first evaluation.
        on_value: called with each value computed and stored now.
        on_round: called with the race after each round run now.
        executor: run each evaluation as :func:`evaluate_shipped` on it (a cluster's workers)
            instead of in local processes; values are stored here, in completion order.
        evaluator: evaluate with this open :class:`Evaluator` (the caller's, kept open) instead
            of one of this call's (``workers`` and ``executor`` are then unused).
        pending: evaluations already running on ``evaluator`` (:meth:`Evaluator.submit`), by
            (trial number, seed set), e.g. started in the search's last trials
            (:mod:`optimize.study.tail`): the race reads those it needs instead of starting them
            again, and takes them out of the mapping.

    Returns:
        The race, as far as it got (:attr:`~optimize.study.racing.Race.winner` once it is over).

    Raises:
        ValueError: a multi-objective study, negative counts, or a study without a stored config.
    """
    config = study_config(study)
    settings = config.study
    top = settings.robustness_top if top is None else check_int("top", top, 0)
    budget = settings.robustness_budget if budget is None else check_int("budget", budget, 0)
    seed_sets = (
        settings.robustness_seed_sets if seed_sets is None else check_int("seed_sets", seed_sets, 0)
    )
    check_int("workers", workers, 1)
    trials = top_trials(study, top) if top else []
    race, stored = _replay(study, [t.number for t in trials], budget, seed_sets)
    _log_replay(study, race)
    if race.rounds or RaceRecord.stored(study) is not None:
        _write_race(study, race)
    plan = RobustnessPlan(race.candidates, budget, seed_sets, race.evaluations, len(race.rounds))
    if on_plan is not None:
        on_plan(plan)
    logger.info(
        "robustness of study %s: race of %d candidates %s, budget %d evaluations, at most %d "
        "seed sets each; %d evaluations replayed from stored values",
        study.study_name,
        len(race.candidates),
        list(race.candidates),
        budget,
        seed_sets,
        race.evaluations,
    )
    records = {t.number: TrialRecord.of(t) for t in trials}
    with contextlib.ExitStack() as stack:
        if evaluator is None:
            size = min(workers, max(1, len(trials)))
            evaluator = stack.enter_context(Evaluator(config, size, executor))
        while blocks := race.certain_blocks:
            # The first rounds (before any test can run) are certain: evaluated together.
            jobs = _round_jobs(race, blocks, stored, records)
            for result in evaluator.run(jobs, pending):
                record = store_value(study, config.training.ensemble_size, result)
                stored[(record.trial, record.seed_set)] = float(record.value)
                if on_value is not None:
                    on_value(record)
            for block in blocks:
                race = race.advance({t: stored[(t, block)] for t in race.survivors})
                _write_race(study, race)
                for e in race.rounds[-1].eliminated:
                    logger.info("round %d: trial %d eliminated: %s", block, e.trial, e.reason)
                if on_round is not None:
                    on_round(race)
    logger.info(
        "race of study %s over (%s) after %d rounds and %d evaluations: trial %s",
        study.study_name,
        race.stop,
        len(race.rounds),
        race.evaluations,
        race.winner,
    )
    return race
