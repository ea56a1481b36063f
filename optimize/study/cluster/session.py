"""What runs in ``run``: the connection to the cluster, the worker tasks seen as worker
processes, the robustness step's executor.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from optimize.study.cluster.address import (
    ClusterAddress,
    ClusterError,
    WorkerReport,
    check_sqlite_scheduler,
    machine_id,
    probe,
    shared_storage_url,
    worker_problems,
)
from optimize.study.cluster.task import (
    MALLOC_TRIM_VARIABLE,
    IgnoreTerminalSignals,
    MallocThresholds,
    WorkerResult,
    WorkerSpec,
    run_worker_task,
)

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
"""Seconds a scheduler has to answer before ``run`` gives up (one line, exit 2)."""
CLOSE_TIMEOUT_S = 30.0
"""Seconds ``run`` waits for a cluster connection or a LocalCluster to close."""


class WorkerTask:
    """A worker loop running as a Dask task, seen as ``run`` sees a worker subprocess: the part of
    :class:`subprocess.Popen` it uses (``poll``, ``wait``, ``send_signal``, ``terminate``,
    ``returncode``, ``pid``).

    ``returncode``: 0 when the loop ended normally, ``128 + signum`` when a signal stopped it
    (its trial FAILED and queued for retry), 1 when it failed (the reason is logged).
    """

    def __init__(self, cluster: Cluster, index: int, future: Any, submitted_at: float) -> None:
        self.index, self.future, self.submitted_at = index, future, submitted_at
        self._cluster = cluster
        self.result: WorkerResult | None = None
        self.returncode: int | None = None

    @property
    def pid(self) -> int | None:
        """The process that ran the loop (None until the task has ended)."""
        return None if self.result is None else self.result.pid

    def send_signal(self, signum: int) -> None:
        """Ask every loop of this run to stop as on ``signum`` (safe inside a signal handler:
        a thread of :class:`Cluster` sends the request)."""
        self._cluster.request_stop(signum)

    def terminate(self) -> None:
        """Stop the loop as SIGTERM stops a worker subprocess."""
        self.send_signal(signal.SIGTERM)

    def poll(self) -> int | None:
        if self.returncode is None and self.future.done():
            self.returncode = self._ended()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                import subprocess

                raise subprocess.TimeoutExpired(f"worker task {self.index}", timeout)
            with contextlib.suppress(Exception):
                self.future.exception(timeout=0.5)
        return self.returncode

    def _ended(self) -> int:
        try:
            result = self.future.result()
        except Exception as exc:  # Dask gave up on it (e.g. KilledWorker) or it was cancelled
            logger.error(
                "worker task %d on the Dask cluster failed: %s: %s",
                self.index,
                type(exc).__name__,
                exc,
            )
            return 1
        self.result = result
        logger.info(
            "worker task %d ran on %s (host %s, pid %d), started %.0f ms after submission, %d "
            "trial(s)",
            self.index,
            result.address,
            result.host,
            result.pid,
            1000 * result.start_latency_s,
            result.trials,
        )
        if result.error is not None:
            logger.error(
                "worker %d on Dask worker %s (host %s, pid %d) failed: %s",
                self.index,
                result.address,
                result.host,
                result.pid,
                result.error,
            )
            return 1
        return 0 if result.signum is None else 128 + result.signum


class ClusterExecutor(cf.Executor):
    """A :class:`concurrent.futures.Executor` on the cluster's workers (the robustness step's
    evaluations). A task Dask could not finish (its workers kept dying, the scheduler went away)
    fails with :class:`concurrent.futures.BrokenExecutor`, as a dead local process does."""

    def __init__(self, client: Any, prefix: str) -> None:
        self._client, self._prefix = client, prefix

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        out: cf.Future = cf.Future()
        key = f"{self._prefix}-{uuid.uuid4().hex[:12]}"
        future = self._client.submit(fn, *args, key=key, pure=False, **kwargs)

        def done(f: Any) -> None:
            try:
                out.set_result(f.result())
            except Exception as exc:
                if isinstance(exc, _lost_task_errors()):
                    exc = cf.BrokenExecutor(f"the Dask cluster lost task {key}: {exc}")
                out.set_exception(exc)

        future.add_done_callback(done)
        out.dask_future = future  # keeps it alive until collected
        return out


def _lost_task_errors() -> tuple[type[BaseException], ...]:
    from distributed import KilledWorker
    from distributed.comm import CommClosedError

    return (KilledWorker, CommClosedError, cf.CancelledError)


class Cluster:
    """A connection to a Dask cluster for one ``run`` (or ``robustness``): starts worker tasks,
    stops them, and lends an executor. Made by :func:`connect`."""

    def __init__(self, address: ClusterAddress, client: Any, local_cluster: Any = None) -> None:
        self.address, self.client, self._local_cluster = address, client, local_cluster
        self.run_id = uuid.uuid4().hex[:12]
        self.tasks: list[WorkerTask] = []
        self._stop_signal: int | None = None
        self._stop_wanted = threading.Event()
        self._stop_sent = threading.Event()
        self._closing = False
        self._sender = threading.Thread(target=self._send_stop, name="optimize-stop", daemon=True)
        self._sender.start()

    @property
    def local(self) -> bool:
        return self.address.local

    @property
    def scheduler(self) -> str:
        return self.client.scheduler.address

    def workers(self) -> dict[str, dict[str, Any]]:
        """The scheduler's view of the connected Dask workers, by address, asked now.

        Not ``Client.scheduler_info()``: it returns the client's cached copy, which the client's
        own periodic refresh (every 2 s, without per-worker entries) can overwrite between the
        fetch and the read, so it sometimes shows no worker at all.
        """
        info = self.client.sync(self.client.scheduler.identity, n_workers=-1)
        return dict(info.get("workers", {}))

    def describe(self) -> str:
        """One line: the scheduler, its workers and their hosts."""
        workers = self.workers()
        hosts = sorted({w.get("host", "?") for w in workers.values()})
        kind = "LocalCluster" if self.local else "Dask scheduler"
        return (
            f"{kind} {self.scheduler}: {len(workers)} worker process(es) on "
            f"{len(hosts)} host(s) {hosts}"
            + ("" if workers else " (the tasks wait for workers to join)")
        )

    def start_worker(self, spec: WorkerSpec, index: int) -> WorkerTask:
        """Submit worker loop ``index`` as a long-running task.

        Loops are spread over the connected workers in address order (a loose restriction: a
        lost task reruns on any worker).
        """
        addresses = sorted(self.workers())
        where: dict[str, Any] = {}
        if addresses:  # Dask accepts allow_other_workers only with a worker list
            where = {"workers": [addresses[index % len(addresses)]], "allow_other_workers": True}
        submitted = time.time()
        future = self.client.submit(
            run_worker_task,
            spec,
            index,
            self._stop_name,
            submitted,
            key=f"optimize-worker-{index}-{self.run_id}",
            pure=False,
            **where,
        )
        task = WorkerTask(self, index, future, submitted)
        self.tasks.append(task)
        return task

    @property
    def _stop_name(self) -> str:
        return f"optimize-stop-{self.run_id}"

    def request_stop(self, signum: int) -> None:
        """Ask every loop of this run to stop as on ``signum``; the first request counts.

        Only sets an event (a signal handler may call it); :meth:`_send_stop` publishes it.
        """
        if self._stop_signal is None:
            self._stop_signal = int(signum)
            self._stop_wanted.set()

    def _send_stop(self) -> None:
        """Thread: publish the stop on the scheduler once it is requested."""
        from distributed import Event, Variable

        self._stop_wanted.wait()
        if self._closing:
            return
        try:
            Variable(self._stop_name, client=self.client).set(self._stop_signal)
            Event(self._stop_name, client=self.client).set()
        except Exception as exc:  # the scheduler is gone: the tasks are gone with it
            logger.warning("could not ask the worker tasks to stop: %s", exc)
        finally:
            self._stop_sent.set()

    def executor(self) -> ClusterExecutor:
        """An executor on the cluster's workers (tasks named ``optimize-robustness-...``)."""
        return ClusterExecutor(self.client, f"optimize-robustness-{self.run_id}")

    def worker_spec(
        self,
        config: Any,
        space: Any,
        *,
        storage: str,
        study_name: str,
        n_trials: int | None,
        timeout: float | None,
        threads: int,
        log_file: Path,
        gpus: list[str],
    ) -> WorkerSpec:
        """The tasks' spec: ``threads`` and ``gpus`` as ``run`` computed them for this machine
        apply to a LocalCluster; remote workers get the config's ``threads_per_worker`` (or one)
        and keep the GPUs their deployment gives them."""
        if not self.local:
            threads, gpus = config.training.threads_per_worker or 1, []
        return WorkerSpec(
            config,
            space,
            shared_storage_url(storage),
            study_name,
            n_trials,
            timeout,
            threads,
            str(log_file),
            tuple(gpus),
        )

    def close(self) -> None:
        """Cancel what is left, forget the stop flag, close the connection (and a LocalCluster)."""
        if self._stop_wanted.is_set():
            self._stop_sent.wait(CLOSE_TIMEOUT_S)
        else:
            self._closing = True
            self._stop_wanted.set()
        self._sender.join(CLOSE_TIMEOUT_S)
        pending = [t.future for t in self.tasks if not t.future.done()]
        with contextlib.suppress(Exception):
            if pending:
                self.client.cancel(pending, force=True)
            if self._stop_signal is not None:
                from distributed import Event, Variable

                Variable(self._stop_name, client=self.client).delete()
                Event(self._stop_name, client=self.client).clear()
        with contextlib.suppress(Exception):
            self.client.close(timeout=CLOSE_TIMEOUT_S)
        if self._local_cluster is not None:
            # Our own processes, their work stored: a slow interpreter exit (torch loaded, busy
            # cores) gets them killed after 4 s, which the nanny would warn about on the terminal.
            nanny = logging.getLogger("distributed.nanny")
            level = nanny.level
            nanny.setLevel(logging.ERROR)
            try:
                with contextlib.suppress(Exception):
                    self._local_cluster.close(timeout=CLOSE_TIMEOUT_S)
            finally:
                nanny.setLevel(level)


