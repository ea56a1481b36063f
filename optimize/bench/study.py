"""Benchmarks of whole trials: per-trial overhead outside training, and 1 vs N worker processes.

Both run a tiny real study: ``configs/smoke.yaml`` (2 pairs, 3 walk-forward folds of 30 training
days on 1h candles) with the pruner off, and ``search_spaces/smoke.yaml`` with the LSTM's window,
dropout and learning rate fixed (:func:`bench_study_files`), so that every trial does the same
amount of training and throughput figures compare like with like. Weights and thresholds are still
sampled by the study's sampler.

* :func:`bench_trial_overhead` runs trials in this process through the study's own objective
  (:class:`optimize.study.TrialRunner` on an SQLite storage with heartbeats, as a worker does) and
  times, with ``perf_counter``, the whole trial cycle (sampling, evaluation, storage writes) and the
  calls of ``lstm.train.fit_predict`` inside it (``optimize.evaluate.fit_predict`` is wrapped by a
  timer for the duration of the benchmark: a measurement, the calls still train the real models).
* :func:`bench_workers` runs the real command line (``python -m optimize run --workers N``) against
  a temporary SQLite file and reads the trials' start/completion times back from the storage, so
  process start-up and data loading are excluded: :func:`steady_trials_per_hour` counts work done
  while all N workers were busy.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import lightning as L
import optuna
import yaml

import optimize.evaluate as evaluate_module
import optimize.study as study_module
from optimize.bench import make_row
from optimize.config import load_config, parse_config
from optimize.data import REPO_ROOT
from optimize.evaluate import StudyData
from optimize.space import load_space, parse_space
from optimize.study import TrialRunner, open_study

log = logging.getLogger(__name__)

SMOKE_CONFIG = REPO_ROOT / "configs" / "smoke.yaml"
SMOKE_SPACE = REPO_ROOT / "search_spaces" / "smoke.yaml"
FIXED_LSTM = {"window_size": 4, "dropout_percent": 0.1, "learning_rate": 3.0e-3}
DEFAULT_SIZE_LSTM = {**FIXED_LSTM, "num_lstm_layers": 2, "hidden_dim": 32, "window_size": 12,
                     "epochs": 6, "early_stopping_patience": 2}
"""A model the size of a typical trial of search_spaces/default.yaml (its middle values)."""
DEFAULT_SIZE_CONFIG = {
    "data": {"pairs": ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "start": "2025-01-01", "end": "2025-07-15"},
    "backtest": {"max_open_trades": 3},
    "features": {"include_timeframes": ["1h", "2h", "4h"], "indicator_periods_candles": [10, 20]},
    "walkforward": {"train_days": 90, "test_days": 30, "purge_candles": 30, "holdout_days": 15},
}
"""configs/default.yaml's pairs, fold shape and features (2 folds instead of 9)."""


