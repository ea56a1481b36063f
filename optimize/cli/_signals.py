"""SIGINT and SIGTERM in every command: the first one stops the command, wherever it is.

:func:`stop_on_signals` installs one handler for both signals for the length of a command. The
first signal raises in the main thread, at whatever the command is doing (a Lightning fit, a
backtest, freqtrade inside ``verify``, storage I/O); the exception unwinds through the
``finally`` blocks and context managers on the way (temporary folders are removed, Lightning
tears its fit down) and the command line prints one line and exits with ``128 + signum``. Later
signals are ignored, so that this cleanup is not cut short.

What it raises: :class:`base.errors.SignalReceived`, a ``BaseException`` that the ``except
Exception`` of third-party code cannot swallow (freqtrade's FreqAI skips a pair whose training
raised an ``Exception`` and goes on training the next); in a worker,
:class:`base.errors.Interrupted`, an ``Exception``, which Optuna catches to mark the running
trial FAILED before it re-raises it.

An exception raised asynchronously can land where Python cannot pass it on: inside a garbage
collector callback or a ``__del__`` (SQLAlchemy and torch register such callbacks), where it is
printed as "Exception ignored in ..." and dropped, and the command would run on. While the block
is open, :func:`stop_on_signals` watches for exactly that (``sys.unraisablehook``): the dropped
exception is not printed, and the signal is sent again, from another thread, so that it is raised
at the command's next instruction.

Lightning: ``Trainer.fit`` replaces the SIGTERM handler for the length of the fit with its own,
which only notes the signal and ends the fit with ``SystemExit(None)`` (exit status 0) at the
next batch. When a handler is already installed it calls that one too, right after its own, and
restores it when the fit ends; so the handler installed here still raises inside a fit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from base.errors import SignalReceived

SIGNALS = (signal.SIGINT, signal.SIGTERM)
RESEND_S = 0.05
"""Seconds after a dropped exception before its signal is sent again (later signals are ignored
meanwhile, as while the command stops)."""


class StopOnSignal:
    """The signal handler: raise ``raises(signum)`` on the first signal, ignore later ones.

    Args:
        raises: the exception type to raise (called with the signal number).

    Attributes:
        received: the first signal's number (None: none yet).
        raised: the exception raised for it (None: none yet).
    """

    def __init__(self, raises: Callable[[int], BaseException] = SignalReceived) -> None:
        self.raises = raises
        self.received: int | None = None
        self.raised: BaseException | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return  # the command is already stopping: let its cleanup finish
        self.received = signum
        self.raised = self.raises(signum)
        raise self.raised

    def dropped(self, unraisable: object) -> bool:
        """``sys.unraisablehook``'s view: when the exception dropped is the one this handler raised
        (it landed in a garbage-collector callback or a ``__del__``), send the signal again a
        moment later, from another thread (:data:`RESEND_S`: the hook has returned by then, so the
        exception is raised in the command itself); True then (nothing is printed)."""
        exc = getattr(unraisable, "exc_value", None)
        if exc is None or exc is not self.raised:
            return False
        threading.Thread(target=self._resend, daemon=True).start()
        return True

    def _resend(self) -> None:
        time.sleep(RESEND_S)
        signum, self.received, self.raised = self.received, None, None
        if signum is not None:
            os.kill(os.getpid(), signum)


@contextlib.contextmanager
def stop_on_signals(
    raises: Callable[[int], BaseException] = SignalReceived,
) -> Iterator[StopOnSignal]:
    """Within the block, SIGINT and SIGTERM raise ``raises(signum)`` (once); the previous
    handlers are restored on exit. Outside the main thread (no handlers can be set) it does
    nothing."""
    handler = StopOnSignal(raises)
    if threading.current_thread() is not threading.main_thread():
        yield handler
        return
    previous_hook = sys.unraisablehook

    def hook(unraisable: object) -> None:
        if not handler.dropped(unraisable):
            previous_hook(unraisable)  # type: ignore[arg-type]

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    sys.unraisablehook = hook
    try:
        yield handler
    finally:
        sys.unraisablehook = previous_hook
        for signum, old in previous.items():
            signal.signal(signum, old)