def _reachable(address: str) -> str | None:
    """Why nothing listens at a tcp/tls ``address`` (None: something does, or another protocol)."""
    from distributed.comm import parse_address, parse_host_port

    protocol, location = parse_address(address)
    if protocol not in ("tcp", "tls"):
        return None
    try:
        host, port = parse_host_port(location)
    except ValueError as exc:
        return f"not a scheduler address ({exc})"
    if not port:
        return "the address has no port (the scheduler's default is 8786: tcp://host:8786)"
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return None


WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}
"""Dask settings of the processes ``--cluster local`` starts (its scheduler, nannies and
workers): no statistical profiler (it samples the loop's thread every 10 ms, for a dashboard
nobody looks at), and the event loops' periodic chores at 1 to 2 s instead of 20 to 500 ms: the
tick that only watches for a blocked event loop (20 ms), the system monitor (500 ms) and the
nanny's memory check (100 ms). Each wake-up of a worker's event loop takes the GIL from the trial
running beside it; an idle LocalCluster of 2 workers used 5.6 % of a core with Dask's defaults
and 1.1 to 1.4 % with these (docs/scaling.md). The deployment recipes set the same through
``DASK_DISTRIBUTED__...`` variables."""


def local_worker_config() -> dict[str, Any]:
    """:data:`WORKER_CONFIG`, and the nannies' environment for new worker processes without
    ``MALLOC_TRIM_THRESHOLD_`` (:func:`~optimize.study.cluster.task.lift_malloc_trim` says why):
    ``--cluster local`` workers allocate memory as ``run``'s own worker processes do."""
    import dask

    environ = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    environ = {k: v for k, v in environ.items() if k != MALLOC_TRIM_VARIABLE}
    return {**WORKER_CONFIG, "distributed.nanny.pre-spawn-environ": environ}


