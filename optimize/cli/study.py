"""``python -m optimize run``, ``worker`` and ``robustness``: the study's commands.

``run`` starts ``--workers`` worker processes on one storage (or, with ``--cluster``, as many
worker tasks on a Dask cluster: :mod:`optimize.study.cluster`) and shows a progress bar; ``worker``
is the same worker on its own, to join a study from any machine (point ``--storage`` at a shared
PostgreSQL server); ``robustness`` races the best trials on fresh seed sets.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from base.errors import Interrupted, ProjectError, StorageError, StudyError, signal_name
from optimize.cli._options import (
    LOG_DIR,
    check_output,
    check_study_args,
    load_inputs,
    storage_option,
    study_args,
    study_name_option,
)

logger = logging.getLogger(__name__)


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


def _set_threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def cmd_worker(args: argparse.Namespace) -> int:
    from optimize.study.runner import run_worker

    check_study_args(args)
    config, space = load_inputs(args)
    threads = args.threads or config.training.threads_per_worker
    _set_threads(threads)
    log_file = Path(args.log_file) if args.log_file else LOG_DIR / f"{args.study_name}.log"
    try:
        ran = run_worker(
            config,
            space,
            storage=args.storage,
            study_name=args.study_name,
            n_trials=args.n_trials,
            timeout=args.timeout,
            worker_index=args.worker_index,
            log_file=log_file,
            show_progress=args.progress,
        )
    except Interrupted as exc:
        # The log file says it; the command line prints the one line (under `run`, the parent).
        logger.info(
            "worker %d stopped by %s; its running trial is marked FAILED and queued for retry",
            args.worker_index,
            signal_name(exc.signum),
        )
        raise Interrupted(exc.signum, f"worker {args.worker_index} {exc}") from None
    logger.info("worker %d ran %d trials", args.worker_index, ran)
    return 0


def _worker_command(args: argparse.Namespace, index: int, threads: int) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "optimize",
        "worker",
        "--config",
        args.config,
        "--space",
        args.space,
        "--storage",
        args.storage,
        "--study-name",
        args.study_name,
        "--worker-index",
        str(index),
        "--threads",
        str(threads),
        "--managed",
    ]
    if args.n_trials is not None:
        cmd += ["--n-trials", str(args.n_trials)]
    if args.timeout is not None:
        cmd += ["--timeout", str(args.timeout)]
    return cmd


def _exit_line(index: int, proc: subprocess.Popen) -> str | None:
    """Why worker ``index`` ended abnormally, or None when it exited 0."""
    code = proc.returncode
    if code == 0:
        return None
    if code < 0:
        how = f"was killed by {signal.Signals(-code).name}"
    else:
        how = f"exited with code {code}"
    return f"worker {index} (pid {proc.pid}) {how}; see its log for details"


def cmd_run(args: argparse.Namespace) -> int:
    check_study_args(args)
    config, space = load_inputs(args)
    if not args.cluster:
        return _run(args, config, space, None)
    from optimize.study.cluster import connect

    # Before any study exists: the scheduler answers and its workers reach the storage.
    with connect(args.cluster, workers=args.workers, storage=args.storage) as cluster:
        return _run(args, config, space, cluster)


def _run(args: argparse.Namespace, config, space, cluster) -> int:
    """``run`` once the inputs are loaded: worker subprocesses, or tasks on ``cluster``."""
    from optimize.study.runner import open_study, prepare_study_data
    from optimize.study.storage import (
        StorageWatch,
        make_storage,
        missing_sqlite_file,
        recover_stale_trials,
    )

    target = args.n_trials if args.n_trials is not None else config.study.n_trials
    workers = args.workers
    log_file = check_output(LOG_DIR / f"{args.study_name}.log", "the workers' log file")
    # A server is reached before the data are checked; a new SQLite file is only created after.
    early = None if missing_sqlite_file(args.storage) else make_storage(args.storage, config.study)
    prepare_study_data(config, space)  # data, folds and space checked before the study exists
    storage = early or make_storage(args.storage, config.study)
    study = open_study(storage, args.study_name, config, space, seed=config.study.seed)
    watch = StorageWatch(args.storage)
    recovered = recover_stale_trials(study)
    threads = config.training.threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    gpus = visible_gpus() if config.training.accelerator in ("auto", "gpu", "cuda") else []
    _announce_run(args, study, target, recovered, workers, threads, gpus, log_file)
    start = _launcher(args, config, space, cluster, threads, gpus, log_file)
    procs, interrupted = _run_workers(args, study, target, workers, start, watch)
    if interrupted:
        return 128 + interrupted
    watch.check()
    failures = [line for k, p in enumerate(procs) if (line := _exit_line(k, p))]
    for line in failures:
        print(line, file=sys.stderr)
    settings = config.study  # this run's settings: robustness keys may differ from the stored ones
    if settings.robustness_top and _has_complete(study):
        _robustness(
            study,
            top=settings.robustness_top,
            budget=settings.robustness_budget,
            seed_sets=settings.robustness_seed_sets,
            workers=workers,
            watch=watch,
            executor=cluster and cluster.executor(),
        )
    _summary(study)
    return 1 if failures else 0


def _run_workers(
    args: argparse.Namespace,
    study,
    target: int,
    workers: int,
    start: Callable[[int], subprocess.Popen],
    watch,
) -> tuple[list[subprocess.Popen], int | None]:
    """Start the workers (``start(k)`` starts worker ``k``), show the progress bar until they
    end; forward SIGINT/SIGTERM once.

    Returns:
        The worker processes (ended) and the signal that stopped them (None: none).

    Raises:
        StorageError: the study file vanished (the workers are stopped first).
    """
    procs: list[subprocess.Popen] = []
    interrupted: list[int] = []

    def forward(signum, frame) -> None:
        # Exactly one signal per worker, however often Ctrl-C is pressed: a second one could
        # interrupt Optuna while it records the running trial as FAILED.
        if not interrupted:
            interrupted.append(signum)
            word = "interrupted" if signum == signal.SIGINT else "terminated"
            print(
                f"\n{word}: stopping workers (their running trials are marked FAILED and queued "
                "for retry); rerun the same command to resume",
                file=sys.stderr,
                flush=True,
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
            _progress(args, study, target, procs, watch)
        except StorageError:  # the study file vanished: nothing the workers do is kept
            _stop(procs)
            raise
        for p in procs:
            p.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return procs, interrupted[0] if interrupted else None


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to the workers still running; wait for all of them."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        p.wait()


def _announce_run(
    args: argparse.Namespace,
    study,
    target: int,
    recovered: list[int],
    workers: int,
    threads: int,
    gpus: list[str],
    log_file: Path,
) -> None:
    """Print what `run` starts from: recovered trials, progress so far, workers and devices."""
    from optimize.study.storage import finished_trials, redact

    if recovered:
        print(
            f"recovered {len(recovered)} stale trial(s) {recovered} of dead workers: marked "
            "FAILED, retries queued",
            flush=True,
        )
    print(
        f"study {args.study_name!r} on {redact(args.storage)}: {finished_trials(study)}/{target} "
        f"finished; {workers} worker(s), {threads} thread(s) each"
        + (f", GPUs {gpus}" if gpus else ", CPU")
        + f"; log {log_file}",
        flush=True,
    )


def _launcher(
    args: argparse.Namespace,
    config,
    space,
    cluster,
    threads: int,
    gpus: list[str],
    log_file: Path,
) -> Callable[[int], subprocess.Popen]:
    """What starts worker ``k``: a subprocess (:func:`_start_worker`), or a task on ``cluster``
    (an :class:`optimize.study.cluster.WorkerTask`, which `run` handles as a subprocess)."""
    if cluster is None:
        return lambda k: _start_worker(args, k, threads, gpus)
    print(cluster.describe(), flush=True)
    spec = cluster.worker_spec(
        config,
        space,
        storage=args.storage,
        study_name=args.study_name,
        n_trials=args.n_trials,
        timeout=args.timeout,
        threads=threads,
        log_file=log_file,
        gpus=gpus,
    )
    return lambda k: cluster.start_worker(spec, k)


def _start_worker(
    args: argparse.Namespace, k: int, threads: int, gpus: list[str]
) -> subprocess.Popen:
    """Start worker ``k`` with its thread count and, when there are GPUs, one of them."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[k % len(gpus)]
    cmd = _worker_command(args, k, threads)
    # Own session: a terminal's Ctrl-C reaches only this process, which forwards exactly one
    # SIGINT (SIGTERM likewise) per worker; if this process dies, its workers get SIGTERM.
    # preexec_fn is safe here: `run` has started no thread yet (the progress bar comes later).
    return subprocess.Popen(
        cmd,
        env=env,
        start_new_session=True,
        preexec_fn=_before_exec if sys.platform == "linux" else None,  # noqa: PLW1509
    )


