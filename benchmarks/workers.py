"""Benchmark of trials/hour with 1 vs N worker processes on the tiny benchmark study.

:func:`bench_workers` runs the real command line (``python -m optimize run --workers N``) on the
study of :func:`benchmarks.study.bench_study_files` against a temporary SQLite file and
reads the trials' start/completion times back from the storage, so process start-up and data
loading are excluded: :func:`steady_trials_per_hour` counts work done while all N workers were
busy. :func:`run_cli_study` is shared with the GPU benchmarks (:mod:`benchmarks.gpu`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import optuna

from benchmarks import make_row
from benchmarks.study import bench_study_files

log = logging.getLogger(__name__)


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
