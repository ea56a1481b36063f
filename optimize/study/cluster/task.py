"""What runs on a Dask worker: the worker loop as one long-running task, stopped on request.

:func:`run_worker_task` runs :func:`optimize.study.runner.run_worker` in the worker process's task
thread. ``run`` stops it by setting a :class:`distributed.Event` (the signal beside it in a
:class:`distributed.Variable`); a watcher thread then raises
:class:`~base.errors.Interrupted` in the loop's thread, asynchronously (at its
next Python instruction, as a signal handler raises it in a worker process's main thread), and the
loop fails its running trial and queues its retry. A task the scheduler cancels (its client went
away) is stopped the same way, as on SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

from base.errors import Interrupted
from optimize.study.cluster.address import PROBE_TIMEOUT_S

logger = logging.getLogger(__name__)

STOP_POLL_S = 1.0
"""How often a task's watcher asks the scheduler whether ``run`` asked it to stop (s)."""
REFIRE_S = 15.0
"""Seconds a task's watcher waits for the loop to end after raising the interrupt in it before
raising it again: an exception raised asynchronously can land where Python ignores it (a garbage
collector callback, a ``__del__``), and the loop would run on. The loop's own handling (the trial
marked FAILED, its retry queued) takes far less."""


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker task needs (shipped to the Dask worker by pickle).

    Attributes:
        config, space: the run config and search space (parsed and checked by ``run``).
        storage: the storage URL every worker opens (:func:`shared_storage_url`).
        study_name: the study.
        n_trials: finished trials the study should hold (None: the config's).
        timeout: seconds after which a loop starts no new trial (None: the config's).
        threads: torch threads of the loop's process (fits run on one thread whatever this is).
        log_file: the loops' log, relative to a worker's current directory unless absolute.
        gpus: GPU ids to spread the loops over (``local`` only; empty: leave the device alone).
    """

    config: Any
    space: Any
    storage: str
    study_name: str
    n_trials: int | None
    timeout: float | None
    threads: int
    log_file: str
    gpus: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkerResult:
    """How one worker task ended.

    Attributes:
        index: the loop's worker index (it offsets the sampler's seed).
        address: the Dask worker that ran it (the last one, if Dask reran it).
        host, pid: the machine's host name and the process.
        trials: trials this loop ran.
        signum: the signal that stopped it (SIGINT, SIGTERM); None when it ran to the end.
        error: ``"ExceptionName: message"`` of what stopped it; None when nothing did.
        submitted_at, started_at: wall-clock times (s since the epoch) of the submission (on the
            machine of ``run``) and of the task's start (on the worker's).
    """

    index: int
    address: str
    host: str
    pid: int
    trials: int
    signum: int | None
    error: str | None
    submitted_at: float
    started_at: float

    @property
    def start_latency_s(self) -> float:
        """Seconds from submission to the task's start (clocks of two machines when remote)."""
        return self.started_at - self.submitted_at


_INTERRUPTS: dict[int, type] = {}


def stop_signal(stop: str, client: Any) -> int:
    """The signal ``run`` stopped the tasks with (published beside the stop event); SIGTERM when
    it cannot be read."""
    from distributed import Variable

    try:
        return int(Variable(stop, client=client).get(timeout=PROBE_TIMEOUT_S))
    except Exception:
        return int(signal.SIGTERM)


def _interrupt_class(signum: int) -> type:
    """A :class:`~base.errors.Interrupted` subclass that needs no argument (an asynchronous
    exception is raised by its class), one per signal."""
    if signum not in _INTERRUPTS:
        name = f"StoppedBy{signal.Signals(signum).name}"

        def __init__(self) -> None:
            Interrupted.__init__(self, signum)

        _INTERRUPTS[signum] = type(name, (Interrupted,), {"__init__": __init__})
    return _INTERRUPTS[signum]


