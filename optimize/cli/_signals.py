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

Lightning: ``Trainer.fit`` replaces the SIGTERM handler for the length of the fit with its own,
which only notes the signal and ends the fit with ``SystemExit(None)`` (exit status 0) at the
next batch. When a handler is already installed it calls that one too, right after its own, and
restores it when the fit ends; so the handler installed here still raises inside a fit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from base.errors import SignalReceived

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    """The signal handler: raise ``raises(signum)`` on the first signal, ignore later ones.

    Args:
        raises: the exception type to raise (called with the signal number).

    Attributes:
        received: the first signal's number (None: none yet).
    """

    def __init__(self, raises: Callable[[int], BaseException] = SignalReceived) -> None:
        self.raises = raises
        self.received: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return  # the command is already stopping: let its cleanup finish
        self.received = signum
        raise self.raises(signum)


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
    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield handler
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
