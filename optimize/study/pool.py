"""Processes that stop with their parent: :func:`die_with_parent` (worker and evaluation
processes), and a process pool for work the parent records.

:func:`evaluation_pool` is a :class:`~concurrent.futures.ProcessPoolExecutor` (spawned processes)
whose processes ignore SIGINT (a terminal's Ctrl-C reaches the whole process group: the parent
alone handles it, and the children print no traceback of their own). When the block ends by an
exception (an interruption, a failed evaluation), the processes are killed at once instead of
finishing their current evaluation first (:func:`kill`): they hold nothing the parent has not
stored. The robustness step's processes also die with the parent (:func:`die_with_parent`).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """In a child process (Linux): get ``signum`` when the parent dies, even by SIGKILL, so no
    worker or evaluation process is left orphaned. A no-op where ``prctl`` is unavailable.

    Workers take SIGTERM (they mark their running trial FAILED); processes with nothing to record
    take SIGKILL (Lightning handles SIGTERM inside a fit and would finish the step first).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signum))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _start(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def evaluation_pool(
    max_workers: int,
    *,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[ProcessPoolExecutor]:
    """A spawned process pool whose processes never outlive the block when it fails.

    Args:
        max_workers: processes.
        initializer, initargs: run in each process when it starts (after SIGINT is ignored).
    """
    pool = ProcessPoolExecutor(
        max_workers=max_workers,
        mp_context=get_context("spawn"),
        initializer=_start,
        initargs=(initializer, initargs),
    )
    try:
        yield pool
    except BaseException:
        kill(pool)
        raise
    pool.shutdown(wait=True)


def kill(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: pending work cancelled, its processes killed mid-evaluation and
    joined. For work nobody will read (the block failed, or only unwanted evaluations are
    left); a pool's processes hold nothing the parent has not stored."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=10)
