"""Run a study on Slurm: Dask workers as Slurm jobs (dask-jobqueue), the study in PostgreSQL.

Run it where jobs can be submitted (a login node, or inside the small job of ``optimize.sbatch``):

    python deploy/slurm/launch.py --jobs 8 --queue cpu --memory 4GB --walltime 12:00:00 -- \\
        --storage postgresql+psycopg2://user@db-host/optuna --study-name big \\
        --config configs/gpu.yaml --space search_spaces/gpu.yaml

It starts a Dask scheduler in this process, submits ``--jobs`` Slurm jobs of one Dask worker each
(one process, one thread: one worker loop), waits for the first to join, then runs ``python -m
optimize run --cluster <that scheduler> --workers <jobs>`` with the arguments after ``--``. The
study lives in PostgreSQL, which every compute node must reach; a job that dies (preempted,
walltime) has its trial failed and retried, and rerunning the same command resumes the study.
``--print-job-script`` prints the job script Slurm would get and submits nothing.

Needs ``pip install -e '.[slurm]'`` (dask-jobqueue) in the environment the compute nodes share.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKER_ENV = [
    "export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1",
    "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False",
    "export DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s",
    "export DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL=2s",
    "export DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL=1s",
]
"""Lines every worker job runs first: one BLAS thread, no Dask profiler sampling the loop, the
event loop's periodic chores at 1 to 2 s (what ``--cluster local`` sets, docs/scaling.md)."""


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """This launcher's options, and the ``python -m optimize run`` arguments after ``--``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    run_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=4, help="Slurm jobs, one worker loop each")
    p.add_argument("--queue", default=None, help="Slurm partition (-p)")
    p.add_argument("--account", default=None, help="Slurm account (-A)")
    p.add_argument("--memory", default="4GB", help="memory per job (default 4GB)")
    p.add_argument("--walltime", default="12:00:00", help="time limit per job (default 12:00:00)")
    p.add_argument("--gpus", type=int, default=0, help="GPUs per job (--gres=gpu:N; default 0)")
    p.add_argument(
        "--extra", action="append", default=[], help="more #SBATCH options, e.g. --extra=--qos=low"
    )
    p.add_argument(
        "--print-job-script", action="store_true", help="print the job script; submit nothing"
    )
    args = p.parse_args(own)
    if args.jobs < 1:
        p.error(f"--jobs must be >= 1, but got {args.jobs}.")
    return args, run_args


def make_cluster(args: argparse.Namespace):
    """The SLURMCluster (its scheduler starts in this process; no job is submitted yet)."""
    from dask_jobqueue import SLURMCluster

    extra = list(args.extra) + ([f"--gres=gpu:{args.gpus}"] if args.gpus else [])
    return SLURMCluster(
        cores=1,
        processes=1,
        memory=args.memory,
        walltime=args.walltime,
        queue=args.queue,
        account=args.account,
        job_name="lstm-optuna-worker",
        job_extra_directives=extra,
        job_script_prologue=[f"cd {REPO}", *WORKER_ENV],
        python=sys.executable,
        scheduler_options={"dashboard_address": ":8787"},
    )


def main(argv: list[str] | None = None) -> int:
    args, run_args = parse(argv)
    cluster = make_cluster(args)
    try:
        if args.print_job_script:
            print(cluster.job_script())
            return 0
        from distributed import Client

        cluster.scale(jobs=args.jobs)
        print(f"submitted {args.jobs} worker job(s); scheduler {cluster.scheduler_address}")
        with Client(cluster) as client:
            client.wait_for_workers(1)  # the queue decides when; the others join as they start
        from optimize.cli import main as optimize

        return optimize(
            ["run", "--cluster", cluster.scheduler_address, "--workers", str(args.jobs), *run_args]
        )
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