def bench_study_files(
    folder: Path,
    *,
    accelerator: str = "cpu",
    overrides: dict[str, dict[str, Any]] | None = None,
    lstm: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write the benchmark's run config and search space into ``folder``.

    The config is ``configs/smoke.yaml`` with ``study.pruner: none``, the feature cache inside
    ``folder`` and ``training.accelerator`` set; ``overrides`` updates sections key by key. The
    space is ``search_spaces/smoke.yaml`` with :data:`FIXED_LSTM` (or ``lstm``) as constants.

    Returns:
        ``(config_path, space_path)``; both are validated by the project's own parsers.
    """
    raw = yaml.safe_load(SMOKE_CONFIG.read_text())
    raw["study"] = {**raw.get("study", {}), "pruner": "none"}
    raw["training"] = {
        **raw.get("training", {}),
        "accelerator": accelerator,
        "cache_dir": str(folder / "features-cache"),
    }
    for section, values in (overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **values}
    space = yaml.safe_load(SMOKE_SPACE.read_text())
    space["lstm"] = {**space["lstm"], **(FIXED_LSTM if lstm is None else lstm)}
    config_path, space_path = folder / "bench-config.yaml", folder / "bench-space.yaml"
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    space_path.write_text(yaml.safe_dump(space, sort_keys=False))
    parse_config(copy.deepcopy(raw), str(config_path))
    parse_space(copy.deepcopy(space), str(space_path))
    return config_path, space_path


Interval = tuple[float, float]


@contextlib.contextmanager
def timed_attribute(owner: Any, name: str) -> Iterator[list[Interval]]:
    """Wrap ``owner.name`` (a function or method) with a timer while the context is open.

    Yields:
        A list that receives ``(start, end)`` (``perf_counter`` seconds) of every completed call.
    """
    original = getattr(owner, name)
    spans: list[Interval] = []

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spans.append((t0, time.perf_counter()))

    setattr(owner, name, timed)
    try:
        yield spans
    finally:
        setattr(owner, name, original)


@contextlib.contextmanager
def gc_timer() -> Iterator[list[Interval]]:
    """Time every garbage collection (``gc.callbacks``) while the context is open.

    Yields:
        A list that receives ``(start, end)`` (``perf_counter`` seconds) of each collection.
    """
    spans: list[Interval] = []
    started: list[float] = []

    def callback(phase: str, _info: dict) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            spans.append((started.pop(), time.perf_counter()))

    gc.callbacks.append(callback)
    try:
        yield spans
    finally:
        gc.callbacks.remove(callback)


def seconds_within(
    spans: Sequence[Interval], start: float, end: float, *, outside: Sequence[Interval] = ()
) -> float:
    """Total length of the ``spans`` that begin in ``[start, end)``, skipping those that lie
    inside one of the ``outside`` intervals (e.g. collections during an ``evaluate`` call)."""
    return sum(
        b - a
        for a, b in spans
        if start <= a < end and not any(lo <= a and b <= hi for lo, hi in outside)
    )


def bench_trial_overhead(
    *, n_trials: int = 6, warmup: int = 1, seed: int = 0, lstm: dict[str, Any] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None, label: str = "smoke space",
    goal: str = "ratio < 0.05",
) -> list[dict]:
    """Share of a trial's time spent outside ``fit_predict``, on the tiny benchmark study.

    Args:
        n_trials: timed trials (after ``warmup`` untimed ones that load the backtest kernel and
            Lightning's lazy imports, which a worker pays once).
        warmup: untimed trials first.
        seed: the study's sampler seed.
        lstm: the LSTM constants of the space (default :data:`FIXED_LSTM`, a tiny model;
            :data:`DEFAULT_SIZE_LSTM` for a default-study-sized one).
        overrides: run-config sections updated key by key (see :func:`bench_study_files`);
            :data:`DEFAULT_SIZE_CONFIG` gives the default study's fold shape.
        label: names the model size in the rows.
        goal: goal of the first row ("info" where the trial is too small to judge).

    Returns:
        Rows, all in seconds per trial against the whole trial cycle: time outside
        ``fit_predict`` (goal: ratio < 0.05); then, as info, its parts, which add up to it:
        inside ``evaluate`` but outside ``fit_predict`` (thresholds, backtests, baselines, and
        collections that happen there), garbage collection outside ``evaluate`` (Optuna's
        ``gc_after_trial``), and the rest (sampling, storage writes, user attributes); last, time
        inside ``fit_predict`` but outside Lightning's ``Trainer.fit`` vs the whole ``fit_predict``.

    Raises:
        ValueError: ``n_trials`` < 1 or ``warmup`` < 0.
    """
    if n_trials < 1 or warmup < 0:
        raise ValueError(
            "bench_trial_overhead needs n_trials >= 1 and warmup >= 0, but got "
            f"{n_trials=}, {warmup=}."
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    marks: list[float] = []
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-trial-") as tmp:
        config_path, space_path = bench_study_files(Path(tmp), lstm=lstm, overrides=overrides)
        config, space = load_config(config_path), load_space(space_path)
        fits = stack.enter_context(timed_attribute(evaluate_module, "fit_predict"))
        trainer_fits = stack.enter_context(timed_attribute(L.Trainer, "fit"))
        evaluations = stack.enter_context(timed_attribute(study_module, "evaluate"))
        study = open_study(f"sqlite:///{tmp}/trials.db", "overhead", config, space, seed=seed)
        data = StudyData.load(config)
        runner = TrialRunner(data=data, space=space, seed=seed)
        collections = stack.enter_context(gc_timer())
        marks.append(time.perf_counter())
        study.optimize(
            runner,
            n_trials=warmup + n_trials,
            catch=(),
            gc_after_trial=True,
            callbacks=[lambda _s, _t: marks.append(time.perf_counter())],
        )
    start, end = marks[warmup], marks[-1]
    per = {
        "cycle": end - start,
        "fit": seconds_within(fits, start, end),
        "trainer": seconds_within(trainer_fits, start, end),
        "evaluate": seconds_within(evaluations, start, end),
        "gc": seconds_within(collections, start, end, outside=evaluations),
    }
    per = {k: v / n_trials for k, v in per.items()}
    log.info("bench_trial_overhead: %s s per trial", {k: round(v, 3) for k, v in per.items()})
    size = f"{len(data.pairs)} pairs x {len(data.plan.folds)} folds, {label}, {n_trials} trials"
    cycle = per["cycle"]
    return [
        make_row(
            f"per-trial time outside fit_predict vs whole trial ({size})",
            cycle - per["fit"],
            cycle,
            "s/trial",
            goal,
        ),
        make_row(
            "  part: evaluate() outside fit_predict (thresholds, backtests, baselines) "
            "vs whole trial",
            per["evaluate"] - per["fit"],
            cycle,
            "s/trial",
            "info",
        ),
        make_row(
            "  part: garbage collection outside evaluate() (gc_after_trial) vs whole trial",
            per["gc"],
            cycle,
            "s/trial",
            "info",
        ),
        make_row(
            "  part: rest (Optuna sampling, storage writes, user attrs) vs whole trial",
            cycle - per["evaluate"] - per["gc"],
            cycle,
            "s/trial",
            "info",
        ),
        make_row(
            f"fit_predict time outside Lightning Trainer.fit vs whole fit_predict ({size})",
            per["fit"] - per["trainer"],
            per["fit"],
            "s/trial",
            "info",
        ),
    ]


def steady_trials_per_hour(trials: Sequence[tuple[Any, float, float]]) -> float:
    """Trials per hour while every worker was busy.

    The window runs from the latest first-trial start over the workers to the earliest
    last-trial end; each trial counts with the share of its duration inside the window, so idle
    gaps between trials (storage round trips, sampling) lower the rate and no worker's start-up
    or tail is counted.

    Args:
        trials: ``(worker, start, end)`` per finished trial; ``start``/``end`` in seconds.

    Returns:
        Trials per hour.

    Raises:
        ValueError: no trial, a trial with ``end <= start``, or an empty window (workers never
            ran at the same time: give each worker more trials).
    """
    if not trials:
        raise ValueError("steady_trials_per_hour needs finished trials, but got none.")
    by_worker: dict[Any, list[tuple[float, float]]] = {}
    for worker, start, end in trials:
        if not end > start:
            raise ValueError(
                f"a trial must end after it starts, but got {start=}, {end=} (worker {worker!r})."
            )
        by_worker.setdefault(worker, []).append((start, end))
    t0 = max(min(s for s, _ in spans) for spans in by_worker.values())
    t1 = min(max(e for _, e in spans) for spans in by_worker.values())
    if not t1 > t0:
        raise ValueError(
            f"the {len(by_worker)} workers were never all busy at once (window {t0=}, {t1=}); "
            "give each worker more trials."
        )
    done = sum((min(e, t1) - max(s, t0)) / (e - s) for _, s, e in trials if e > t0 and s < t1)
    return 3600.0 * done / (t1 - t0)


class _Sampler:
    """Samples a reading function every ``interval`` seconds in a thread (e.g. GPU utilisation)."""

    def __init__(self, read: Callable[[], float | None], interval: float = 0.5) -> None:
        self.read, self.interval, self.values = read, interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            value = self.read()
            if value is not None:
                self.values.append(value)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_cli_study(
    folder: Path,
    config: Path,
    space: Path,
    *,
    workers: int,
    n_trials: int,
    name: str,
    timeout_s: float = 600,
    extra_args: Sequence[str] = (),
    sample: Callable[[], float | None] | None = None,
) -> tuple[list[optuna.trial.FrozenTrial], list[float]]:
    """Run ``python -m optimize run`` in ``folder`` on a fresh SQLite file and return its trials.

    Args:
        folder: working directory (the CLI's ``logs/`` and the database go there).
        config, space: run config and search space files.
        workers: ``--workers``.
        n_trials: ``--n-trials`` (total over the workers).
        name: study name (also the database file name).
        timeout_s: the run is stopped (SIGINT, as Ctrl-C would) after this many seconds.
        extra_args: more CLI arguments (e.g. ``["--timeout", "300"]``).
        sample: optional reading (e.g. GPU utilisation in %) sampled every 0.5 s during the run.

    Returns:
        ``(trials, samples)``: all trials of the study (any state) and the sampled readings.

    Raises:
        RuntimeError: the command failed (its output's tail is in the message).
    """
    url = f"sqlite:///{folder / (name + '.db')}"
    cmd = [
        sys.executable,
        "-m",
        "optimize",
        "run",
        "--config",
        str(config),
        "--space",
        str(space),
        "--storage",
        url,
        "--study-name",
        name,
        "--workers",
        str(workers),
        "--n-trials",
        str(n_trials),
        *extra_args,
    ]
    out_path = folder / f"{name}.out"
    with open(out_path, "w") as out, _Sampler(sample or (lambda: None)) as sampler:
        proc = subprocess.Popen(
            cmd,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONWARNINGS="ignore"),
        )
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(
                signal.SIGINT
            )  # the CLI stops its workers, running trials become FAILED
            rc = proc.wait(timeout=120)
            log.info("%s stopped after %.0f s", name, timeout_s)
    if rc not in (0, -2, 130):
        tail = out_path.read_text()[-2000:]
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {rc}; output tail:\n{tail}")
    study = optuna.load_study(study_name=name, storage=url)
    return study.get_trials(deepcopy=False), sampler.values


def _intervals(trials: Sequence[optuna.trial.FrozenTrial]) -> list[tuple[Any, float, float]]:
    done = optuna.trial.TrialState.COMPLETE
    return [
        (
            t.user_attrs.get("worker_pid"),
            t.datetime_start.timestamp(),
            t.datetime_complete.timestamp(),
        )
        for t in trials
        if t.state == done
    ]


def _cli_rate(
    folder: Path, config: Path, space: Path, n: int, n_trials: int, name: str, sample
) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    trials, readings = run_cli_study(
        folder, config, space, workers=n, n_trials=n_trials, name=name, sample=sample
    )
    rate = steady_trials_per_hour(_intervals(trials))
    log.info(
        "bench_workers: %s, %d worker(s): %.0f trials/h (%d trials, run %.0f s)",
        name,
        n,
        rate,
        len(trials),
        time.perf_counter() - t0,
    )
    return rate, readings


def bench_workers(
    *,
    workers: Sequence[int] = (1, 2),
    trials_per_worker: int = 6,
    accelerator: str = "cpu",
    one_thread_reference: bool = False,
    sample: Callable[[], float | None] | None = None,
    sample_unit: str = "%",
) -> list[dict]:
    """Trials per hour of the real CLI with ``N`` worker processes vs one, on the tiny study.

    Args:
        workers: worker counts; the first is the reference (normally 1).
        trials_per_worker: each run is asked for ``N * trials_per_worker`` trials (>= 3, so the
            window where all workers are busy is not empty).
        accelerator: ``training.accelerator`` of the run config ("cpu", or "cuda" to share a GPU).
        one_thread_reference: also run one worker with ``training.threads_per_worker: 1``
            (``run`` gives a lone worker all cores' threads) and report it against the first
            count's run, as info: it separates process scaling from torch's thread scaling.
        sample: optional reading sampled during each run (e.g. GPU utilisation); its mean per run
            becomes an extra info row per worker count.
        sample_unit: unit of ``sample``.

    Returns:
        One row per worker count after the first: trials/hour with N workers vs the first count
        (goal: ratio >= 0.8 N / N0); then the one-thread row and the sampled readings, if asked.

    Raises:
        ValueError: fewer than two worker counts, a count < 1, or ``trials_per_worker`` < 3.
        RuntimeError: a run failed.
    """
    if len(workers) < 2 or min(workers) < 1 or trials_per_worker < 3:
        raise ValueError(
            "bench_workers needs >= 2 worker counts >= 1 and trials_per_worker >= 3, but got "
            f"{workers=}, {trials_per_worker=}."
        )
    rates: dict[int, float] = {}
    readings: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        folder = Path(tmp)
        config, space = bench_study_files(folder, accelerator=accelerator)
        for n in workers:
            rates[n], readings[n] = _cli_rate(
                folder, config, space, n, n * trials_per_worker, f"workers{n}", sample
            )
        if one_thread_reference:
            sub = folder / "one-thread"
            sub.mkdir()
            config1, space1 = bench_study_files(
                sub, accelerator=accelerator, overrides={"training": {"threads_per_worker": 1}}
            )
            one_thread, _ = _cli_rate(
                folder, config1, space1, 1, trials_per_worker, "one-thread", None
            )
    ref = workers[0]
    size = f"tiny study (smoke, fixed LSTM), {trials_per_worker} trials per worker, {accelerator}"
    rows = [
        make_row(
            f"trials/hour, {n} vs {ref} worker(s), python -m optimize run ({size})",
            rates[n],
            rates[ref],
            "trials/h",
            f"ratio >= {0.8 * n / ref:g} (0.8 x {n}/{ref})",
        )
        for n in workers[1:]
    ]
    if one_thread_reference:
        threads = max(1, (os.cpu_count() or 1) // ref)
        rows.append(
            make_row(
                f"trials/hour, 1 worker with 1 torch thread vs {ref} worker(s) with {threads} "
                f"(run's default: cores / workers) ({size})",
                one_thread,
                rates[ref],
                "trials/h",
                "info",
            )
        )
    if sample is not None:
        for n in workers[1:]:
            if readings[n] and readings[ref]:
                rows.append(
                    make_row(
                        f"mean utilisation during the run, {n} vs {ref} worker(s) ({size})",
                        sum(readings[n]) / len(readings[n]),
                        sum(readings[ref]) / len(readings[ref]),
                        sample_unit,
                        "info",
                    )
                )
    return rows
