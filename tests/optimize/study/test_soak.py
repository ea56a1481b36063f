"""Reliability soak: many workers on one study while random workers are SIGKILLed.

Not in the default suite (``-m slow``). Sizes come from the environment so a small machine can run
it scaled down::

    LSTM_OPTUNA_SOAK_WORKERS=3 LSTM_OPTUNA_SOAK_TRIALS=10 LSTM_OPTUNA_SOAK_KILLS=3 \\
        python -m pytest tests/optimize/study/test_soak.py -m slow -s

Defaults: 8 workers, 50 trials, 12 kills, on SQLite and on the PostgreSQL server at 127.0.0.1
(loopback only; skipped when nothing answers there). Each kill hits a worker that is running a
trial; a replacement worker starts. At the end every trial is COMPLETE, PRUNED or
FAIL with a retry, none RUNNING or WAITING, every failed trial's parameters live on in its retry,
and trial numbers are unique and contiguous.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.optimize.study.helpers import PG_URL, cli, pg_unreachable, worker_args, write_config

WORKERS = int(os.environ.get("LSTM_OPTUNA_SOAK_WORKERS", "8"))
TRIALS = int(os.environ.get("LSTM_OPTUNA_SOAK_TRIALS", "50"))
KILLS = int(os.environ.get("LSTM_OPTUNA_SOAK_KILLS", "12"))
SEED = int(os.environ.get("LSTM_OPTUNA_SOAK_SEED", "0"))
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _running_pids(storage: str, name: str) -> set[int]:
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return set()
    return {
        t.user_attrs["worker_pid"]
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if "worker_pid" in t.user_attrs
    }


def soak(tmp_path: Path, storage: str, name: str) -> dict[str, int]:
    """Run the soak; return its figures (trials, kills, recovered)."""
    config = write_config(
        tmp_path,
        study={
            "n_trials": TRIALS,
            "n_startup_trials": 3,
            "heartbeat_interval": 1,
            "grace_period": 3,
            "max_retry": 50,
        },
    )
    rng = random.Random(SEED)
    procs: dict[int, subprocess.Popen] = {}
    next_index = 0

    def start() -> None:
        nonlocal next_index
        procs[next_index] = cli(*worker_args(config, storage, name, TRIALS, next_index))
        next_index += 1

    for _ in range(WORKERS):
        start()
    kills = 0
    deadline = time.monotonic() + 3600
    while kills < KILLS and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 3.0))
        live = {p.pid: k for k, p in procs.items() if p.poll() is None}
        if not live:
            break
        busy = sorted(pid for pid in _running_pids(storage, name) if pid in live)
        if not busy:  # still loading, or waiting for others: a kill would hit no trial
            continue
        victim = rng.choice(busy)
        os.kill(victim, signal.SIGKILL)  # only our own worker processes
        procs[live[victim]].wait()
        kills += 1
        start()  # a replacement, as a scheduler would restart a preempted worker
    outs = {k: p.communicate(timeout=3600)[0] for k, p in procs.items()}
    bad = {
        k: out
        for k, p in procs.items()
        if p.returncode not in (0, -signal.SIGKILL)
        for out in [outs[k]]
    }
    assert not bad, bad

    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) and sorted(numbers) == list(range(len(trials)))
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len([t for t in trials if t.state in FINISHED]) >= TRIALS
    failed = [t for t in trials if t.state == TrialState.FAIL]
    for trial in failed:
        retries = [
            t
            for t in trials
            if trial.number in t.system_attrs.get("retry_history", [])
            and t.system_attrs["retry_history"][-1] == trial.number
        ]
        assert len(retries) == 1, f"trial {trial.number} failed without a retry"
        assert trial.params.items() <= retries[0].params.items(), "a retry lost parameters"
    assert all(t.state in (*FINISHED, TrialState.FAIL) for t in trials)
    figures = {
        "trials": len(trials),
        "finished": len(trials) - len(failed),
        "kills": kills,
        "recovered": len(failed),
    }
    print(f"\nsoak {storage.split(':', 1)[0]}: {WORKERS} workers, target {TRIALS}: {figures}")
    return figures


@pytest.mark.slow
def test_soak_sqlite(tmp_path):
    soak(tmp_path, f"sqlite:///{tmp_path / 'soak.db'}", "soak")


@pytest.mark.slow
@pytest.mark.postgres
def test_soak_postgres(tmp_path):
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    name = f"soak-{uuid.uuid4().hex[:8]}"
    try:
        soak(tmp_path, PG_URL, name)
    finally:
        optuna.delete_study(study_name=name, storage=PG_URL)
