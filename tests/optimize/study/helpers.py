"""What the study's end-to-end tests share: a tiny run config, the CLI in a subprocess, the
PostgreSQL server the parallel tests use."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import yaml

from optimize.config import parse_config

REPO = Path(__file__).resolve().parents[3]
SMOKE_SPACE = REPO / "search_spaces" / "smoke.yaml"

TINY = {
    "data": {"pairs": ["BTC/USDT"], "timeframe": "1h", "start": "2025-06-01", "end": "2025-07-20"},
    "features": {"include_timeframes": ["1h"], "indicator_periods_candles": [10]},
    "walkforward": {"train_days": 20, "test_days": 7, "purge_candles": 12, "holdout_days": 5},
    "backtest": {"fee": 0.001, "max_open_trades": 1},
    "study": {
        "objective": "sharpe",
        "n_trials": 2,
        "n_startup_trials": 2,
        "heartbeat_interval": 1,
        "grace_period": 3,
        "robustness_top": 0,
    },
    "training": {"accelerator": "cpu", "threads_per_worker": 1},
}


def copy_study(source: Path | str, target: Path) -> str:
    """A consistent copy of a SQLite study file (a path or a ``sqlite:///`` URL; its WAL
    included); the copy's storage URL."""
    src = sqlite3.connect(str(source).removeprefix("sqlite:///"))
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return f"sqlite:///{target}"


def write_config(tmp_path: Path, **overrides) -> Path:
    raw = {k: dict(v) for k, v in TINY.items()}
    for section, values in overrides.items():
        raw[section].update(values)
    raw["training"]["cache_dir"] = str(tmp_path / "cache")
    path = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def slow_space(tmp_path: Path) -> Path:
    """The smoke space with many epochs and no early stop: trials long enough to be hit mid-way."""
    raw = yaml.safe_load(SMOKE_SPACE.read_text())
    raw["lstm"].update({"epochs": 40, "early_stopping_patience": 40, "hidden_dim": 32})
    path = tmp_path / "slow-space.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def load(path: Path):
    return parse_config(yaml.safe_load(path.read_text()), str(path))


def cli(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "optimize", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def run_python(
    args: list[str], env: dict[str, str], timeout: float = 600, check: bool = False
) -> subprocess.CompletedProcess:
    """``python ARGS`` in the repository with environment ``env``, its output captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def run_args(
    config: Path, storage: str, name: str, *extra: str, space: Path = SMOKE_SPACE
) -> list[str]:
    """``python -m optimize run`` arguments for a study of ``config`` and ``space``."""
    return [
        "run",
        "--config",
        str(config),
        "--space",
        str(space),
        "--storage",
        storage,
        "--study-name",
        name,
        *extra,
    ]


def worker_args(
    config: Path, storage: str, name: str, n_trials: int, index: int = 0, space: Path = SMOKE_SPACE
) -> list[str]:
    return [
        "worker",
        "--config",
        str(config),
        "--space",
        str(space),
        "--storage",
        storage,
        "--study-name",
        name,
        "--n-trials",
        str(n_trials),
        "--worker-index",
        str(index),
        "--threads",
        "1",
        "--log-file",
        str(Path(config).parent / f"{name}.log"),
    ]


def states(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


PG_ENV = "LSTM_OPTUNA_TEST_PG"
PG_URL = os.environ.get(PG_ENV, "postgresql+psycopg2://postgres@127.0.0.1:5432/test")


def pg_unreachable() -> str | None:
    """Why nothing answers at the server's address, or None when something does.

    Only this is a reason to skip: a wrong database name, user or password, or a missing driver,
    must fail the test, not look like "no server".
    """
    import socket

    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    address = (url.host or "localhost", url.port or 5432)
    try:
        socket.create_connection(address, timeout=5).close()
    except OSError as exc:  # connection refused, no route, unknown host, timeout
        return f"PostgreSQL not reachable at {address[0]}:{address[1]}: {exc}"
    return None


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "lstm_optuna_test") -> Iterator[str]:
    """A new, uniquely named database on the server of :data:`PG_URL` (dropped afterwards); its
    URL. The caller skips when :func:`pg_unreachable`."""
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    params = {
        "host": url.host,
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }
    admin = psycopg2.connect(**params)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()
