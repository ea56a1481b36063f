"""The project's errors: one base class for every error raised on bad input or a failed
precondition, so that the command line can tell a user's mistake from a bug.

:class:`ProjectError` is the base; the subclasses say what kind of input was wrong, for callers
that need to tell them apart. Each keeps the built-in base callers caught before it existed
(``ValueError`` for a bad value, ``FileNotFoundError`` for a missing pair, ``OSError`` for an
output that cannot be written), so ``except ValueError`` still sees them.

The message of every project error is one line naming the file, key or value and what was
expected. ``python -m optimize`` prints it as ``error: <message>`` and exits with the error's
:attr:`ProjectError.exit_code` (2); any other exception is a bug and shows its traceback.
:class:`Interrupted` (SIGINT, SIGTERM) exits with ``128 + signal number``.

This module sits on the project's floor: it imports nothing of the project, and every package
(``lstm``, ``strategy``, ``optimize``) may import it.
"""

from __future__ import annotations

import signal

__all__ = [
    "ConfigError",
    "DataError",
    "ExportError",
    "InputError",
    "Interrupted",
    "OutputError",
    "ProjectError",
    "SignalReceived",
    "StorageError",
    "StudyError",
]


class ProjectError(Exception):
    """Base of every error the project raises on bad input or a failed precondition."""

    exit_code: int = 2
    """The command line's exit status for this error."""


class InputError(ProjectError, ValueError):
    """A bad value: a command-line argument, a setting, a parameter (:mod:`base.checks`)."""


class ConfigError(InputError):
    """A run config or search space file that cannot be used; the message names file, key and
    value."""


class DataError(InputError):
    """Candles (or other input data) that cannot be used: missing, malformed, too short for the
    folds."""


class StorageError(InputError):
    """A study storage that cannot be opened or written, or that vanished while a study ran; the
    message names the URL (password hidden)."""


class StudyError(InputError):
    """A study that cannot do what was asked: absent, made with another config, no complete
    trial, a stored record this version cannot read."""


class ExportError(InputError):
    """An export folder that cannot be used: not written by ``export``, a file missing or not
    valid JSON, a span it does not have."""


class OutputError(ProjectError, OSError):
    """An output path that cannot be written (a log, a report, an export folder); the message
    names it."""


class Interrupted(ProjectError):
    """SIGINT or SIGTERM reached a command: it stops and exits with ``128 + signum``.

    An ``Exception``, not a ``KeyboardInterrupt``: Lightning turns a KeyboardInterrupt inside
    ``fit`` into ``sys.exit(1)``; an ordinary exception passes through its teardown, and through
    Optuna, which marks the running trial FAILED (so a worker raises this one). Where third-party
    code swallows ``Exception`` on the way (freqtrade's FreqAI skips a pair whose training raised
    one), the signal travels as :class:`SignalReceived` and becomes this error at the command
    line.

    Args:
        signum: the signal's number.
        message: what was stopped and how to resume (default: the signal's name).
    """

    def __init__(self, signum: int, message: str | None = None) -> None:
        self.signum = int(signum)
        super().__init__(message or f"interrupted by {signal_name(self.signum)}")

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 128 + self.signum


class SignalReceived(BaseException):
    """SIGINT or SIGTERM on its way out of a command: a ``BaseException`` that no ``except
    Exception`` swallows (nor Lightning's ``KeyboardInterrupt`` handling, which exits 1); the
    command line reports it as :class:`Interrupted`. Not an error: control flow.

    Args:
        signum: the signal's number.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal_name(self.signum)}")

    def as_error(self) -> Interrupted:
        """The :class:`Interrupted` the command line reports."""
        return Interrupted(self.signum)


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15; ``"signal N"`` for a number the platform does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
