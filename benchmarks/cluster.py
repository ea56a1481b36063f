"""The real command line ``python -m optimize run --cluster local --workers 2`` against ``run
--workers 2`` on the same tiny study (configs/smoke.yaml, LSTM fixed, pruner off, a fresh SQLite
file each), 30 trials per worker, in ``rounds`` rounds that alternate the two (``--workers`` first),
each side's figure the median over its rounds (on a 2-core machine single rounds of 8 trials per
worker varied by ±10 %, more than the goal's margin). Trials/hour of each are computed from the
trials' start/completion times in the storage over the window where both workers were busy, as in
the workers figure (the LocalCluster's start-up, data loading and the tail excluded), per worker as
recorded by each trial's host and pid. Scheduler overhead: the median, over 20 tasks submitted one
at a time to an idle LocalCluster of 2 single-thread workers (the one ``run --cluster local``
starts, through :func:`optimize.study.cluster.connect`), of the time from ``Client.submit`` to the
task's first instruction on its worker (both clocks are this machine's). A trial is not a task: each
worker loop is one task that runs many trials, so the overhead per trial is that per-task time
divided by the trials each loop ran; it is compared with the mean duration of a trial of the same
run. The loops' own submit-to-start times in the run (read from the log line each loop writes when
it starts) are shown too: they also include unpickling the run config on the worker.
"""

from __future__ import annotations

import logging
import re
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from benchmarks import Row, row, study_files
from benchmarks.workers import run_cli_study, steady_trials_per_hour

log = logging.getLogger(__name__)

WORKERS = 2
SUBMITS = 20
START_LINE = re.compile(r"starts on Dask worker \S+, (\d+) ms after its submission")


def submit_to_start_ms(client, n: int = SUBMITS) -> list[float]:
    """Milliseconds from ``client.submit`` to the task's start, ``n`` tasks one at a time."""
    client.submit(time.time, pure=False).result()  # the workers have run something
    out = []
    for _ in range(n):
        submitted = time.time()
        started = client.submit(time.time, pure=False).result()
        out.append(1000.0 * (started - submitted))
    return out


def _run(root: Path, per_worker: int, *extra: str) -> tuple[float, float, float, list[float]]:
    """Steady trials/hour, mean trial seconds, trials per loop and the loops' logged start
    latencies (ms) of one CLI run with :data:`WORKERS` workers."""
    folder = Path(tempfile.mkdtemp(dir=root))
    study_files(folder)
    trials, _ = run_cli_study(folder, WORKERS, WORKERS * per_worker, *extra)
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    spans = [
        (
            (t.user_attrs.get("worker_host"), t.user_attrs.get("worker_pid")),
            t.datetime_start.timestamp(),
            t.datetime_complete.timestamp(),
        )
        for t in done
    ]
    rate = steady_trials_per_hour(spans)
    mean_s = statistics.mean(e - s for _, s, e in spans)
    loops = {worker for worker, _, _ in spans}
    logged = [
        float(m.group(1))
        for path in (folder / "logs").glob("*.log")
        for m in START_LINE.finditer(path.read_text())
    ]
    log.info(
        "%s: %.0f trials/h (%d trials, %d loops)", extra or "processes", rate, len(done), len(loops)
    )
    return rate, mean_s, len(done) / len(loops), logged


def bench_cluster(*, trials_per_worker: int | None = None, rounds: int = 3) -> list[Row]:
    """Trials/hour of ``run --cluster local`` vs ``run --workers`` (goal: ratio >= 0.95; medians
    over ``rounds`` alternating rounds), and the scheduler's submit-to-start time per task and per
    trial against a trial's duration."""
    from optimize.study.cluster import connect

    per_worker = trials_per_worker or 30
    size = (
        f"tiny study (smoke, fixed LSTM), {WORKERS} workers, {per_worker} trials each, CPU, "
        f"median of {rounds} alternating rounds"
    )
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        rates: dict[str, list[float]] = {"processes": [], "cluster": []}
        trial_means, loops, logged = [], [], []
        for _ in range(rounds):
            rates["processes"].append(_run(root, per_worker)[0])
            rate, trial_s, per_loop, started = _run(root, per_worker, "--cluster", "local")
            rates["cluster"].append(rate)
            trial_means.append(trial_s)
            loops.append(per_loop)
            logged += started
        log.info("trials/h per round: %s", rates)
        processes, cluster = (statistics.median(rates[k]) for k in ("processes", "cluster"))
        trial_s, per_loop = statistics.median(trial_means), statistics.median(loops)
        with connect("local", workers=WORKERS, storage=f"sqlite:///{root / 'probe.db'}") as c:
            task_ms = statistics.median(submit_to_start_ms(c.client))
    rows = [
        row(
            f"trials/hour, run --cluster local vs run --workers {WORKERS} ({size})",
            cluster,
            processes,
            "trials/h",
            goal="ratio >= 0.95",
            at_least=0.95,
        ),
        row(
            f"scheduler overhead per task, submit to start, median of {SUBMITS}, vs the mean "
            f"trial of the --cluster run ({size})",
            task_ms,
            1000.0 * trial_s,
            "ms",
        ),
        row(
            f"scheduler overhead per trial (one task per worker loop, {per_loop:.1f} trials per "
            f"loop) vs the mean trial ({size})",
            task_ms / per_loop,
            1000.0 * trial_s,
            "ms",
        ),
    ]
    if logged:
        rows.append(
            row(
                "worker loops' submit to start in the --cluster run (median of "
                f"{len(logged)}; includes unpickling the run config) vs the mean trial ({size})",
                statistics.median(logged),
                1000.0 * trial_s,
                "ms",
            )
        )
    return rows
