"""A study run on this machine: its workers started, watched and stopped, then the robustness step.

:func:`run_study` is ``python -m optimize run``: the inputs are checked and the study created or
resumed before any worker starts; then ``--workers`` worker processes (``python -m optimize worker
--managed``, each with its thread count and, when there are GPUs, one of them:
:func:`visible_gpus`) or as many worker tasks on a Dask cluster (:mod:`optimize.study.cluster`)
run the trials while a progress bar follows the study; SIGINT and SIGTERM are forwarded to them
once (their running trials are marked FAILED and queued for retry); a vanished study file stops
them. When they are done, the robustness step races the best trials (:func:`race`, also
``python -m optimize robustness``), with a progress bar over its budget.

What a command prints goes through the two callables it passes (``say``: a line on standard
output; ``warn``: a line on standard error); the progress bars are drawn on standard error. Library
callers get the lines as log records. :func:`summary_lines` is what ``run`` and ``robustness`` say
at the end.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from base.errors import ProjectError, StorageError
from optimize.config import RunConfig
from optimize.search.space import SearchSpace
from optimize.study.pool import die_with_parent
from optimize.study.racing import Race
from optimize.study.records import TrialRecord
from optimize.study.robustness import RobustnessPlan, run_robustness
from optimize.study.runner import checked_study
from optimize.study.seednoise import best_by_seed_mean, race_noise
from optimize.study.storage import (
    FINISHED,
    StorageWatch,
    finished_trials,
    recover_stale_trials,
    redact,
)
from optimize.study.tail import TailStart

logger = logging.getLogger(__name__)

__all__ = [
    "RobustnessInterrupted",
    "RunOutcome",
    "RunRequest",
    "exit_line",
    "has_complete",
    "race",
    "run_study",
    "summary_lines",
    "visible_gpus",
    "worker_command",
]

Say = Callable[[str], None]
"""Shows one line (a command prints it; library callers log it)."""

PROGRESS_POLL_S = 2.0
"""Seconds between two looks at the study while the workers run."""


class RobustnessInterrupted(ProjectError, ValueError):
    """The robustness step lost an evaluation process (killed, out of memory); resumable."""


@dataclass(frozen=True)
class RunRequest:
    """What ``run`` was asked to do (the worker processes are started with the same arguments).

    Attributes:
        config, space: the run config and search space files as given (each worker reads them).
        storage: the storage URL.
        study_name: the study to create or resume.
        workers: worker processes, or worker tasks on a cluster.
        n_trials: finished trials the study should hold (None: the config's ``study.n_trials``).
        timeout: seconds after which workers start no new trial (None: the config's).
        log_file: the workers' log file (checked writable by the caller).
        data_dir: the candle folder given instead of the config's ``data.datadir`` (None: the
            config's).
    """

    config: str
    space: str
    storage: str
    study_name: str
    workers: int
    n_trials: int | None
    timeout: float | None
    log_file: Path
    data_dir: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    """How ``run`` ended.

    Attributes:
        study: the study.
        interrupted: the signal that stopped the workers (None: none did).
        failures: one line per worker that ended abnormally (:func:`exit_line`).
    """

    study: optuna.Study
    interrupted: int | None
    failures: list[str]


def visible_gpus() -> list[str]:
    """GPU ids workers may use (``CUDA_VISIBLE_DEVICES`` if set, else every CUDA device)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except (ImportError, RuntimeError, AssertionError):  # no torch or no CUDA runtime
        return []


def worker_command(request: RunRequest, index: int, threads: int) -> list[str]:
    """The command line of worker process ``index`` (``python -m optimize worker --managed``)."""
    cmd = [
        sys.executable,
        "-m",
        "optimize",
        "worker",
        "--config",
        request.config,
        "--space",
        request.space,
        "--storage",
        request.storage,
        "--study-name",
        request.study_name,
        "--worker-index",
        str(index),
        "--threads",
        str(threads),
        "--managed",
    ]
    if request.n_trials is not None:
        cmd += ["--n-trials", str(request.n_trials)]
    if request.timeout is not None:
        cmd += ["--timeout", str(request.timeout)]
    if request.data_dir is not None:
        cmd += ["--data-dir", request.data_dir]
    return cmd


def exit_line(index: int, proc: Any) -> str | None:
    """Why worker ``index`` ended abnormally, or None when it exited 0."""
    code = proc.returncode
    if code == 0:
        return None
    if code < 0:
        how = f"was killed by {signal.Signals(-code).name}"
    else:
        how = f"exited with code {code}"
    return f"worker {index} (pid {proc.pid}) {how}; see its log for details"


def has_complete(study: optuna.Study) -> bool:
    """The study holds a COMPLETE trial."""
    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def run_study(
    request: RunRequest,
    config: RunConfig,
    space: SearchSpace,
    *,
    cluster: Any = None,
    say: Say = logger.info,
    warn: Say = logger.warning,
) -> RunOutcome:
    """Run the study: checks, workers until the target, the robustness step.

    Args:
        request: what to run.
        config, space: the loaded run config and search space (this run's settings: robustness
            keys may differ from the stored ones).
        cluster: a connected :class:`optimize.study.cluster.Cluster` to run the workers and the
            robustness evaluations on; None: worker processes on this machine.
        say, warn: show a line on standard output / standard error.

    Raises:
        StudyInputError, StorageError, StudyError: before any worker starts (nothing created for
            bad input); StorageError when the study file vanished while the workers ran (they are
            stopped first).
        RobustnessInterrupted: the robustness step lost an evaluation process.
    """
    target = request.n_trials if request.n_trials is not None else config.study.n_trials
    workers = request.workers
    study, _ = checked_study(
        config, space, request.storage, request.study_name, seed=config.study.seed
    )
    watch = StorageWatch(request.storage)
    recovered = recover_stale_trials(study)
    threads = config.training.threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    gpus = visible_gpus() if config.training.accelerator in ("auto", "gpu", "cuda") else []
    if recovered:
        say(
            f"recovered {len(recovered)} stale trial(s) {recovered} of dead workers: marked "
            "FAILED, retries queued"
        )
    say(
        f"study {request.study_name!r} on {redact(request.storage)}: {finished_trials(study)}/"
        f"{target} finished; {workers} worker(s), {threads} thread(s) each"
        + (f", GPUs {gpus}" if gpus else ", CPU")
        + f"; log {request.log_file}"
    )
    start = _launcher(request, config, space, cluster, threads, gpus, say)
    settings = config.study
    executor = cluster and cluster.executor()
    racing = {
        "top": settings.robustness_top,
        "budget": settings.robustness_budget,
        "seed_sets": settings.robustness_seed_sets,
    }
    # Local workers only (a cluster's worker loops hold their Dask workers until the search ends),
    # and more than one (a single worker leaves no core idle; its race runs in this process).
    tail = None
    if cluster is None and workers > 1:
        tail = TailStart(study, config, workers=workers, target=target, **racing)
    # The tail's evaluations that nobody reads (an interrupted run) are stopped when this ends.
    with tail or contextlib.nullcontext():
        procs, interrupted = _supervise(
            request.study_name, study, target, workers, start, watch, warn, tail and tail.poll
        )
        if interrupted:
            return RunOutcome(study, interrupted, [])
        watch.check()
        failures = [line for k, p in enumerate(procs) if (line := exit_line(k, p))]
        for line in failures:
            warn(line)
        if settings.robustness_top and has_complete(study):
            race(
                study, workers=workers, watch=watch, executor=executor, say=say, tail=tail, **racing
            )
    return RunOutcome(study, None, failures)


def _launcher(
    request: RunRequest,
    config: RunConfig,
    space: SearchSpace,
    cluster: Any,
    threads: int,
    gpus: list[str],
    say: Say,
) -> Callable[[int], Any]:
    """What starts worker ``k``: a process (:func:`_start_worker`), or a task on ``cluster`` (an
    :class:`optimize.study.cluster.WorkerTask`, handled like a process)."""
    if cluster is None:
        return lambda k: _start_worker(request, k, threads, gpus)
    say(cluster.describe())
    spec = cluster.worker_spec(
        config,
        space,
        storage=request.storage,
        study_name=request.study_name,
        n_trials=request.n_trials,
        timeout=request.timeout,
        threads=threads,
        log_file=request.log_file,
        gpus=gpus,
    )
    return lambda k: cluster.start_worker(spec, k)


def _start_worker(request: RunRequest, k: int, threads: int, gpus: list[str]) -> subprocess.Popen:
    """Start worker ``k`` with its thread count and, when there are GPUs, one of them."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[k % len(gpus)]
    # Own session: a terminal's Ctrl-C reaches only this process, which forwards exactly one
    # SIGINT (SIGTERM likewise) per worker; if this process dies, its workers get SIGTERM.
    # preexec_fn is safe here: `run` has started no thread yet (the progress bar comes later).
    return subprocess.Popen(
        worker_command(request, k, threads),
        env=env,
        start_new_session=True,
        preexec_fn=_before_exec if sys.platform == "linux" else None,  # noqa: PLW1509
    )


def _before_exec() -> None:
    """In a new worker, before it runs Python: die with `run`, and hold SIGINT and SIGTERM until
    the worker has installed its handlers (``python -m optimize`` unblocks them first thing), so
    a signal forwarded while it starts stops it cleanly, with no traceback."""
    die_with_parent()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def _supervise(
    name: str,
    study: optuna.Study,
    target: int,
    workers: int,
    start: Callable[[int], Any],
    watch: StorageWatch,
    warn: Say,
    on_tick: Callable[[list[FrozenTrial]], None] | None = None,
) -> tuple[list[Any], int | None]:
    """Start the workers (``start(k)`` starts worker ``k``), show the progress bar until they
    end (calling ``on_tick`` with the study's trials at every look); forward SIGINT/SIGTERM once.

    Returns:
        The worker processes (ended) and the signal that stopped them (None: none).

    Raises:
        StorageError: the study file vanished (the workers are stopped first).
    """
    procs: list[Any] = []
    interrupted: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        # Exactly one signal per worker, however often Ctrl-C is pressed: a second one could
        # interrupt Optuna while it records the running trial as FAILED.
        if not interrupted:
            interrupted.append(signum)
            word = "interrupted" if signum == signal.SIGINT else "terminated"
            warn(
                f"\n{word}: stopping workers (their running trials are marked FAILED and queued "
                "for retry); rerun the same command to resume"
            )
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for k in range(workers):
            procs.append(start(k))
            if interrupted:
                procs[-1].send_signal(interrupted[0])
        try:
            _progress(name, study, target, procs, watch, on_tick)
        except StorageError:  # the study file vanished: nothing the workers do is kept
            _stop(procs)
            raise
        for p in procs:
            p.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return procs, interrupted[0] if interrupted else None


def _stop(procs: list[Any]) -> None:
    """SIGTERM to the workers still running; wait for all of them."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        p.wait()


def _progress(
    name: str,
    study: optuna.Study,
    target: int,
    procs: list[Any],
    watch: StorageWatch,
    on_tick: Callable[[list[FrozenTrial]], None] | None = None,
) -> None:
    """The progress bar while the workers run, the study's trials read once per look and
    handed to ``on_tick``; raises when the study file vanished."""
    multi = len(study.directions) > 1
    with tqdm(total=target, desc=name, unit="trial", dynamic_ncols=True) as bar:
        bar.update(min(finished_trials(study), target))
        while any(p.poll() is None for p in procs):
            time.sleep(PROGRESS_POLL_S)
            watch.check()
            trials = study.get_trials(deepcopy=False)
            if on_tick is not None:
                on_tick(trials)
            done = min(sum(t.state in FINISHED for t in trials), target)
            bar.update(done - bar.n)
            if not multi:
                with contextlib.suppress(ValueError):  # no complete trial yet
                    bar.set_postfix(best=f"{study.best_value:.4f}")
        bar.update(min(finished_trials(study), target) - bar.n)


def race(
    study: optuna.Study,
    *,
    top: int | None,
    budget: int | None,
    seed_sets: int | None,
    workers: int,
    watch: StorageWatch,
    executor: Executor | None = None,
    say: Say = logger.info,
    tail: TailStart | None = None,
) -> Race:
    """Run (or resume) the robustness step's race with a progress bar over its budget and a line
    per round; on ``executor`` (a cluster's) when given, else in ``workers`` local processes, or
    in ``tail``'s, taking over the evaluations it started in the search's last trials.

    Raises:
        RobustnessInterrupted: an evaluation process died (the values computed so far are stored).
        StorageError: the study file vanished (:class:`~optimize.study.storage.StorageWatch`).
    """
    with contextlib.ExitStack() as stack:
        bars: list[tqdm] = []

        def start(plan: RobustnessPlan) -> None:
            most = plan.most_evaluations
            say(
                f"robustness: race of the best {len(plan.candidates)} complete trials "
                f"{list(plan.candidates)} on fresh seed sets, budget {plan.budget} evaluations, "
                f"at most {plan.seed_sets} seed sets each"
                + (f" (so at most {most} evaluations)" if most < plan.budget else "")
                + f"; {plan.rounds} round(s), {plan.evaluations} evaluation(s) replayed from "
                "stored values"
            )
            bar = tqdm(
                total=plan.most_evaluations,
                initial=plan.evaluations,
                desc="race",
                unit="eval",
                dynamic_ncols=True,
                disable=not plan.candidates,
            )
            bars.append(stack.enter_context(bar))

        def round_done(race: Race) -> None:
            bars[0].update(race.evaluations - bars[0].n)  # values stored earlier count too
            last = race.rounds[-1]
            gone = ", ".join(f"#{e.trial} ({e.reason})" for e in last.eliminated) or "nobody"
            with tqdm.external_write_mode():  # the line above the bar
                say(
                    f"round {last.number}: {len(last.entrants)} evaluated, eliminated {gone}; "
                    f"{len(race.survivors)} left"
                )

        early = tail is not None and not tail.failed and (tail.stored or tail.pending)
        if early:
            say(
                f"robustness: started in the search's last trials on idle cores: {tail.stored} "
                f"evaluation(s) done, {len(tail.pending)} running"
            )
        try:
            result = run_robustness(
                study,
                top=top,
                budget=budget,
                seed_sets=seed_sets,
                workers=workers,
                on_plan=start,
                on_value=lambda _: (watch.check(), bars[0].update(1)),
                on_round=round_done,
                executor=executor,
                evaluator=tail.evaluator if early else None,
                pending=tail.pending if early else None,
            )
        except BrokenExecutor as exc:
            raise RobustnessInterrupted(
                f"an evaluation process of the robustness step died ({exc}); the values computed "
                "so far are stored: rerun `python -m optimize robustness --study-name "
                f"{study.study_name}` to resume."
            ) from None
    watch.check()
    if result.candidates:
        say(
            f"race over ({result.stop}): {len(result.rounds)} round(s), {result.evaluations} "
            f"evaluation(s), {len(result.eliminated)} eliminated; winner "
            + (f"#{result.winner}" if result.winner is not None else "none")
        )
    return result


def summary_lines(study: optuna.Study) -> list[str]:
    """What ``run`` and ``robustness`` say at the end: the trials by state, the selected trial
    (with its seed mean) and the best trial's figures (multi-objective: the Pareto front's
    size)."""
    counts = Counter(t.state for t in study.get_trials(deepcopy=False))
    states = ", ".join(f"{s.name.lower()} {counts[s]}" for s in TrialState if counts[s])
    lines = [f"trials: {states}"]
    if len(study.directions) != 1:
        return [*lines, f"Pareto front: {len(study.best_trials)} trials"]
    try:
        best = study.best_trial
    except ValueError:
        return [*lines, "no completed trial yet"]
    selected = best_by_seed_mean(study)
    if selected is not None:
        noise = race_noise(study)[selected.number]
        lines.append(
            f"selected trial #{selected.number} (best mean over {len(noise.values)} fresh seed "
            f"sets): {noise.mean:.4f} ± {noise.std:.4f} (min {noise.min:.4f}, max "
            f"{noise.max:.4f}; recorded value {noise.recorded:.4f})"
        )
    record = TrialRecord.of(best, complete=False)
    oos, base = record.oos_metrics, record.baselines
    lines.append(
        f"best trial #{best.number}: value {best.value:.4f}; out-of-sample profit "
        f"{oos.get('profit_total', float('nan')):.2%}, max drawdown "
        f"{oos.get('max_drawdown_account', float('nan')):.2%}, "
        f"{oos.get('total_trades', 0):.0f} trades; buy-and-hold "
        f"{base.get('buy_and_hold', {}).get('profit_total', float('nan')):.2%}, no-model "
        f"{base.get('no_model', {}).get('profit_total', float('nan')):.2%}"
    )
    return lines
