"""``python -m optimize report``: write a study's self-contained HTML report (``make report``)."""

from __future__ import annotations

import argparse

from optimize.cli._options import check_output, storage_option, study_name_option, trial_option


def cmd_report(args: argparse.Namespace) -> int:
    import json
    import sys

    from optimize.analysis.html import default_report_path, write_inputs
    from optimize.analysis.report import collect, report_json, save_dashboard_note
    from optimize.study.storage import load_existing_study

    out = args.out if args.out is not None else default_report_path(args.study_name)
    check_output(out, "the report")  # before the holdout is evaluated
    study = load_existing_study(args.storage, args.study_name)
    inputs = collect(study, trial_number=args.trial, holdout=not args.no_holdout)
    path = write_inputs(inputs, out)
    save_dashboard_note(inputs)
    if args.json:
        print(json.dumps(report_json(inputs), indent=2))
        print(
            f"report written to {path}; verdict saved as the study's optuna-dashboard note",
            file=sys.stderr,
        )
    else:
        print(f"report written to {path}; verdict saved as the study's optuna-dashboard note")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``report``."""
    p = sub.add_parser("report", help="write a study's self-contained HTML report (offline plotly)")
    storage_option(p)
    study_name_option(p, "the study")
    trial_option(p, "trial number to report on")
    p.add_argument("--out", default=None, help="HTML file (default reports/<study>.html)")
    p.add_argument(
        "--no-holdout",
        action="store_true",
        help="do not evaluate the holdout (a stored holdout result is still shown)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object on stdout (the page is still written)",
    )
    p.set_defaults(func=cmd_report, on_interrupt="no report was written; rerun the same command")
