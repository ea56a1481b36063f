"""Shared fixtures: the embedded real candles (never synthetic prices), one smoke study per
session."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EMBEDDED_DATADIR = REPO_ROOT / "data"
SMOKE_CONFIG = REPO_ROOT / "configs" / "smoke.yaml"
SMOKE_SPACE = REPO_ROOT / "search_spaces" / "smoke.yaml"
SMOKE_STUDY = "smoke"


@pytest.fixture(scope="session")
def datadir() -> Path:
    """The embedded freqtrade-layout data directory (``data/binance/*.feather``)."""
    return EMBEDDED_DATADIR


def assert_rows(rows: list) -> None:
    """Benchmark rows are well formed: ``benchmarks.Row`` objects with a name, unit and goal, a
    value >= 0, and a verdict exactly when the goal is not ``"info"``."""
    from benchmarks import Row

    assert rows
    for row in rows:
        assert isinstance(row, Row), row
        assert row.name and row.unit and row.goal
        assert row.value >= 0
        assert (row.met is None) == (row.goal == "info"), row


@pytest.fixture(scope="session")
def smoke_study_file(tmp_path_factory) -> Path:
    """A finished two-trial study of ``configs/smoke.yaml`` (2 pairs, 3 folds, holdout
    2025-08-05..2025-08-15; real candles, real training), named ``smoke``, built once per session.

    Never changed: tests work on their own copy (:func:`smoke_study`).
    """
    from optimize.config import load_config
    from optimize.search.space import load_space
    from optimize.study.runner import run_worker

    path = tmp_path_factory.mktemp("smoke-study") / "study.db"
    run_worker(
        load_config(SMOKE_CONFIG),
        load_space(SMOKE_SPACE),
        storage=f"sqlite:///{path}",
        study_name=SMOKE_STUDY,
        n_trials=2,
    )
    return path


@pytest.fixture(scope="module")
def smoke_study(smoke_study_file, tmp_path_factory) -> str:
    """Storage URL of this module's own copy of the session's smoke study (study ``smoke``)."""
    copy = tmp_path_factory.mktemp("smoke-copy") / "study.db"
    source, target = sqlite3.connect(smoke_study_file), sqlite3.connect(copy)
    try:
        source.backup(target)  # consistent even while the source's WAL holds the last commits
    finally:
        source.close()
        target.close()
    return f"sqlite:///{copy}"


@pytest.fixture
def unwritable():
    """``unwritable(path)`` makes the folder (created if needed) or existing file ``path``
    unwritable for this process, whoever runs the tests: immutable (``chattr +i``) as root,
    read-only otherwise; each is undone at teardown. Skips when neither takes effect here."""
    import contextlib
    import os
    import subprocess
    import tempfile

    made: list[tuple[Path, str]] = []

    def make(path: Path) -> Path:
        if not path.exists():
            path.mkdir(parents=True)
        if os.geteuid() == 0:
            subprocess.run(["chattr", "+i", str(path)], check=False, capture_output=True)
            made.append((path, "chattr"))
        else:
            path.chmod(0o555 if path.is_dir() else 0o444)
            made.append((path, "chmod"))
        try:
            if path.is_dir():
                with tempfile.TemporaryFile(dir=path):
                    pass
            else:
                with open(path, "ab"):
                    pass
        except OSError:
            return path
        pytest.skip(f"cannot make {path} unwritable here ({made[-1][1]} had no effect)")

    yield make
    for path, how in reversed(made):
        with contextlib.suppress(OSError):
            if how == "chattr":
                subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
            else:
                path.chmod(0o755 if path.is_dir() else 0o644)
