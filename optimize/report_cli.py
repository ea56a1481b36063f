"""``python -m optimize report``: write a study's self-contained HTML report (``make report``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import optuna

from optimize.cli import COMMANDS

logger = logging.getLogger(__name__)

SQLITE_LOCK_TIMEOUT_S = 60


def load_existing_study(storage: str, study_name: str) -> optuna.Study:
    """Load a study that must exist (never creates a database or a study).

    Raises:
        FileNotFoundError: a SQLite URL whose file does not exist.
        ValueError: no study of that name in the storage (the message lists the names there).
    """
    engine_kwargs: dict = {}
    if storage.startswith("sqlite:///"):
        path = Path(storage[len("sqlite:///") :])
        if str(path) not in ("", ":memory:") and not path.is_file():
            raise FileNotFoundError(f"storage {storage!r}: the SQLite file {path} does not exist.")
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    rdb = optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs)
    names = optuna.get_all_study_names(storage=rdb)
    if study_name not in names:
        raise ValueError(
            f"storage {storage!r} has no study {study_name!r}; it has {sorted(names)}."
        )
    return optuna.load_study(study_name=study_name, storage=rdb)


def cmd_report(args: argparse.Namespace) -> int:
    from optimize.report import write_report

    study = load_existing_study(args.storage, args.study_name)
    path = write_report(study, args.out, trial_number=args.trial, holdout=not args.no_holdout)
    print(f"report written to {path}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from optimize.study import DEFAULT_STORAGE

    p = subparsers.add_parser(
        "report", help="write a study's self-contained HTML report (offline plotly)"
    )
    p.add_argument(
        "--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})"
    )
    p.add_argument("--study-name", default="default", help="the study (default: default)")
    p.add_argument(
        "--trial",
        type=int,
        default=None,
        help="trial number to report on (default: the best trial)",
    )
    p.add_argument("--out", default=None, help="HTML file (default reports/<study>.html)")
    p.add_argument(
        "--no-holdout",
        action="store_true",
        help="do not evaluate the holdout (a stored holdout result is still shown)",
    )
    p.set_defaults(func=cmd_report)


COMMANDS["report"] = add_parser
