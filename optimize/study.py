"""Optuna study: storage, sampler/pruner, the objective function, workers and resumption.

A study lives in an Optuna RDB storage (default ``sqlite:///studies.db``; any SQLAlchemy URL such
as ``postgresql+psycopg2://user@host/db`` for many machines). Workers are independent processes
that call :func:`run_worker` on the same storage; each builds the trial-independent data once and
asks the shared study for trials until the study holds ``n_trials`` finished (complete or pruned)
trials. Heartbeats mark a dead worker's trial FAILED after ``grace_period`` seconds and enqueue a
retry (``RetryHeartbeatStaleTrialCallback``), so nothing stays RUNNING and nothing is lost.
"""

from __future__ import annotations

import gc
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState

from optimize import __version__
from optimize.config import RunConfig, StudyConfig
from optimize.evaluate import StudyData, evaluate
from optimize.objectives import get_objective
from optimize.records import StudyRecord, TrialRecord, write_trial
from optimize.space import SearchSpace

logger = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///studies.db"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SQLITE_LOCK_TIMEOUT_S = 60


def make_storage(url: str, study: StudyConfig) -> RDBStorage:
    """An RDB storage with heartbeats and retry of stale trials.

    SQLite gets a lock timeout (several local workers share the file; never put it on NFS);
    server databases get ``pool_pre_ping`` so dropped connections are replaced.
    """
    if url.startswith("sqlite"):
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna; we rely on them knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=study.heartbeat_interval,
            grace_period=study.grace_period,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=study.max_retry),
        )
    if url.startswith("sqlite"):
        _sqlite_wal(storage.engine)
    return storage


def _sqlite_wal(engine) -> None:
    """Write-ahead logging for a local SQLite study file.

    WAL lets readers (the progress bar, optuna-dashboard) work while a worker writes, and with
    ``synchronous=NORMAL`` a commit no longer waits for an fsync — a trial writes a dozen times.
    A killed worker loses nothing (its commits are in the WAL file); only a power loss or OS
    crash can roll back the last commits, and it never corrupts the file. Local disks only (as
    for SQLite in general): WAL needs shared memory between the processes. The ``-wal`` and
    ``-shm`` files beside the study file belong to it while workers run.
    """
    import sqlalchemy

    @sqlalchemy.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    engine.dispose()  # connections opened while Optuna created the tables get the pragmas too


def make_sampler(study: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    if study.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if study.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if study.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=study.n_startup_trials)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=study.n_startup_trials,
                                      multivariate=True, constant_liar=True)


def make_pruner(study: StudyConfig) -> optuna.pruners.BasePruner:
    if study.pruner == "none":
        return optuna.pruners.NopPruner()
    if study.pruner == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=max(1, study.pruner_warmup_folds))
    if study.pruner == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=study.n_startup_trials,
                                               n_warmup_steps=study.pruner_warmup_folds)
    return optuna.pruners.MedianPruner(n_startup_trials=study.n_startup_trials,
                                       n_warmup_steps=study.pruner_warmup_folds)


def study_fingerprint(config: RunConfig, space: SearchSpace) -> dict[str, Any]:
    """What a study is bound to: stored once, checked on every resume."""
    return {
        "config": config.to_dict(),
        "space": {".".join(k): {"type": d.type, "low": d.low, "high": d.high, "log": d.log,
                                "step": d.step, "choices": list(d.choices), "value": d.value}
                  for k, d in space.dists.items()},
    }


def open_study(
    storage: str | RDBStorage, study_name: str, config: RunConfig, space: SearchSpace, *, seed: int
) -> optuna.Study:
    """Create the study or load it (resume); refuse to resume with a different config or space.

    Raises:
        ValueError: the stored study was made with another run config or search space.
    """
    objective = get_objective(config.study.objective)
    if isinstance(storage, str):
        storage = make_storage(storage, config.study)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=list(objective.directions),
        sampler=make_sampler(config.study, seed),
        pruner=make_pruner(config.study),
        load_if_exists=True,
    )
    fingerprint = study_fingerprint(config, space)
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        record = StudyRecord(fingerprint, __version__, config.source, space.source, objective.name)
        for key, value in record.to_user_attrs().items():
            study.set_user_attr(key, value)
    elif _normalise(stored) != _normalise(fingerprint):
        diff = [k for k in ("config", "space") if _normalise(stored[k]) != _normalise(fingerprint[k])]
        raise ValueError(
            f"study {study_name!r} was created with a different {' and '.join(diff)} "
            f"(stored from {study.user_attrs.get('config_source')} / {study.user_attrs.get('space_source')}); "
            "resume it with the same files or choose another --study-name."
        )
    return study


def missing_sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL when it does not exist (opening it would create it)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        path = Path(url[len(prefix):].split("?", 1)[0])
        if not path.is_file():
            return path
    return None


