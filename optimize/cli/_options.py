"""Options and checks the command modules share (``--storage``, ``--study-name``, ``--trial``,
the study inputs)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CONFIG = "configs/default.yaml"
DEFAULT_SPACE = "search_spaces/default.yaml"
LOG_DIR = Path("logs")


def storage_option(p: argparse.ArgumentParser) -> None:
    """``--storage``: an Optuna storage URL, :data:`optimize.study.runner.DEFAULT_STORAGE` when not
    given."""
    from optimize.study.storage import DEFAULT_STORAGE

    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"Optuna storage URL (default {DEFAULT_STORAGE}; e.g. postgresql+psycopg2://user@host/db)",
    )


def study_name_option(p: argparse.ArgumentParser, text: str, *, required: bool = False) -> None:
    """``--study-name`` (help ``text``): required, or ``default`` when not given."""
    if required:
        p.add_argument("--study-name", required=True, help=text)
    else:
        p.add_argument("--study-name", default="default", help=f"{text} (default: default)")


def trial_option(p: argparse.ArgumentParser, text: str) -> None:
    """``--trial`` (help ``text``): a trial number; None (the best trial) when not given."""
    p.add_argument("--trial", type=int, default=None, help=f"{text} (default: the best trial)")


def study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"run config YAML (default {DEFAULT_CONFIG})"
    )
    p.add_argument(
        "--space", default=DEFAULT_SPACE, help=f"search space YAML (default {DEFAULT_SPACE})"
    )
    storage_option(p)
    study_name_option(p, "study to create or resume")
    p.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help=(
            "finished trials the study should hold in total (default: the config's study.n_trials)"
        ),
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds after which workers start no new trial (default: the config's study.timeout)",
    )


def load_inputs(args: argparse.Namespace):
    from optimize.config import load_config
    from optimize.search.space import load_space

    return load_config(args.config), load_space(args.space)


def check_study_args(args: argparse.Namespace) -> None:
    """``--n-trials``, ``--timeout`` (seconds) and ``--workers`` must make sense before anything
    starts (the project's value checks, :mod:`lstm.checks`)."""
    from lstm.checks import check_int, check_number

    if args.n_trials is not None:
        check_int("--n-trials", args.n_trials, 1)
    if args.timeout is not None:
        check_number("--timeout", args.timeout, 0.0, low_open=True)
    check_int("--workers", getattr(args, "workers", 1), 1)
