"""The robustness step: re-evaluate the best complete trials on fresh seed sets.

``python -m optimize robustness --study-name NAME [--top N] [--seeds M]`` (and ``run`` at its end)
takes the ``N`` best complete trials by their recorded value, evaluates each again with the same
parameters on seed sets ``1..M`` (:func:`optimize.study.evaluate.evaluate` with ``seed_set``), and
stores every value as soon as it is known (:mod:`optimize.study.seednoise`). A rerun only computes
what is missing, so an interrupted step resumes and a finished one costs nothing. With ``workers >
1`` the evaluations run in that many processes (each loads the study's data once); given an
``executor`` (e.g. the Dask cluster's, :meth:`optimize.study.cluster.Cluster.executor`) they run
there instead, each worker process loading the data once.
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
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from base.errors import StudyError
from lstm.checks import check_int
from optimize._version import __version__
from optimize.config import parse_config
from optimize.search.objectives import get_objective
from optimize.search.space import TrialParams
from optimize.study.evaluate import evaluate
from optimize.study.inputs import StudyData
from optimize.study.pool import evaluation_pool
from optimize.study.records import TrialRecord, study_config
from optimize.study.runner import die_with_parent
from optimize.study.seednoise import (
    SeedNoise,
    SeedValue,
    attr_key,
    direction_sign,
    read_noise,
    read_values,
)

logger = logging.getLogger(__name__)

Job = tuple[int, dict[str, Any], int]
"""(trial number, resolved params, seed set)."""


@dataclass(frozen=True)
class RobustnessPlan:
    """What one run of the step does, once its defaults are resolved (for progress displays).

    Attributes:
        top: trials re-evaluated (the best complete ones by recorded value).
        seed_sets: fresh seed sets per trial.
        evaluations: (trial, seed set) pairs still without a stored value, to run now.
    """

    top: int
    seed_sets: int
    evaluations: int


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


def missing_jobs(study: optuna.Study, top: int, seed_sets: int) -> list[Job]:
    """What the step still has to evaluate: (trial, params, set) without a stored value."""
    stored = {(v.trial, v.seed_set) for v in read_values(study)}
    return [
        (t.number, TrialRecord.of(t).params, m)
        for t in top_trials(study, top)
        for m in range(1, seed_sets + 1)
        if (t.number, m) not in stored
    ]


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


def evaluate_shipped(
    job: Job, config_dict: dict[str, Any], source: str
) -> tuple[int, int, float, float]:
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


def _evaluate_job(job: Job, data: StudyData | None = None) -> tuple[int, int, float, float]:
    number, params, seed_set = job
    data = data if data is not None else _WORKER_DATA["data"]
    started = time.perf_counter()
    objective = get_objective(data.config.study.objective)
    outcome = evaluate(data, TrialParams.from_dict(params), objective, seed_set=seed_set)
    return number, seed_set, float(outcome.values[0]), time.perf_counter() - started


def run_robustness(
    study: optuna.Study,
    *,
    top: int | None = None,
    seed_sets: int | None = None,
    workers: int = 1,
    on_plan: Callable[[RobustnessPlan], None] | None = None,
    on_value: Callable[[SeedValue], None] | None = None,
    executor: Executor | None = None,
) -> dict[int, SeedNoise]:
    """Evaluate the missing (trial, seed set) pairs and store them; return the study's noise.

    Args:
        study: a study made by this project's runner (its run config is read from it).
        top: trials to re-evaluate (default: the config's ``study.robustness_top``; 0: none).
        seed_sets: fresh seed sets per trial (default ``study.robustness_seed_sets``).
        workers: processes to evaluate in (1: this process); ignored with ``executor``.
        on_plan: called once with the resolved plan, before the first evaluation (progress
            display).
        on_value: called with each value once stored (progress display).
        executor: run each evaluation as :func:`evaluate_shipped` on it (a cluster's workers)
            instead of in local processes; values are stored here, in completion order.

    Returns:
        :func:`optimize.study.seednoise.read_noise` of the study after the step.

    Raises:
        ValueError: a multi-objective study, negative counts, or a study without a stored config.
    """
    config = study_config(study)
    top = config.study.robustness_top if top is None else top
    seed_sets = config.study.robustness_seed_sets if seed_sets is None else seed_sets
    check_int("top", top, 0)
    check_int("seed_sets", seed_sets, 0)
    check_int("workers", workers, 1)
    jobs = missing_jobs(study, top, seed_sets) if top and seed_sets else []
    if on_plan is not None:
        on_plan(RobustnessPlan(top, seed_sets, len(jobs)))
    logger.info(
        "robustness of study %s: top %d trials x %d seed sets, %d evaluations to run",
        study.study_name,
        top,
        seed_sets,
        len(jobs),
    )

    def store(result: tuple[int, int, float, float]) -> None:
        number, seed_set, value, duration = result
        record = SeedValue(
            number,
            seed_set,
            value,
            config.training.ensemble_size,
            duration,
            datetime.now(UTC).isoformat(timespec="seconds"),
            __version__,
        )
        study.set_user_attr(attr_key(number, seed_set), record.to_attr())
        logger.info("trial %d, seed set %d: %.4f (%.1f s)", number, seed_set, value, duration)
        if on_value is not None:
            on_value(record)

    if jobs and executor is not None:
        shipped = (config.to_dict(), config.source)
        for future in as_completed([executor.submit(evaluate_shipped, j, *shipped) for j in jobs]):
            store(future.result())
    elif jobs and workers == 1:
        data = StudyData.load(config)
        for job in jobs:
            store(_evaluate_job(job, data))
    elif jobs:
        with (
            _one_thread_per_process(),
            evaluation_pool(
                min(workers, len(jobs)),
                initializer=_init_worker,
                initargs=(config.to_dict(), config.source, os.getpid()),
            ) as pool,
        ):
            for future in as_completed([pool.submit(_evaluate_job, job) for job in jobs]):
                store(future.result())
    return read_noise(study)