class _Stopper:
    """Inside a worker task: raise ``Interrupted`` in the loop's thread when ``run`` publishes a
    signal on the scheduler or when the scheduler cancels the task.

    The exception is raised asynchronously (at the thread's next Python instruction), as a
    signal handler raises it in a worker process's main thread; again every :data:`REFIRE_S`
    while the loop has not ended (an asynchronous exception can be swallowed where Python ignores
    exceptions).
    """

    def __init__(self, stop: str, client: Any, key: Any, worker: Any) -> None:
        self._stop, self._client, self._key, self._worker = stop, client, key, worker
        self._thread_id = threading.get_ident()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.fired = False
        self._watcher = threading.Thread(target=self._watch, name="optimize-stop", daemon=True)

    def __enter__(self) -> _Stopper:
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done.set()
        self._watcher.join(timeout=2 * STOP_POLL_S + PROBE_TIMEOUT_S)

    def _cancelled(self) -> bool:
        tasks = getattr(getattr(self._worker, "state", None), "tasks", None)
        if tasks is None:
            return False
        task = tasks.get(self._key)
        return task is None or task.state in ("cancelled", "released", "forgotten")

    def _watch(self) -> None:
        from distributed import Event

        event = Event(self._stop, client=self._client)
        while not self._done.is_set():
            try:
                stopped = event.wait(timeout=STOP_POLL_S)
            except Exception:  # the scheduler went away: the task is lost anyway
                if self._done.wait(STOP_POLL_S):
                    return
                continue
            if stopped:
                self._fire_until_done(stop_signal(self._stop, self._client))
                return
            if self._cancelled():
                self._fire_until_done(int(signal.SIGTERM))
                return

    def _fire_until_done(self, signum: int) -> None:
        self._fire(signum)
        while not self._done.wait(REFIRE_S):
            logger.warning("worker loop still running %.0f s after its stop: again", REFIRE_S)
            self._fire(signum)

    def _fire(self, signum: int) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self.fired = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._thread_id), ctypes.py_object(_interrupt_class(signum))
            )


@contextlib.contextmanager
def no_gc_diagnosis() -> Iterator[None]:
    """Dask's GC diagnosis off while a worker loop runs, back on after.

    A Dask worker times every full garbage collection with a ``gc`` callback, and the callback
    runs in whichever thread collects: mostly the loop's. An interrupt raised asynchronously in
    the loop's thread while that callback runs is printed as "Exception ignored" and lost (seen
    in the cluster tests: the loop ran its trial to the end and started the next before
    :data:`REFIRE_S` raised it again). Without the callback that place is gone; the re-raise
    stays for the others.
    """
    from distributed.gc import disable_gc_diagnosis, enable_gc_diagnosis

    before = len(gc.callbacks)
    disable_gc_diagnosis()
    removed = len(gc.callbacks) < before
    try:
        yield
    finally:
        if removed:
            enable_gc_diagnosis()


_ONE_LOOP = threading.Lock()
"""One worker loop per Dask worker process (the loop owns the process's torch settings, and a
trial's worker is named by host and pid)."""


@contextlib.contextmanager
def _loop_log(path: str, index: int) -> Iterator[None]:
    """Append this loop's log records to ``path`` (Optuna's console handler off) while it runs."""
    import optuna

    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(file, mode="a")
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s worker{index} {socket.gethostname()} pid%(process)d %(levelname)s "
            "%(name)s: %(message)s"
        )
    )
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    optuna.logging.enable_propagation()
    optuna.logging.disable_default_handler()
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _use_gpu(gpus: tuple[str, ...], index: int) -> None:
    """Give this process GPU ``gpus[index % len]`` unless CUDA is already initialised in it."""
    if not gpus:
        return
    import torch

    if not torch.cuda.is_initialized():
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]


