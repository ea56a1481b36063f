"""Options and checks the command modules share (``--storage``, ``--study-name``, ``--trial``,
the study inputs, the outputs a command will write)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from base.errors import InputError, OutputError

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
    p.add_argument(
        "--data-dir",
        default=None,
        help="candle folder with <exchange>/<PAIR>-<timeframe>.feather, instead of the run "
        "config's data.datadir (an installed package ships no candles)",
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
    """The run config (with ``--data-dir`` as its ``data.datadir`` when given) and the space."""
    from optimize.config import load_config
    from optimize.search.space import load_space

    config = load_config(args.config)
    if getattr(args, "data_dir", None) is not None:
        config = config.with_datadir(args.data_dir)
    return config, load_space(args.space)


STUDY_NAME_MAX = 512
"""Characters a study name may have: the width of Optuna's ``study_name`` column."""


def check_study_name(name: str) -> str:
    """A study name the storage can hold: not empty, at most :data:`STUDY_NAME_MAX` characters."""
    from base.checks import fail

    if not name.strip():
        fail("--study-name", name, "a non-empty name")
    if len(name) > STUDY_NAME_MAX:
        raise InputError(
            f"--study-name must have at most {STUDY_NAME_MAX} characters (the storage's limit), "
            f"but got {len(name)} ({name[:20]}...)."
        )
    return name


def check_study_args(args: argparse.Namespace) -> None:
    """``--study-name``, ``--n-trials``, ``--timeout`` (seconds) and ``--workers`` must make sense
    before anything starts (the project's value checks, :mod:`base.checks`)."""
    from base.checks import check_int, check_number

    check_study_name(args.study_name)
    if args.n_trials is not None:
        check_int("--n-trials", args.n_trials, 1)
    if args.timeout is not None:
        check_number("--timeout", args.timeout, 0.0, low_open=True)
    check_int("--workers", getattr(args, "workers", 1), 1)


def check_output(path: Path | str, what: str, *, folder: bool = False) -> Path:
    """Check that ``path`` (a file, or a folder with ``folder``) can be written, creating nothing.

    An existing path must be of the right kind and writable; a missing one must be creatable:
    its nearest existing parent is a writable folder and every missing name fits the file
    system's limit. Writability is probed with a temporary file (deleted at once), so it holds
    for any user, immutable folders included.

    Args:
        path: the output.
        what: what it is, for the message (``"the log file"``, ``"--out"``).
        folder: ``path`` is a folder (else a file).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputError: naming ``what``, the path and the reason.
    """
    path = Path(path)
    kind = "folder" if folder else "file"

    def refuse(reason: str) -> OutputError:
        return OutputError(f"cannot write {what} {path}: {reason}; expected a writable {kind}.")

    existing = path
    missing: list[str] = []
    while not existing.exists() and not existing.is_symlink():
        missing.append(existing.name)
        existing = existing.parent
    if missing:
        if not existing.is_dir():
            raise refuse(f"{existing} is not a folder")
        limit = os.pathconf(existing, "PC_NAME_MAX")
        for name in missing:
            if len(os.fsencode(name)) > limit:
                raise refuse(f"the name {name[:20]}... is longer than {limit} bytes")
        probe_dir = existing
    elif path.is_symlink() and not path.exists():
        raise refuse("it is a dangling symbolic link")
    elif folder and not path.is_dir():
        raise refuse("it is a file, not a folder")
    elif not folder and path.is_dir():
        raise refuse("it is a folder, not a file")
    else:
        probe_dir = path if folder else path.parent
    try:
        if not folder and path.exists():
            with open(path, "ab"):
                pass
        with tempfile.TemporaryFile(dir=probe_dir):
            pass
    except OSError as exc:
        raise refuse(exc.strerror or str(exc)) from None
    return path
