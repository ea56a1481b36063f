"""``python -m optimize report``: write a study's self-contained HTML report (``make report``)."""

from __future__ import annotations

import argparse

from optimize.cli import COMMANDS


def cmd_report(args: argparse.Namespace) -> int:
    from optimize.report import write_report
    from optimize.study import load_existing_study

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
