"""The study's workers on a Dask cluster: ``python -m optimize run --cluster ADDRESS``.

The study stays where it is, in an Optuna RDB storage (PostgreSQL for many machines): it is the one
Optuna storage with heartbeats, so a dead worker's trial is failed and retried as without a
cluster. Dask only launches and supervises the workers. ``run`` submits ``--workers`` long-running
tasks; each runs the ordinary worker loop (:func:`optimize.study.runner.run_worker`) in one Dask
worker process, so a trial never goes through the scheduler. Then the robustness step's
evaluations run as tasks on the same workers (:meth:`Cluster.executor`).

Modules: :mod:`~optimize.study.cluster.address` (``--cluster`` parsed, what the workers reach),
:mod:`~optimize.study.cluster.task` (what runs on a Dask worker),
:mod:`~optimize.study.cluster.session` (what runs in ``run``).

ADDRESS is ``local`` (a :class:`distributed.LocalCluster` of ``--workers`` processes with one
thread each, on this machine), a scheduler address (``tcp://host:8786``) or a scheduler file (the
JSON ``dask scheduler --scheduler-file`` writes). Before any study exists (:func:`connect`):

* a SQLite storage with a scheduler on another machine is refused (its workers cannot share the
  file), without connecting;
* a scheduler that does not answer within :data:`CONNECT_TIMEOUT_S` is one :class:`ClusterError`;
* every worker already connected opens the storage itself, and reports its machine, thread count
  and lstm-optuna version: a worker that cannot reach the storage, a SQLite file on another
  machine, a worker with more than one thread or another version is refused, naming the worker.

Stopping: :class:`WorkerTask` looks like the :class:`subprocess.Popen` of a local worker to the
command line, so ``run``'s Ctrl-C / SIGTERM forwarding stops cluster tasks the same way: the
signal is published on the scheduler (a :class:`distributed.Event`), a watcher thread inside each
task raises :class:`~base.errors.Interrupted` in the loop's thread, and the
loop fails its running trial and queues its retry, as a signalled worker process does. A task
whose client went away (``run`` killed) is stopped the same way when the scheduler cancels it.

Faults: a Dask worker process that dies mid-trial leaves its trial RUNNING without heartbeats; the
other loops fail it after ``grace_period`` and run its retry, and Dask reruns the lost task on
another worker (where it joins the study or finds it done).
"""

from base.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "connect": "optimize.study.cluster.session",
        "Cluster": "optimize.study.cluster.session",
        "WorkerTask": "optimize.study.cluster.session",
        "ClusterExecutor": "optimize.study.cluster.session",
        "ClusterAddress": "optimize.study.cluster.address",
        "ClusterError": "optimize.study.cluster.address",
        "WorkerReport": "optimize.study.cluster.address",
        "worker_problems": "optimize.study.cluster.address",
        "WorkerSpec": "optimize.study.cluster.task",
        "WorkerResult": "optimize.study.cluster.task",
        "run_worker_task": "optimize.study.cluster.task",
    },
)