def _before_exec() -> None:
    """In a new worker, before it runs Python: die with `run`, and hold SIGINT and SIGTERM until
    the worker has installed its handlers (``python -m optimize`` unblocks them first thing), so
    a signal forwarded while it starts stops it cleanly, with no traceback."""
    from optimize.study.runner import die_with_parent

    die_with_parent()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def _has_complete(study) -> bool:
    from optuna.trial import TrialState

    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


class RobustnessInterrupted(ProjectError, ValueError):
    """The robustness step lost an evaluation process (killed, out of memory); resumable."""


def _robustness(
    study,
    *,
    top: int | None,
    budget: int | None,
    seed_sets: int | None,
    workers: int,
    watch,
    executor=None,
) -> None:
    """Run (or resume) the race with a progress bar over its budget and a line per elimination;
    on ``executor`` (a cluster's) when given, else in ``workers`` local processes; raise when the
    study file vanished (:class:`~optimize.study.storage.StorageWatch`)."""
    from concurrent.futures import BrokenExecutor

    from tqdm import tqdm

    from optimize.study.racing import Race
    from optimize.study.robustness import RobustnessPlan, run_robustness

    with contextlib.ExitStack() as stack:
        bars: list[tqdm] = []

        def start(plan: RobustnessPlan) -> None:
            print(
                f"robustness: race of the best {len(plan.candidates)} complete trials "
                f"{list(plan.candidates)} on fresh seed sets, budget {plan.budget} evaluations, "
                f"at most {plan.seed_sets} seed sets each; {plan.rounds} round(s), "
                f"{plan.evaluations} evaluation(s) replayed from stored values",
                flush=True,
            )
            bar = tqdm(
                total=plan.budget,
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
            tqdm.write(
                f"round {last.number}: {len(last.entrants)} evaluated, eliminated {gone}; "
                f"{len(race.survivors)} left"
            )

        try:
            race = run_robustness(
                study,
                top=top,
                budget=budget,
                seed_sets=seed_sets,
                workers=workers,
                on_plan=start,
                on_value=lambda _: (watch.check(), bars[0].update(1)),
                on_round=round_done,
                executor=executor,
            )
        except BrokenExecutor as exc:
            raise RobustnessInterrupted(
                f"an evaluation process of the robustness step died ({exc}); the values computed "
                "so far are stored: rerun `python -m optimize robustness --study-name "
                f"{study.study_name}` to resume."
            ) from None
    watch.check()
    if race.candidates:
        print(
            f"race over ({race.stop}): {len(race.rounds)} round(s), {race.evaluations} "
            f"evaluation(s), {len(race.eliminated)} eliminated; winner "
            + (f"#{race.winner}" if race.winner is not None else "none"),
            flush=True,
        )


def cmd_robustness(args: argparse.Namespace) -> int:
    from optimize.study.storage import StorageWatch, load_existing_study

    study = load_existing_study(args.storage, args.study_name)
    if not _has_complete(study):
        raise StudyError(f"study {args.study_name!r} has no COMPLETE trial to re-evaluate yet.")
    watch = StorageWatch(args.storage)
    race = dict(top=args.top, budget=args.budget, seed_sets=args.seeds, watch=watch)
    if not args.cluster:
        _robustness(study, workers=max(1, args.workers), **race)
    else:
        from optimize.study.cluster import connect

        with connect(args.cluster, workers=max(1, args.workers), storage=args.storage) as cluster:
            print(cluster.describe(), flush=True)
            _robustness(study, workers=1, executor=cluster.executor(), **race)
    _summary(study)
    return 0


def _progress(args, study, target: int, procs: list[subprocess.Popen], watch) -> None:
    """The progress bar while the workers run; raises when the study file vanished."""
    from tqdm import tqdm

    from optimize.study.storage import finished_trials

    multi = len(study.directions) > 1
    with tqdm(total=target, desc=args.study_name, unit="trial", dynamic_ncols=True) as bar:
        bar.update(min(finished_trials(study), target))
        while any(p.poll() is None for p in procs):
            time.sleep(2.0)
            watch.check()
            done = min(finished_trials(study), target)
            bar.update(done - bar.n)
            if not multi:
                try:
                    bar.set_postfix(best=f"{study.best_value:.4f}")
                except ValueError:
                    pass
        bar.update(min(finished_trials(study), target) - bar.n)


def _summary(study) -> None:
    from collections import Counter

    from optuna.trial import TrialState

    counts = Counter(t.state for t in study.get_trials(deepcopy=False))
    print("trials: " + ", ".join(f"{s.name.lower()} {counts[s]}" for s in TrialState if counts[s]))
    if len(study.directions) == 1:
        try:
            best = study.best_trial
        except ValueError:
            print("no completed trial yet")
            return
        from optimize.study.records import TrialRecord

        record = TrialRecord.of(best, complete=False)
        oos, base = record.oos_metrics, record.baselines
        _print_selected(study)
        print(
            f"best trial #{best.number}: value {best.value:.4f}; out-of-sample profit "
            f"{oos.get('profit_total', float('nan')):.2%}, max drawdown "
            f"{oos.get('max_drawdown_account', float('nan')):.2%}, "
            f"{oos.get('total_trades', 0):.0f} trades; buy-and-hold "
            f"{base.get('buy_and_hold', {}).get('profit_total', float('nan')):.2%}, no-model "
            f"{base.get('no_model', {}).get('profit_total', float('nan')):.2%}"
        )
    else:
        print(f"Pareto front: {len(study.best_trials)} trials")


def _print_selected(study) -> None:
    """The trial report, holdout and export use by default, with its seed mean ± std."""
    from optimize.study.seednoise import best_by_seed_mean, race_noise

    selected = best_by_seed_mean(study)
    if selected is None:
        return
    noise = race_noise(study)[selected.number]
    print(
        f"selected trial #{selected.number} (best mean over {len(noise.values)} fresh seed sets): "
        f"{noise.mean:.4f} ± {noise.std:.4f} (min {noise.min:.4f}, max {noise.max:.4f}; "
        f"recorded value {noise.recorded:.4f})"
    )


RESUME_TRIALS = (
    "running trials are marked FAILED and queued for retry; rerun the same command to resume"
)
"""What an interrupted ``run`` or ``worker`` says besides the signal."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``run``, ``worker`` and ``robustness``."""
    run = sub.add_parser("run", help="run a study with N local worker processes (progress bar)")
    study_args(run)
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes on this machine, or worker tasks with --cluster (default 1)",
    )
    cluster_option(run, "run the workers, then the robustness evaluations, as tasks on it")
    # (while the workers run, `run` forwards the signal to them and says so itself)
    run.set_defaults(func=cmd_run, on_interrupt="rerun the same command to resume")

    worker = sub.add_parser("worker", help="join a study as one worker (any machine, same storage)")
    study_args(worker)
    worker.add_argument("--worker-index", type=int, default=0, help="offsets the seed (default 0)")
    worker.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: config or torch's)"
    )
    worker.add_argument("--log-file", default=None, help="log file (default logs/<study>.log)")
    worker.add_argument("--progress", action="store_true", help="show Optuna's progress bar")
    worker.add_argument(
        "--managed", action="store_true", help=argparse.SUPPRESS
    )  # started by `run`
    # Optuna marks the running trial FAILED on an Exception (not on a BaseException).
    worker.set_defaults(func=cmd_worker, on_interrupt=RESUME_TRIALS, interrupt_as=Interrupted)

    robust = sub.add_parser(
        "robustness", help="race the best complete trials on fresh seed sets (resumes)"
    )
    storage_option(robust)
    study_name_option(robust, "the study", required=True)
    robust.add_argument(
        "--top",
        type=int,
        default=None,
        help="candidates: the best N complete trials by recorded value (default: the study "
        "config's study.robustness_top)",
    )
    robust.add_argument(
        "--budget",
        type=int,
        default=None,
        help="the most evaluations (trial x fresh seed set) the race may use (default: "
        "study.robustness_budget)",
    )
    robust.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="the most fresh seed sets (rounds) per candidate (default: "
        "study.robustness_seed_sets)",
    )
    robust.add_argument(
        "--workers",
        type=int,
        default=1,
        help="evaluation processes (default 1; as many as cores; with --cluster local: its size)",
    )
    cluster_option(robust, "run the evaluations as tasks on it")
    robust.set_defaults(
        func=cmd_robustness,
        on_interrupt="the values computed so far are stored; rerun the same command to resume",
    )


def cluster_option(p: argparse.ArgumentParser, text: str) -> None:
    """``--cluster ADDRESS``: a Dask cluster (``local``, ``tcp://host:8786`` or a scheduler
    file); None: none."""
    p.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help=f"Dask cluster: 'local', a scheduler address (tcp://host:8786) or a scheduler file; "
        f"{text} (see docs/scaling.md)",
    )
