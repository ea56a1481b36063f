"""Command line: ``python -m optimize {run,worker,robustness,export,verify,report,markets}
--help``.

One parser; each command module registers its sub-commands here, explicitly:
:mod:`optimize.cli.study` (``run``, ``worker``, ``robustness``), :mod:`optimize.cli.export`
(``export``, ``verify``), :mod:`optimize.cli.report` (``report``) and :mod:`optimize.cli.markets`
(``markets``).
"""

from __future__ import annotations

import argparse
import logging
import sys

from optimize._version import __version__
from optimize.cli import export, markets, report, study


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m optimize", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--version", action="version", version=f"lstm-optuna {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on the console")
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
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (
        KeyboardInterrupt
    ):  # before `run` forwards signals to workers, or in a command without any
        print("interrupted", file=sys.stderr)
        return 130
