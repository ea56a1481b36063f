"""``python -m optimize run``, ``worker`` and ``robustness``: the study's commands.

``run`` runs a study with ``--workers`` worker processes on one storage (or, with ``--cluster``,
as many worker tasks on a Dask cluster) and a progress bar (:mod:`optimize.study.supervisor`);
``worker`` is the same worker on its own, to join a study from any machine (point ``--storage`` at
a shared PostgreSQL server); ``robustness`` races the best trials on fresh seed sets.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from base.errors import Interrupted, StudyError, signal_name
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


def _say(line: str) -> None:
    print(line, flush=True)


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_worker(args: argparse.Namespace) -> int:
    from optimize.study.runner import run_worker

    check_study_args(args)
    config, space = load_inputs(args)
    threads = args.threads or config.training.threads_per_worker
    if threads:
        import torch

        torch.set_num_threads(threads)
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
    from optimize.study.supervisor import RunRequest, run_study, summary_lines

    log_file = check_output(LOG_DIR / f"{args.study_name}.log", "the workers' log file")
    request = RunRequest(
        config=args.config,
        space=args.space,
        storage=args.storage,
        study_name=args.study_name,
        workers=args.workers,
        n_trials=args.n_trials,
        timeout=args.timeout,
        log_file=log_file,
        data_dir=args.data_dir,
    )
    outcome = run_study(request, config, space, cluster=cluster, say=_say, warn=_warn)
    if outcome.interrupted:
        return 128 + outcome.interrupted
    for line in summary_lines(outcome.study):
        print(line)
    return 1 if outcome.failures else 0


def cmd_robustness(args: argparse.Namespace) -> int:
    from optimize.study.storage import StorageWatch, load_existing_study
    from optimize.study.supervisor import has_complete, race, summary_lines

    study = load_existing_study(args.storage, args.study_name)
    if not has_complete(study):
        raise StudyError(f"study {args.study_name!r} has no COMPLETE trial to re-evaluate yet.")
    settings = dict(
        top=args.top, budget=args.budget, seed_sets=args.seeds, watch=StorageWatch(args.storage)
    )
    if not args.cluster:
        race(study, workers=max(1, args.workers), say=_say, **settings)
    else:
        from optimize.study.cluster import connect

        with connect(args.cluster, workers=max(1, args.workers), storage=args.storage) as cluster:
            _say(cluster.describe())
            race(study, workers=1, executor=cluster.executor(), say=_say, **settings)
    for line in summary_lines(study):
        print(line)
    return 0


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