def _start_local(workers: int) -> tuple[Any, Any]:
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(local_worker_config()):  # the nannies pass it on to their workers
        local = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    try:
        client = Client(local, set_as_default=False)
        client.register_plugin(IgnoreTerminalSignals())
    except BaseException:
        local.close()
        raise
    return local, client


@contextlib.contextmanager
def connect(given: str, *, workers: int, storage: str) -> Iterator[Cluster]:
    """Connect to (or start) the cluster of ``--cluster given`` and check it can run the study on
    ``storage``; close it on exit. Runs before any study is created.

    Args:
        given: ``local``, a scheduler address or a scheduler file.
        workers: ``--workers``: the LocalCluster's processes for ``local``.
        storage: the study's storage URL (checked for reach from the workers).

    Raises:
        ClusterError: a bad address, a SQLite storage with a scheduler on another machine, a
            scheduler that does not answer, or workers that cannot run the study (each named).
    """
    from distributed import Client

    address = ClusterAddress.parse(given)
    check_sqlite_scheduler(address, storage)
    local_cluster = None
    if address.local:
        local_cluster, client = _start_local(workers)
    else:
        why = _reachable(address.scheduler)
        if why is not None:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address.scheduler}"
                + (f" (scheduler file {given})" if given != address.scheduler else "")
                + f": {why}; start it (`dask scheduler`) or pass --cluster local."
            )
        try:
            client = Client(address.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot connect to the Dask scheduler at {address.scheduler}: {exc}; expected "
                "a running `dask scheduler` at that address."
            ) from None
    cluster = Cluster(address, client, local_cluster)
    try:
        _check_workers(cluster, storage)
        client.register_plugin(MallocThresholds())  # workers now and those that join later
        yield cluster
    finally:
        cluster.close()


def _check_workers(cluster: Cluster, storage: str) -> None:
    """Probe every connected worker (:func:`worker_problems`); workers that join later are
    checked by their task (the loop opens the storage itself)."""
    url = shared_storage_url(storage)
    if not cluster.workers():
        return
    raw = cluster.client.run(probe, url, on_error="return")
    reports, problems = [], []
    for address, answer in raw.items():
        if isinstance(answer, BaseException):
            problems.append(f"Dask worker {address} did not answer the probe: {answer}")
        else:
            reports.append(WorkerReport(**{**answer, "address": address}))
    problems += worker_problems(reports, url, machine=machine_id())
    if problems:
        raise ClusterError(
            f"the Dask cluster at {cluster.scheduler} cannot run this study: "
            + "; ".join(problems)
            + "."
        )
