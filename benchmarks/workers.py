"""Trials/hour of the real command line with 1 vs N worker processes, on the tiny study.

:func:`bench_workers` runs ``python -m optimize run --workers N`` on the study of
:func:`benchmarks.study.bench_study_files` (configs/smoke.yaml, LSTM fixed) against a fresh
temporary SQLite file, N = min(cores, 4), and reads the trials' start/completion times back from
the storage: :func:`steady_trials_per_hour` counts the work done while all N workers were busy
(process start-up, data loading and the tail excluded; idle gaps between trials counted). Each
worker gets ``cores / N`` torch threads, as ``run`` assigns them; one more run of a single worker
with ``training.threads_per_worker: 1`` separates process scaling from torch's thread scaling.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from benchmarks import Row, row
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
    """Run ``python -m optimize run`` in ``folder`` on a fresh SQLite file; return its trials.

    Args:
        workers, n_trials, name: ``--workers``, ``--n-trials`` and ``--study-name`` (also the
            database file's name).
        timeout_s: the run is stopped with SIGINT (as Ctrl-C would) after this many seconds.
        extra_args: more CLI arguments (e.g. ``["--timeout", "300"]``).
        sample: optional reading (e.g. GPU utilisation in %) taken every 0.5 s during the run.

    Returns:
        ``(trials, readings)``: all trials of the study (any state) and the sampled readings.

    Raises:
        RuntimeError: the command failed (its output's tail is in the message).
    """
    url = f"sqlite:///{folder / (name + '.db')}"
    cmd = [sys.executable, "-m", "optimize", "run", "--config", str(config), "--space", str(space)]
    cmd += ["--storage", url, "--study-name", name, "--workers", str(workers)]
    cmd += ["--n-trials", str(n_trials), *extra_args]
    readings: list[float] = []
    stop = threading.Event()

    def read() -> None:
        while sample is not None and not stop.wait(0.5):
            if (value := sample()) is not None:
                readings.append(value)

    sampler = threading.Thread(target=read, daemon=True)
    out_path = folder / f"{name}.out"
    with open(out_path, "w") as out:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        proc = subprocess.Popen(cmd, cwd=folder, stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler.start()
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # the CLI stops its workers; running trials fail
            rc = proc.wait(timeout=120)
        stop.set()
        sampler.join()
    if rc not in (0, -2, 130):
        tail = out_path.read_text()[-2000:]
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {rc}; output tail:\n{tail}")
    study = optuna.load_study(study_name=name, storage=url)
    return study.get_trials(deepcopy=False), readings


def _rate(
    folder: Path,
    files: tuple[Path, Path],
    n: int,
    n_trials: int,
    name: str,
    sample: Callable[[], float | None] | None,
) -> tuple[float, list[float]]:
    """Steady trials/hour of one CLI run with ``n`` workers, and its sampled readings."""
    trials, readings = run_cli_study(
        folder, *files, workers=n, n_trials=n_trials, name=name, sample=sample
    )
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    spans = [
        (
            t.user_attrs.get("worker_pid"),
            t.datetime_start.timestamp(),
            t.datetime_complete.timestamp(),
        )
        for t in done
    ]
    rate = steady_trials_per_hour(spans)
    log.info("%s, %d worker(s): %.0f trials/h (%d trials)", name, n, rate, len(trials))
    return rate, readings


def bench_workers(
    *,
    workers: Sequence[int] = (1, 2),
    trials_per_worker: int = 6,
    accelerator: str = "cpu",
    one_thread_reference: bool = False,
    sample: Callable[[], float | None] | None = None,
) -> list[Row]:
    """Trials per hour of the CLI with ``N`` worker processes vs the first count (normally 1).

    Args:
        workers: worker counts; the first is the reference.
        trials_per_worker: each run is asked for ``N * trials_per_worker`` trials (>= 3, so the
            window where all workers are busy is not empty).
        accelerator: ``training.accelerator`` ("cpu", or "cuda" to share a GPU).
        one_thread_reference: also run one worker with ``training.threads_per_worker: 1`` (info).
        sample: a reading in % taken during each run (e.g. GPU utilisation); its mean per run
            becomes an info row per worker count, and the trials/hour rows are info too.

    Returns:
        One row per count after the first (goal: ratio >= 0.8 N / N0 on CPU), then the
        one-thread row and the sampled readings, if asked.

    Raises:
        ValueError: fewer than two counts, a count < 1, or ``trials_per_worker`` < 3.
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
        files = bench_study_files(folder, accelerator=accelerator)
        for n in workers:
            rates[n], readings[n] = _rate(
                folder, files, n, n * trials_per_worker, f"workers{n}", sample
            )
        if one_thread_reference:
            (folder / "one").mkdir()
            one = {"training": {"threads_per_worker": 1}}
            files = bench_study_files(folder / "one", accelerator=accelerator, overrides=one)
            one_thread, _ = _rate(folder, files, 1, trials_per_worker, "one-thread", None)
    ref = workers[0]
    size = f"tiny study (smoke, fixed LSTM), {trials_per_worker} trials per worker, {accelerator}"
    rows = []
    for n in workers[1:]:
        goal = {} if sample else {"goal": f"ratio >= {0.8 * n / ref:g}", "at_least": 0.8 * n / ref}
        name = f"trials/hour, {n} vs {ref} worker(s), python -m optimize run ({size})"
        rows.append(row(name, rates[n], rates[ref], "trials/h", **goal))
    if one_thread_reference:
        threads = max(1, (os.cpu_count() or 1) // ref)
        rows.append(
            row(
                f"trials/hour, 1 worker with 1 torch thread vs {ref} worker(s) with {threads} "
                f"(run's default: cores / workers) ({size})",
                one_thread,
                rates[ref],
                "trials/h",
            )
        )
    for n in workers[1:] if sample else ():
        if readings[n] and readings[ref]:
            rows.append(
                row(
                    f"mean utilisation during the run, {n} vs {ref} worker(s) ({size})",
                    sum(readings[n]) / len(readings[n]),
                    sum(readings[ref]) / len(readings[ref]),
                    "%",
                )
            )
    return rows