def load_existing_study(url: str, name: str) -> optuna.Study:
    """Load a study that must exist: never creates a database file or a study.

    A SQLite file gets the workers' lock timeout (workers may be writing to it).

    Raises:
        ValueError: a SQLite URL whose file does not exist, or no study ``name`` in the storage
            (the message lists the names there); the URL is named without its password.
    """
    if (missing := missing_sqlite_file(url)) is not None:
        raise ValueError(f"no study storage at {missing}: the SQLite file of {redact(url)} does not exist; "
                         "pass --storage.")
    engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}} if url.startswith("sqlite") else {}
    storage = RDBStorage(url, engine_kwargs=engine_kwargs)
    names = optuna.get_all_study_names(storage=storage)
    if name not in names:
        raise ValueError(f"no study named {name!r} in storage {redact(url)}; it has {sorted(names)}.")
    return optuna.load_study(study_name=name, storage=storage)


def _normalise(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, sort_keys=True, default=str))


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


@dataclass
class TrialRunner:
    """The Optuna objective: sample params, evaluate, store everything in user attrs."""

    data: StudyData
    space: SearchSpace
    n_started: int = 0

    def __post_init__(self) -> None:
        # The study data and the imported modules live as long as the worker: move them out of
        # the collector's reach, so Optuna's gc after each trial does not rescan ~500k objects.
        gc.collect()
        gc.freeze()

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        objective = get_objective(self.data.config.study.objective)
        self.n_started += 1
        params = self.space.sample(trial)
        for key, value in TrialRecord.start_attrs(params.to_dict(), os.getpid()).items():
            trial.set_user_attr(key, value)
        multi = objective.n_objectives > 1

        def report(step: int, score: float) -> None:
            if multi:
                return
            trial.report(score, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after fold {step} (score {score:.4f})")

        started = time.perf_counter()
        outcome = evaluate(self.data, params, objective, report=report)
        write_trial(trial, TrialRecord(
            params=params.to_dict(), folds=outcome.folds, oos_metrics=outcome.oos_metrics,
            baselines=outcome.baselines, daily_returns=outcome.daily_returns,
            daily_equity=outcome.daily_equity, duration_s=time.perf_counter() - started,
            worker_pid=os.getpid(), trades=outcome.trades))
        return outcome.values[0] if not multi else outcome.values


def run_worker(
    config: RunConfig,
    space: SearchSpace,
    *,
    storage: str,
    study_name: str,
    n_trials: int | None = None,
    timeout: float | None = None,
    worker_index: int = 0,
    log_file: Path | None = None,
    show_progress: bool = False,
) -> int:
    """Join the study and run trials until it holds ``n_trials`` finished trials.

    Args:
        config, space: the run config and search space (must match the stored study).
        storage: storage URL.
        study_name: the study to create or join.
        n_trials: total finished trials the study should reach (default ``config.study.n_trials``).
        timeout: seconds after which this worker stops starting trials (default
            ``config.study.timeout``; None there too: no limit).
        worker_index: seeds differ per worker (``seed + worker_index``).
        log_file: append this worker's log there.
        show_progress: Optuna's own progress bar (single-process runs).

    Returns:
        Number of trials this worker ran.
    """
    if log_file is not None:
        attach_log_file(log_file, worker_index)
    seed = config.study.seed + worker_index
    target = config.study.n_trials if n_trials is None else n_trials
    timeout = config.study.timeout if timeout is None else timeout
    study = open_study(storage, study_name, config, space, seed=seed)
    if finished_trials(study) >= target:
        logger.info("study %s already has %d finished trials (target %d)", study_name, finished_trials(study), target)
        return 0
    touched = study.user_attrs.get("holdout_touched")
    if touched:
        logger.warning(
            "study %s: the holdout was already evaluated (trials %s, first at %s); trials added now "
            "are selected by people who have seen it — the holdout is no longer untouched evidence",
            study_name, touched.get("trials"), touched.get("first_at"))
    data = StudyData.load(config)
    runner = TrialRunner(data=data, space=space)
    logger.info("worker %d (pid %d) joins study %s on %s", worker_index, os.getpid(), study_name,
                redact(storage))
    study.optimize(
        runner,
        n_trials=None,
        timeout=timeout,
        callbacks=[MaxTrialsCallback(target, states=FINISHED)],
        catch=(),
        gc_after_trial=True,
        show_progress_bar=show_progress,
    )
    return runner.n_started


def attach_log_file(path: Path, worker_index: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s worker{worker_index} pid%(process)d %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    optuna.logging.enable_propagation()
    optuna.logging.disable_default_handler()


def redact(url: str) -> str:
    """Hide a password in a storage URL (for logs and messages)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url
