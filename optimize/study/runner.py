"""Optuna study: storage, sampler/pruner, the objective function, workers and resumption.

A study lives in an Optuna RDB storage (default ``sqlite:///studies.db``; any SQLAlchemy URL such
as ``postgresql+psycopg2://user@host/db`` for many machines). Workers are independent processes
that call :func:`run_worker` on the same storage; each builds the trial-independent data once and
asks the shared study for trials until the study holds ``n_trials`` finished (complete or pruned)
trials. Heartbeats mark a dead worker's trial FAILED after ``grace_period`` seconds and enqueue a
retry (``RetryHeartbeatStaleTrialCallback``): every worker does it when it starts, whatever the
target, and while it waits for the last running trials, so nothing stays RUNNING and nothing is
lost. An interrupted worker (SIGINT, SIGTERM: :class:`base.errors.Interrupted`) queues a retry of
its trial the same way. Inputs are
checked (:func:`prepare_study_data`) before a study is created or joined.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from base.errors import InputError, Interrupted, OutputError, StudyError
from optimize._version import __version__
from optimize.config import RunConfig, StudyConfig
from optimize.evaluation.inputs import StudyData
from optimize.evaluation.trial import evaluate
from optimize.search.space import SearchSpace
from optimize.study.fingerprint import fingerprint_differences, study_fingerprint
from optimize.study.records import HoldoutTouched, StudyRecord, TrialRecord, write_trial
from optimize.study.sampling import FirstTrialSeeded
from optimize.study.storage import (
    FINISHED,
    StorageWatch,
    finished_trials,
    make_storage,
    missing_sqlite_file,
    recover_stale_trials,
    redact,
    retry_trial,
)
from optimize.walkforward import WalkForwardPlan

logger = logging.getLogger(__name__)


def make_sampler(study: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    if study.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if study.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if study.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=study.n_startup_trials)
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=study.n_startup_trials, multivariate=True, constant_liar=True
    )


def make_pruner(study: StudyConfig) -> optuna.pruners.BasePruner:
    if study.pruner == "none":
        return optuna.pruners.NopPruner()
    if study.pruner == "wilcoxon":
        return optuna.pruners.WilcoxonPruner(
            p_threshold=0.1, n_startup_steps=max(1, study.pruner_warmup_folds)
        )
    if study.pruner == "percentile":
        return optuna.pruners.PercentilePruner(
            25.0, n_startup_trials=study.n_startup_trials, n_warmup_steps=study.pruner_warmup_folds
        )
    return optuna.pruners.MedianPruner(
        n_startup_trials=study.n_startup_trials, n_warmup_steps=study.pruner_warmup_folds
    )


def open_study(
    storage: str | RDBStorage, study_name: str, config: RunConfig, space: SearchSpace, *, seed: int
) -> optuna.Study:
    """Create the study or load it (resume); refuse to resume with a different config or space.

    Keys in :data:`~optimize.study.fingerprint.RESUMABLE_KEYS` may differ from the stored config.
    A study that holds no trial yet takes the new config and space. The sampler is seeded with
    ``seed`` and the number of the first trial this process runs
    (:class:`~optimize.study.sampling.FirstTrialSeeded`): workers that start together draw
    different parameters, and a rerun does not repeat the start-up draws of the first.

    Raises:
        StudyError: the stored study was made with another run config or search space (the
            message names every differing key with both values).
        StorageError: see :func:`make_storage`.
    """
    objective = config.study.resolved_objective
    if isinstance(storage, str):
        storage = make_storage(storage, config.study)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=list(objective.directions),
        sampler=FirstTrialSeeded(lambda s: make_sampler(config.study, s), seed),
        pruner=make_pruner(config.study),
        load_if_exists=True,
    )
    fingerprint = study_fingerprint(config, space)
    stored = StudyRecord.stored(study)
    n_stored = len(study.get_trials(deepcopy=False))
    differences = [] if stored is None else fingerprint_differences(stored.fingerprint, fingerprint)
    if stored is None or (differences and n_stored == 0):
        if stored is not None:
            logger.info(
                "study %s holds no trial: it takes the new config and space (%s)",
                study_name,
                "; ".join(differences),
            )
        record = StudyRecord(fingerprint, __version__, config.source, space.source, objective.name)
        for key, value in record.to_user_attrs().items():
            study.set_user_attr(key, value)
    elif differences:
        parts = [k for k in ("config", "space") if any(d.startswith(k + " ") for d in differences)]
        raise StudyError(
            f"study {study_name!r} was created with a different {' and '.join(parts)} (stored from "
            f"{stored.config_source} / {stored.space_source}): "
            f"{'; '.join(differences)}; resume it with the same files or choose another "
            "--study-name."
        )
    return study


class StudyInputError(InputError):
    """The data, the folds or the search space cannot make a study; the message names file and
    key."""


def check_space_purge(config: RunConfig, space: SearchSpace) -> None:
    """Refuse a space that can draw ``window_size + label_horizon`` above
    ``walkforward.purge_candles``.

    The check runs on the space's largest values before any trial (a trial drawing them would
    otherwise fail the study mid-way).

    Raises:
        StudyInputError: naming both files, both keys and the purge needed.
    """
    from lstm.params import LSTMParams

    window = _largest(space, ("lstm", "window_size"), LSTMParams().window_size)
    horizon = _largest(space, ("target", "label_horizon"), 0)
    purge = config.walkforward.purge_candles
    if window + horizon > purge:
        raise StudyInputError(
            f"{space.source}: lstm.window_size (up to {window}) + target.label_horizon (up to "
            f"{horizon}) = {window + horizon} exceeds walkforward.purge_candles={purge} of "
            f"{config.source}; expected purge_candles >= {window + horizon} (raise it) or a "
            "narrower space (look-ahead risk)."
        )


def _largest(space: SearchSpace, key: tuple[str, str], default: int) -> int:
    """The largest value ``space`` can draw for ``key`` (``default`` when it does not set it)."""
    corners = space.corners(key)
    return int(max(corners)) if corners else default


def check_fold_sizes(config: RunConfig, space: SearchSpace, plan: WalkForwardPlan) -> None:
    """Refuse folds whose training windows are too short to train any model.

    A pair and fold with fewer than ``training.min_train_samples`` usable training rows is
    skipped (scored flat), so a fold of fewer candles would make every trial score 0 with no
    trade, silently; and a ``window_size`` that leaves fewer training windows than that minimum
    in a fold would fail every trial that draws it.

    Raises:
        StudyInputError: naming the fold size, the minimum and what to change.
    """
    from lstm.params import LSTMParams
    from strategy.timeframes import timeframe_to_timedelta

    rows = min(fold.train.stop - fold.train.start for fold in plan.folds)
    minimum = config.training.min_train_samples
    train_days = config.walkforward.train_days
    per_day = pd.Timedelta(days=1) / timeframe_to_timedelta(config.data.timeframe)
    fold = (
        f"a walk-forward fold trains on {rows} {config.data.timeframe} candles "
        f"(walkforward.train_days={train_days:g})"
    )
    if rows < minimum:
        raise StudyInputError(
            f"{config.source}: {fold}, fewer than training.min_train_samples={minimum}: every "
            "fold would be skipped and every trial would score 0 with no trade; expected "
            f"walkforward.train_days >= {math.ceil(minimum / per_day)} (or a lower "
            "training.min_train_samples)."
        )
    window = _largest(space, ("lstm", "window_size"), LSTMParams().window_size)
    windows = rows - window + 1
    if windows < minimum:
        raise StudyInputError(
            f"{space.source}: lstm.window_size (up to {window}) leaves {max(windows, 0)} training "
            f"windows: {fold} of {config.source}, and training.min_train_samples={minimum}; "
            f"expected window_size <= {rows - minimum + 1} (a narrower space) or "
            f"walkforward.train_days >= {math.ceil((minimum + window - 1) / per_day)}."
        )


def check_space_trading_mode(config: RunConfig, space: SearchSpace) -> None:
    """Refuse a space whose direction or leverage the run config's trading mode cannot trade
    (shorts and leverage need futures), checked on the space's choices before any trial.

    Raises:
        StudyInputError: naming both files, the key, the value and ``backtest.trading_mode``.
    """
    base = config.backtest
    for key in (("signal", "direction"), ("backtest", "leverage")):
        for value in space.corners(key):
            try:
                if key[0] == "signal" and value != "long" and not base.futures:
                    raise ValueError(
                        f"signal.direction={value!r} shorts, which needs "
                        "backtest.trading_mode='futures' (freqtrade shorts only futures)"
                    )
                if key[0] == "backtest":
                    dataclasses.replace(base, leverage=value)
            except ValueError as exc:
                raise StudyInputError(
                    f"{space.source}: {key[0]}.{key[1]}: value {value!r} cannot be traded with "
                    f"backtest.trading_mode={base.trading_mode!r} of {config.source}: "
                    f"{str(exc).rstrip('.')}."
                ) from None


def prepare_study_data(config: RunConfig, space: SearchSpace) -> StudyData:
    """Everything a study needs, checked before any study is created or joined.

    The space against the purge and the trading mode, the data folder, every pair's candles over
    the span (present, valid, informative, covering ``data.start .. data.end``), the same for
    every correlated pair of the run config and the space (``features.include_corr_pairlist``),
    the walk-forward folds and their size against the minimum training samples and the space's
    largest window, and the markets file (every pair has a market; in futures mode also leverage
    tiers, funding rates and mark candles).

    Raises:
        StudyInputError: the first problem, in one message naming the file and the key.
    """
    from optimize.data import CandleValidationError, candle_path, check_informative, to_utc
    from strategy.timeframes import timeframe_to_timedelta

    check_space_purge(config, space)
    check_space_trading_mode(config, space)
    data = config.data
    if not data.path.is_dir():
        what = "is a file, not a folder" if data.path.exists() else "does not exist"
        raise StudyInputError(
            f"{config.source}: data.datadir={data.datadir!r} ({data.path}) {what}; "
            "expected a folder with <exchange>/<PAIR>-<timeframe>.feather (freqtrade "
            "download-data writes it)."
        )
    try:
        loaded = StudyData.load(config, corr_pairs=space.corr_pairs())
        last = loaded.dates[-1]
        if data.end is not None and to_utc(data.end) > last + timeframe_to_timedelta(
            data.timeframe
        ):
            raise ValueError(
                f"data.end={data.end!r} is after the last candle common to the pairs ({last}); "
                "expected an end inside the data (or null for all of it): the span would silently "
                "end earlier."
            )
        candles = {p: d.candles for p, d in loaded.pairs.items()}
        candles.update({p: c.candles for p, c in loaded.corr_pairs.items()})
        for pair, frame in candles.items():
            check_informative(
                frame,
                source=str(
                    candle_path(data.path, pair, data.timeframe, data.exchange, config.candle_type)
                ),
                span=f"from {loaded.dates[0]} to {last}",
            )
    except CandleValidationError as exc:
        raise StudyInputError(str(exc)) from None
    except (ValueError, FileNotFoundError) as exc:
        raise StudyInputError(f"{config.source}: {exc}") from None
    check_fold_sizes(config, space, loaded.plan)
    return loaded


def checked_study(
    config: RunConfig, space: SearchSpace, storage: str, study_name: str, *, seed: int
) -> tuple[optuna.Study, StudyData]:
    """The inputs checked (:func:`prepare_study_data`), then the study created or resumed
    (:func:`open_study`): bad input never creates or fingerprints a study. A server is reached
    before the data are checked (an unreachable one is named first); a new SQLite file is only
    created after.

    Returns:
        The study and its inputs.
    """
    early = None if missing_sqlite_file(storage) else make_storage(storage, config.study)
    data = prepare_study_data(config, space)
    rdb = early or make_storage(storage, config.study)
    return open_study(rdb, study_name, config, space, seed=seed), data


def _done(study: optuna.Study, target: int) -> bool:
    """The study holds ``target`` finished trials and no queued (WAITING) one."""
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.WAITING))
    return sum(t.state != TrialState.WAITING for t in trials) >= target and not any(
        t.state == TrialState.WAITING for t in trials
    )


class _StopWhenDone:
    """Optuna callback: stop this worker once :func:`_done`; raise when the study file vanished
    (:class:`~optimize.study.storage.StorageWatch`)."""

    def __init__(self, target: int, watch: StorageWatch) -> None:
        self.target = target
        self.watch = watch

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.watch.check()
        if _done(study, self.target):
            study.stop()


class _QuietInterrupt(logging.Filter):
    """Drop Optuna's two "Trial N failed" records of an interrupted trial and the traceback (an
    interrupt is no error; the worker says it stopped)."""

    def __init__(self) -> None:
        super().__init__()
        self._interrupted = False

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, Interrupted | KeyboardInterrupt):
            self._interrupted = True
            return False
        if self._interrupted and "failed with value" in record.getMessage():
            self._interrupted = False
            return False
        return True


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
        objective = self.data.config.study.resolved_objective
        self.n_started += 1
        params = self.space.sample(trial)
        host = socket.gethostname()
        sampler_seed = getattr(trial.study.sampler, "seed", None)
        for key, value in TrialRecord.start_attrs(
            params.to_dict(), os.getpid(), host, sampler_seed
        ).items():
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
        write_trial(
            trial,
            TrialRecord(
                params=params.to_dict(),
                folds=[fold.to_dict() for fold in outcome.folds],
                oos_metrics=outcome.oos_metrics,
                baselines=outcome.baselines,
                daily_returns=outcome.daily_returns,
                daily_equity=outcome.daily_equity,
                duration_s=time.perf_counter() - started,
                worker_pid=os.getpid(),
                worker_host=host,
                sampler_seed=sampler_seed,
                trades=outcome.trades,
            ),
        )
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

    First the inputs are checked (:func:`prepare_study_data`) and stale trials of dead workers
    are failed and queued for retry, whatever the target; queued retries run even when the target
    is reached, and the worker stays until no trial of the study is RUNNING.

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

    Raises:
        StudyInputError: the data, folds or space cannot make a study (nothing is created).
        StorageError: the storage cannot be opened.
        Interrupted, KeyboardInterrupt: the running trial is FAILED and queued for retry.
    """
    if log_file is not None:
        attach_log_file(log_file, worker_index)
    seed = config.study.seed + worker_index
    target = config.study.n_trials if n_trials is None else n_trials
    timeout = config.study.timeout if timeout is None else timeout
    study, data = checked_study(config, space, storage, study_name, seed=seed)
    watch = StorageWatch(storage)
    recovered = recover_stale_trials(study)
    if recovered:
        logger.warning(
            "study %s: trials %s of dead workers marked FAILED and queued for retry",
            study_name,
            recovered,
        )
    if _done(study, target) and not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        logger.info(
            "study %s already has %d finished trials (target %d)",
            study_name,
            finished_trials(study),
            target,
        )
        return 0
    touched = HoldoutTouched.of(study)
    if touched:
        logger.warning(
            "study %s: the holdout was already evaluated (trials %s, first at %s); trials added "
            "now are selected by people who have seen it — the holdout is no longer untouched "
            "evidence",
            study_name,
            list(touched.trials),
            touched.first_at,
        )
    runner = TrialRunner(data=data, space=space)
    logger.info(
        "worker %d (pid %d) joins study %s on %s",
        worker_index,
        os.getpid(),
        study_name,
        redact(storage),
    )
    failed_before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    deadline = (
        None if timeout is None else time.monotonic() + timeout
    )  # counted from the first trial, as Optuna does
    quiet = _QuietInterrupt()
    optuna_logger = logging.getLogger("optuna.study._optimize")
    optuna_logger.addFilter(quiet)
    try:
        _optimize_until_done(
            study, runner, target, deadline, config.study.heartbeat_interval, show_progress, watch
        )
        watch.check()
    except (KeyboardInterrupt, Interrupted):
        _retry_interrupted(study, failed_before, config.study.max_retry)
        raise
    finally:
        optuna_logger.removeFilter(quiet)
    return runner.n_started


