"""SIGINT and SIGTERM in a command: raised once, and raised again when the first landed where
Python drops exceptions (a garbage-collector callback, a ``__del__``)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from base.errors import Interrupted, SignalReceived
from optimize.cli._signals import stop_on_signals


class _SignalledInDel:
    """Sends ``signum`` to this process from its ``__del__`` and runs Python code after it, so
    the handler's exception is raised inside ``__del__`` and dropped there."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)
        for _ in range(10_000):  # the handler runs here, inside __del__
            pass


def _wait_for_it(seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("signum", "raises"),
    [(signal.SIGINT, SignalReceived), (signal.SIGTERM, Interrupted)],
)
def test_a_signal_dropped_in_a_destructor_is_raised_again(signum, raises, capsys):
    with pytest.raises(raises) as caught, stop_on_signals(raises) as handler:
        obj = _SignalledInDel(signum)
        del obj  # the first exception is dropped inside __del__ ...
        _wait_for_it()  # ... and the signal is raised again here
    assert caught.value.signum == signum and handler.received == signum
    assert "Exception ignored" not in capsys.readouterr().err


def test_later_signals_are_ignored_and_the_handlers_restored():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SignalReceived), stop_on_signals() as handler:
        os.kill(os.getpid(), signal.SIGINT)
        _wait_for_it()
    handler(signal.SIGINT, None)  # a second signal while the command stops: nothing raised
    assert signal.getsignal(signal.SIGINT) is before
