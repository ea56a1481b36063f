"""``python -m optimize export`` and ``python -m optimize verify``: a trial as a freqtrade config,
and freqtrade's backtest of it matched with the study's trades."""

from __future__ import annotations

import argparse

from optimize.cli._options import check_output, storage_option, study_name_option, trial_option


def cmd_export(args: argparse.Namespace) -> int:
    from optimize.freqtrade.export import export_trial

    check_output(args.out, "the export folder", folder=True)  # before the holdout is evaluated
    result = export_trial(args.study_name, args.out, storage=args.storage, trial_number=args.trial)
    print(
        f"exported trial {result.trial_number} of study {result.study_name!r} to {result.out_dir}"
    )
    print(f"  config:     {result.config_path}")
    print(f"  parameters: {result.params_path}")
    print(f"  run:        {result.command}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import json
    import sys

    from freqtrade.exceptions import OperationalException

    from optimize.freqtrade.verify import format_comparison, verify_export

    try:
        result = verify_export(
            args.export, span=args.span, timerange=args.timerange, datadir=args.datadir
        )
    except OperationalException as exc:  # freqtrade's own errors (config, data, strategy)
        print(f"error: freqtrade: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        print(format_comparison(result))
    if args.strict and not result.all_match:
        print(
            f"error: --strict: {len(result.study_only)} study-only and "
            f"{len(result.freqtrade_only)} freqtrade-only trades"
            + ("" if result.study is not None else " (no study trades in the export)"),
            file=sys.stderr,
        )
        return 1
    return 0


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a trial as a freqtrade config + strategy parameter file"
    )
    study_name_option(p, "study to export from", required=True)
    storage_option(p)
    trial_option(p, "trial number")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_export, on_interrupt="nothing was exported; rerun the same command")


def add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="backtest an export with freqtrade (FreqAI, offline) and match "
        "its trades with the study's",
    )
    p.add_argument("--export", required=True, help="folder written by `export`")
    p.add_argument(
        "--span",
        choices=("holdout", "walkforward"),
        default="holdout",
        help="the study span to backtest (default: holdout)",
    )
    p.add_argument(
        "--timerange",
        default=None,
        help="freqtrade timerange instead of a span (study side: its trades inside it)",
    )
    p.add_argument(
        "--datadir",
        default=None,
        help="data folder with <exchange>/<PAIR>-<tf>.feather (default: the study's)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 unless every trade of both sides matches"
    )
    p.set_defaults(
        func=cmd_verify,
        on_interrupt="the verification did not finish (its temporary folder is removed)",
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``export`` and ``verify``."""
    add_export(sub)
    add_verify(sub)