def run_worker_task(spec: WorkerSpec, index: int, stop: str, submitted_at: float) -> WorkerResult:
    """The Dask task: run the worker loop in this worker process until the study is done.

    Never raises: what stopped the loop is in the result (an exception's class and message; the
    traceback goes to the loop's log).
    """
    from distributed import Event, get_client, get_worker

    from optimize.study.runner import run_worker

    started = time.time()
    worker = get_worker()
    result = dict(
        index=index,
        address=worker.address,
        host=socket.gethostname(),
        pid=os.getpid(),
        trials=0,
        signum=None,
        error=None,
        submitted_at=submitted_at,
        started_at=started,
    )
    client = get_client()
    if Event(stop, client=client).is_set():  # stopped before it started: do nothing
        result["signum"] = stop_signal(stop, client)
        return WorkerResult(**result)
    if not _ONE_LOOP.acquire(blocking=False):
        result["error"] = (
            f"ClusterError: Dask worker {worker.address} already runs a worker loop; start "
            "workers with `--nthreads 1`"
        )
        return WorkerResult(**result)
    try:
        with _loop_log(spec.log_file, index):
            logger.info(
                "worker %d starts on Dask worker %s, %.0f ms after its submission",
                index,
                worker.address,
                1000 * (started - submitted_at),
            )
            try:
                _use_gpu(spec.gpus, index)
                if spec.threads:
                    import torch

                    torch.set_num_threads(spec.threads)
                try:
                    with (
                        no_gc_diagnosis(),
                        _Stopper(stop, client, worker.get_current_task(), worker),
                    ):
                        result["trials"] = run_worker(
                            spec.config,
                            spec.space,
                            storage=spec.storage,
                            study_name=spec.study_name,
                            n_trials=spec.n_trials,
                            timeout=spec.timeout,
                            worker_index=index,
                        )
                except Interrupted as exc:  # its trial is FAILED and queued for retry
                    result["signum"] = exc.signum
                    logger.info(
                        "worker %d stopped by %s; its running trial is marked FAILED and queued "
                        "for retry",
                        index,
                        signal.Signals(exc.signum).name,
                    )
            except Exception as exc:
                logger.exception("worker %d failed", index)
                result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _ONE_LOOP.release()
        gc.unfreeze()  # the loop froze its data for its own lifetime; the process lives on
        gc.collect()
    return WorkerResult(**result)


MALLOC_TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"
"""The glibc variable Dask's nannies set in the worker processes they start (65536, from
``distributed.nanny.pre-spawn-environ``)."""
MMAP_THRESHOLD = 32 * 1024 * 1024
"""Bytes from which glibc serves an allocation by ``mmap`` once :func:`lift_malloc_trim` ran: the
ceiling glibc's own adaptive threshold rises to on 64-bit machines."""
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
"""Free bytes at the heap's top before glibc gives them back, once :func:`lift_malloc_trim` ran
(twice the mmap threshold, as glibc's adaptive rule keeps it)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


def lift_malloc_trim() -> bool:
    """Undo ``MALLOC_TRIM_THRESHOLD_`` in this process: glibc's mmap and trim thresholds set to
    :data:`MMAP_THRESHOLD` and :data:`TRIM_THRESHOLD`.

    Setting that variable also freezes glibc's mmap threshold at 128 KiB, so every allocation of
    128 KiB or more (a numpy array of 16k floats, a torch buffer) is mapped and unmapped again,
    and its pages are faulted in anew each time. Measured in a Dask worker on the tiny study: 250k
    minor page faults in 40 trials instead of 5.6k, about 9 % more CPU time per trial
    (docs/scaling.md). Worker processes that ``run`` starts itself do not get the variable (unless
    the user's own environment sets it).

    Returns:
        True when the thresholds were changed; False when the variable is not set or this is not
        glibc (nothing to undo).
    """
    if MALLOC_TRIM_VARIABLE not in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    trim_ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return mmap_ok and trim_ok


class MallocThresholds(WorkerPlugin):
    """Worker plugin of every cluster ``run`` uses: :func:`lift_malloc_trim` in each Dask worker
    process, those connected now and those that join later (worker loops and race evaluations
    alike)."""

    name = "optimize-malloc-thresholds"
    idempotent = True

    def setup(self, worker: Any) -> None:
        if lift_malloc_trim():
            logger.info(
                "Dask worker %s: %s lifted (glibc mmap threshold %d MiB)",
                getattr(worker, "address", "?"),
                MALLOC_TRIM_VARIABLE,
                MMAP_THRESHOLD // 2**20,
            )


class IgnoreTerminalSignals(WorkerPlugin):
    """Worker plugin of ``--cluster local``: the LocalCluster's processes share the terminal's
    process group, so Ctrl-C would reach them directly; they ignore SIGINT and SIGTERM and are
    stopped by ``run`` (which forwards the signal) like its worker subprocesses."""

    name = "optimize-ignore-terminal-signals"
    idempotent = True

    def setup(self, worker: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
