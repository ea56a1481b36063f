"""``python -m optimize report``: write a study's self-contained HTML report (``make report``)."""

from __future__ import annotations

import argparse

from optimize.cli import COMMANDS, storage_option, study_name_option, trial_option


def cmd_report(args: argparse.Namespace) -> int:
    from optimize.report import write_report
    from optimize.study import load_existing_study

    study = load_existing_study(args.storage, args.study_name)
    path = write_report(study, args.out, trial_number=args.trial, holdout=not args.no_holdout)
    print(f"report written to {path}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="write a study's self-contained HTML report (offline plotly)"
    )
    storage_option(p)
    study_name_option(p, "the study")
    trial_option(p, "trial number to report on")
    p.add_argument("--out", default=None, help="HTML file (default reports/<study>.html)")
    p.add_argument(
        "--no-holdout",
        action="store_true",
        help="do not evaluate the holdout (a stored holdout result is still shown)",
    )
    p.set_defaults(func=cmd_report)


COMMANDS["report"] = add_parser
