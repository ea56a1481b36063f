"""Command line: ``python -m optimize {run,worker,robustness,export,verify,report,markets}
--help``.

One parser; each command module registers its sub-commands here, explicitly:
:mod:`optimize.cli.study` (``run``, ``worker``, ``robustness``), :mod:`optimize.cli.export`
(``export``, ``verify``), :mod:`optimize.cli.report` (``report``) and :mod:`optimize.cli.markets`
(``markets``).

Exit codes, in every command: 0 only when the command did its whole job; 2 with one line
``error: ...`` for bad input or a failed precondition (a :class:`base.errors.ProjectError`, or
a storage that fails while the command runs); 130 (SIGINT) or 143 (SIGTERM) with one line saying
what was stopped. Any other exception is a bug: it shows its traceback (exit 1). ``-v`` shows
the traceback of a project error and of an interruption too.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback

from base.errors import Interrupted, ProjectError, SignalReceived, StorageError
from optimize._version import __version__
from optimize.cli import export, markets, report, study
from optimize.cli._signals import stop_on_signals


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m optimize", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--version", action="version", version=f"lstm-optuna {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and full tracebacks"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    study.add_parsers(sub)
    export.add_parsers(sub)
    report.add_parsers(sub)
    markets.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, handlers=[console]
    )
    try:
        with stop_on_signals(getattr(args, "interrupt_as", SignalReceived)):
            return int(args.func(args) or 0)
    except SignalReceived as exc:
        return interrupted(exc.as_error(), args)
    except Interrupted as exc:
        return interrupted(exc, args)
    except KeyboardInterrupt:  # a SIGINT that came before the handler (or from a library thread)
        return interrupted(Interrupted(2), args)
    except Exception as exc:
        error = project_error(exc, args)
        if error is None:
            raise  # a bug: its traceback is shown
        if args.verbose:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


def interrupted(exc: Interrupted, args: argparse.Namespace) -> int:
    """Print the one line of an interrupted command (none from a worker started by ``run``: its
    parent says it) and return ``128 + signum``."""
    if args.verbose:
        traceback.print_exception(exc)
    if not getattr(args, "managed", False):
        note = getattr(args, "on_interrupt", "")
        print(f"{exc}" + (f"; {note}" if note else ""), file=sys.stderr, flush=True)
    return exc.exit_code


def project_error(exc: BaseException, args: argparse.Namespace) -> ProjectError | None:
    """``exc`` as the project error the user sees, or None when it is a bug.

    A project error is itself; a storage that fails while the command runs (SQLAlchemy's
    ``OperationalError``, Optuna's ``StorageInternalError``: a read-only or vanished database file,
    a server that went away) becomes a :class:`StorageError` naming the storage.
    """
    if isinstance(exc, ProjectError):
        return exc
    storage_errors: tuple[type[BaseException], ...] = ()
    if "sqlalchemy" in sys.modules:
        import sqlalchemy.exc

        storage_errors += (sqlalchemy.exc.OperationalError,)
    if "optuna" in sys.modules:
        import optuna.exceptions

        storage_errors += (optuna.exceptions.StorageInternalError,)
    if storage_errors and isinstance(exc, storage_errors):
        from optimize.study.storage import redact

        cause = exc.__cause__ if exc.__cause__ is not None else exc
        orig = getattr(cause, "orig", None) or cause
        lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
        url = getattr(args, "storage", None)
        where = f"the study storage {redact(url)}" if url else "the study storage"
        return StorageError(
            f"{where} failed while the command ran: {lines[0] if lines else type(orig).__name__}"
            "; check that it is writable and reachable, then rerun the command."
        )
    return None