def _optimize_until_done(
    study: optuna.Study,
    runner: TrialRunner,
    target: int,
    deadline: float | None,
    poll_s: float,
    show_progress: bool,
    watch: StorageWatch,
) -> None:
    """Run trials until :func:`_done`, then stay until no trial runs anywhere (or the deadline).

    While others' trials run, stale ones (their worker died) are failed every ``poll_s`` seconds
    and their queued retries run here, so a study never ends with a trial left RUNNING.
    """
    waiting_logged = False
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        if not _done(study, target):
            study.optimize(
                runner,
                n_trials=None,
                timeout=remaining,
                callbacks=[_StopWhenDone(target, watch)],
                catch=(),
                gc_after_trial=True,
                show_progress_bar=show_progress,
            )
            continue
        running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        if not running:
            return
        if not waiting_logged:
            logger.info(
                "target reached; waiting for running trials %s (a dead worker's trial is failed "
                "and retried after grace_period)",
                running,
            )
            waiting_logged = True
        time.sleep(poll_s if remaining is None else min(poll_s, remaining))
        watch.check()
        recovered = recover_stale_trials(study)
        if recovered:
            logger.warning(
                "trials %s of dead workers marked FAILED and queued for retry", recovered
            )


def _retry_interrupted(study: optuna.Study, failed_before: set[int], max_retry: int) -> None:
    """Queue a retry of the trial(s) this worker was running when it was interrupted."""
    pid, host = os.getpid(), socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if (
            trial.number not in failed_before
            and TrialRecord.worker_of(trial) == pid
            and TrialRecord.host_of(trial) in (host, None)
            and retry_trial(study, trial, max_retry)
        ):
            logger.info("interrupted trial %d queued for retry with its parameters", trial.number)


def attach_log_file(path: Path, worker_index: int) -> None:
    """Append this worker's log (INFO and above, Optuna's included) to ``path``.

    Raises:
        OutputError: the file (or its folder) cannot be created or written; names the path.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="a")
    except OSError as exc:
        raise OutputError(
            f"cannot write the log file {path}: {exc.strerror or exc}; expected a writable file "
            "(pass --log-file or fix the folder's permissions)."
        ) from None
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s worker{worker_index} pid%(process)d %(levelname)s %(name)s: %(message)s"
        )
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    optuna.logging.enable_propagation()
    optuna.logging.disable_default_handler()
