"""The real command line ``python -m optimize run --workers N`` on the tiny study
(configs/smoke.yaml, LSTM fixed) against a fresh temporary SQLite file, N = min(cores, 4) on CPU
(G3: 1, 2 and 4 sharing one GPU, with the GPU's utilisation from ``nvidia-smi``). Trials/hour are
computed from the trials' start/completion times in the storage over the window where all N
workers were busy (process start-up, data loading and the tail excluded; idle gaps between trials
counted). Each worker gets ``cores / N`` torch threads, as ``run`` assigns them; one more run of a
single worker with ``training.threads_per_worker: 1`` separates process scaling from torch's
thread scaling.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from benchmarks import Row, Skipped, row, study_files

log = logging.getLogger(__name__)


def steady_trials_per_hour(trials: Sequence[tuple[Any, float, float]]) -> float:
    """Trials/hour from ``(worker, start s, end s)`` per trial, over the window from the latest
    first start to the earliest last end across workers (partial trials count pro rata)."""
    by_worker: dict[Any, list[tuple[float, float]]] = {}
    for worker, start, end in trials:
        by_worker.setdefault(worker, []).append((start, end))
    t0 = max(min(s for s, _ in spans) for spans in by_worker.values())
    t1 = min(max(e for _, e in spans) for spans in by_worker.values())
    if not t1 > t0:
        raise ValueError(f"the workers were never all busy at once ({t0=}, {t1=}).")
    done = sum((min(e, t1) - max(s, t0)) / (e - s) for _, s, e in trials if e > t0 and s < t1)
    return 3600.0 * done / (t1 - t0)


def gpu_utilisation() -> float | None:
    """Current utilisation of GPU 0 in % from ``nvidia-smi``; None when unavailable."""
    query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
    query += ["-i", "0"]
    try:
        return float(subprocess.run(query, capture_output=True, text=True, timeout=5).stdout)
    except (subprocess.SubprocessError, ValueError, OSError):
        return None


def run_cli_study(
    folder: Path,
    workers: int,
    n_trials: int,
    *extra_args: str,
    timeout_s: float = 600,
    sample: Callable[[], float | None] | None = None,
) -> tuple[list[optuna.trial.FrozenTrial], list[float]]:
    """All trials of ``python -m optimize run`` on ``folder``'s bench files and a fresh SQLite
    file (SIGINT after ``timeout_s``), and ``sample()`` readings taken every 0.5 s."""
    url = f"sqlite:///{folder / 'study.db'}"
    cmd = [sys.executable, "-m", "optimize", "run", "--config", str(folder / "bench-config.yaml")]
    cmd += ["--space", str(folder / "bench-space.yaml"), "--storage", url, "--study-name", "bench"]
    cmd += ["--workers", str(workers), "--n-trials", str(n_trials), *extra_args]
    readings: list[float] = []
    stop = threading.Event()

    def read() -> None:
        while sample is not None and not stop.wait(0.5):
            if (value := sample()) is not None:
                readings.append(value)

    sampler = threading.Thread(target=read, daemon=True)
    with open(folder / "run.out", "w") as out:
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
        tail = (folder / "run.out").read_text()[-2000:]
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {rc}; output tail:\n{tail}")
    trials = optuna.load_study(study_name="bench", storage=url).get_trials(deepcopy=False)
    return trials, readings


def _rate(
    root: Path, n: int, trials_per_worker: int, overrides: dict, sample=None
) -> tuple[float, list[float]]:
    """Steady trials/hour of one CLI run with ``n`` workers, and its sampled readings."""
    folder = Path(tempfile.mkdtemp(dir=root))
    study_files(folder, overrides=overrides)
    trials, readings = run_cli_study(folder, n, n * trials_per_worker, sample=sample)
    pid, complete = "worker_pid", optuna.trial.TrialState.COMPLETE
    spans = [
        (t.user_attrs.get(pid), t.datetime_start.timestamp(), t.datetime_complete.timestamp())
        for t in trials
        if t.state == complete
    ]
    rate = steady_trials_per_hour(spans)
    log.info("%d worker(s): %.0f trials/h (%d trials)", n, rate, len(trials))
    return rate, readings


def bench_workers(*, cuda: bool = False, trials_per_worker: int | None = None) -> list[Row]:
    """Trials/hour with N workers vs 1 (goal on CPU: ratio >= 0.8 N), and 1 worker on one torch
    thread (CPU) or the mean GPU utilisation per N (``cuda``)."""
    cores = min(len(os.sched_getaffinity(0)), 4)
    if not cuda and cores < 2:
        raise Skipped("one usable core: no scaling to measure")
    counts = (1, 2, 4) if cuda else (1, cores)
    per_worker = trials_per_worker or (4 if cuda else 8)
    accel = {"training": {"accelerator": "cuda" if cuda else "cpu"}}
    sample = gpu_utilisation if cuda and shutil.which("nvidia-smi") else None
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        runs = {n: _rate(Path(tmp), n, per_worker, accel, sample) for n in counts}
        if not cuda:
            one = {"training": {"accelerator": "cpu", "threads_per_worker": 1}}
            one_thread, _ = _rate(Path(tmp), 1, per_worker, one)
    device = accel["training"]["accelerator"]
    size = f"tiny study (smoke, fixed LSTM), {per_worker} trials per worker, {device}"
    ref, util = runs[1]
    rows = []
    for n in counts[1:]:
        goal = {} if cuda else {"goal": f"ratio >= {0.8 * n:g}", "at_least": 0.8 * n}
        name = f"trials/hour, {n} vs 1 worker(s), python -m optimize run ({size})"
        rows.append(row(name, runs[n][0], ref, "trials/h", **goal))
    if not cuda:
        threads = os.cpu_count() or 1
        name = (
            f"trials/hour, 1 worker with 1 torch thread vs 1 worker(s) with {threads} "
            f"(run's default: cores / workers) ({size})"
        )
        rows.append(row(name, one_thread, ref, "trials/h"))
    for n in counts[1:] if util else ():
        if runs[n][1]:
            name = f"mean utilisation during the run, {n} vs 1 worker(s) ({size})"
            rows.append(row(name, sum(runs[n][1]) / len(runs[n][1]), sum(util) / len(util), "%"))
    return rows
