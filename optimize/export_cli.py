"""``python -m optimize export`` and ``python -m optimize verify`` (registered in :data:`optimize.cli.COMMANDS`)."""

from __future__ import annotations

import argparse

from optimize.cli import COMMANDS, storage_option, study_name_option, trial_option


def cmd_export(args: argparse.Namespace) -> int:
    from optimize.export import export_trial

    result = export_trial(args.study_name, args.out, storage=args.storage, trial_number=args.trial)
    print(f"exported trial {result.trial_number} of study {result.study_name!r} to {result.out_dir}")
    print(f"  config:     {result.config_path}")
    print(f"  parameters: {result.params_path}")
    print(f"  run:        {result.command}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import sys

    from freqtrade.exceptions import OperationalException

    from optimize.verify import format_comparison, verify_export

    try:
        result = verify_export(args.export, storage=args.storage, timerange=args.timerange,
                               datadir=args.datadir)
    except OperationalException as exc:  # freqtrade's own errors (config, data, strategy)
        print(f"error: freqtrade: {exc}", file=sys.stderr)
        return 2
    print(format_comparison(result))
    return 0


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trial as a freqtrade config + strategy parameter file")
    study_name_option(p, "study to export from", required=True)
    storage_option(p)
    trial_option(p, "trial number")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_export)


def add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="backtest an export with freqtrade (FreqAI, offline) over the holdout")
    p.add_argument("--export", required=True, help="folder written by `export`")
    p.add_argument("--storage", default=None, help="study storage URL (default: recorded in the export)")
    p.add_argument("--timerange", default=None, help="freqtrade timerange (default: the study's holdout)")
    p.add_argument("--datadir", default=None, help="data folder with <exchange>/<PAIR>-<tf>.feather "
                   "(default: the study's)")
    p.set_defaults(func=cmd_verify)


COMMANDS["export"] = add_export
COMMANDS["verify"] = add_verify
