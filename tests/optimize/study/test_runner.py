"""The study end to end on the embedded data: smoke run, parallel workers on SQLite and PostgreSQL,
a SIGKILLed worker, Ctrl-C of `run`, pruning, resume checks.

Real Optuna storages, real Lightning training, real candles; a tiny model and a short span keep
each trial to a couple of seconds.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from optimize.search.space import load_space
from optimize.study.runner import open_study, run_worker
from optimize.study.storage import make_storage
from tests.optimize.study.helpers import (
    PG_ENV,
    PG_URL,
    REPO,
    SMOKE_SPACE,
    cli,
    load,
    pg_unreachable,
    slow_space,
    states,
    worker_args,
    write_config,
)


def test_smoke_study_records_folds_and_baselines(tmp_path):
    path = write_config(tmp_path)
    config, space = load(path), load_space(SMOKE_SPACE)
    storage = f"sqlite:///{tmp_path / 'smoke.db'}"
    ran = run_worker(config, space, storage=storage, study_name="smoke", n_trials=2)
    assert ran == 2
    study = optuna.load_study(study_name="smoke", storage=storage)
    # n_startup_trials=2: the median pruner cannot act on the first two trials
    assert states(study) == {"COMPLETE": 2}
    done = study.get_trials(states=(TrialState.COMPLETE,))
    for trial in done:
        attrs = trial.user_attrs
        assert len(attrs["folds"]) == 3  # 44 days: 20 train + 12 h purge + 3 x 7 test
        for fold in attrs["folds"]:
            assert {"score", "metrics", "no_model", "buy_and_hold", "pairs"} <= set(fold)
            assert "total_trades" in fold["metrics"] and "profit_total" in fold["no_model"]
            assert "BTC/USDT" in fold["buy_and_hold"]["per_pair"]
        assert set(attrs["baselines"]) == {"buy_and_hold", "no_model"}
        assert attrs["trade_count"] == attrs["oos_metrics"]["total_trades"]
        assert len(attrs["oos_daily_returns"]) >= 13
        assert attrs["resolved_params"]["lstm"]["hidden_dim"] == 8
        assert trial.value == pytest.approx(
            attrs["oos_metrics"]["sharpe"]
        )  # 0.0 without trades, as stored
    # re-running resumes the named study: the target is reached, nothing new runs
    assert run_worker(config, space, storage=storage, study_name="smoke", n_trials=2) == 0
    # ... and a different space is refused instead of corrupting the study
    with pytest.raises(ValueError, match="different space"):
        open_study(
            storage,
            "smoke",
            config,
            load_space(REPO / "search_spaces" / "strategy-only.yaml"),
            seed=0,
        )


def test_config_timeout_stops_the_worker(tmp_path):
    """study.timeout applies when the caller gives none: the first trial starts at once, and once
    it has run (longer than 0.1 s) the worker starts no other, far below n_trials."""
    config = load(write_config(tmp_path, study={"n_trials": 3, "timeout": 0.1}))
    storage = f"sqlite:///{tmp_path / 'timeout.db'}"
    ran = run_worker(config, load_space(SMOKE_SPACE), storage=storage, study_name="timeout")
    assert ran == 1
    study = optuna.load_study(study_name="timeout", storage=storage)
    assert states(study) == {"COMPLETE": 1}


def test_zero_trade_trial_is_scored_not_crashed(tmp_path):
    config, space = load(write_config(tmp_path)), load_space(SMOKE_SPACE)
    study = open_study(f"sqlite:///{tmp_path / 'z.db'}", "z", config, space, seed=0)
    # absolute threshold far above any T: never enters
    from optimize.evaluation.inputs import StudyData
    from optimize.evaluation.trial import evaluate
    from optimize.search.objectives import get_objective
    from optimize.search.space import TrialParams

    params = space.sample(
        optuna.trial.FixedTrial(
            {
                "dropout_percent": 0.0,
                "window_size": 3,
                "learning_rate": 3e-3,
                **{f"w{i}": 0.5 for i in range(9)},
                "entry_threshold": 0.9,
                "exit_gap": 0.1,
            }
        )
    )
    params = TrialParams(params.lstm, params.weights, type(params.signal)("absolute", 1e9, 0.0))
    out = evaluate(StudyData.load(config), params, get_objective("sharpe"))
    assert out.oos_metrics["total_trades"] == 0
    assert out.values == (0.0,)
    assert all(f.metrics["total_trades"] == 0 for f in out.folds)
    assert study.study_name == "z" and study.trials == []  # evaluate() alone stores nothing


def _parallel(tmp_path: Path, storage: str, name: str) -> None:
    path = write_config(tmp_path)
    config, space = load(path), load_space(SMOKE_SPACE)
    open_study(storage, name, config, space, seed=0)  # create once, as `run` does
    target = 8
    procs = [cli(*worker_args(path, storage, name, target, k)) for k in range(4)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(outs)
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) >= target  # MaxTrialsCallback: each worker stops once the study holds 8
    assert len(finished) <= target + 3  # at most one in-flight trial per other worker overshoots
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == len(trials)
    assert sorted(numbers) == list(range(len(trials)))
    pids = {t.user_attrs.get("worker_pid") for t in trials}
    assert len(pids) >= 2, "trials should come from several worker processes"
    # distinct seeds per worker: no two trials sampled the very same parameters
    keys = [tuple(sorted(t.params.items())) for t in trials]
    assert len(keys) == len(set(keys))


def test_parallel_workers_sqlite(tmp_path):
    _parallel(tmp_path, f"sqlite:///{tmp_path / 'par.db'}", "par")


@pytest.mark.postgres
def test_parallel_workers_postgres(tmp_path):
    reason = pg_unreachable()
    if reason:
        if os.environ.get("CI") or PG_ENV in os.environ:
            pytest.fail(f"{reason} (CI or {PG_ENV} is set: the server must be there)")
        pytest.skip(reason)
    name = f"par-{uuid.uuid4().hex[:8]}"
    try:
        _parallel(tmp_path, PG_URL, name)
    finally:
        optuna.delete_study(study_name=name, storage=PG_URL)


def _wait_for_running(storage: str, name: str, timeout: float = 180) -> int:
    """The number of a trial that is training: RUNNING with all its parameters sampled.

    Hit earlier, a trial may have no heartbeat yet (it would stay RUNNING for ever) or only some
    of its parameters (its retry would sample the others).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
            running = [
                t
                for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if "resolved_params" in t.user_attrs
            ]
            if running:
                return running[0].number
        except KeyError:
            pass
        time.sleep(0.2)
    raise AssertionError("no trial started in time")


def test_sigkilled_worker_trial_is_failed_and_retried(tmp_path):
    path = write_config(tmp_path)
    space_path = slow_space(tmp_path)
    config, space = load(path), load_space(space_path)
    storage = f"sqlite:///{tmp_path / 'kill.db'}"
    open_study(storage, "kill", config, space, seed=0)
    victim = cli(*worker_args(path, storage, "kill", 2, space=space_path))
    number = _wait_for_running(storage, "kill")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    study = optuna.load_study(study_name="kill", storage=storage)
    assert study.trials[number].state == TrialState.RUNNING  # nobody has noticed yet
    time.sleep(config.study.grace_period + 1)
    rescuer = cli(*worker_args(path, storage, "kill", 2, 1, space=space_path))
    out = rescuer.communicate(timeout=600)[0]
    assert rescuer.returncode == 0, out
    study = optuna.load_study(study_name="kill", storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert trials[number].state == TrialState.FAIL
    retries = [
        t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == number
    ]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.params == trials[number].params
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) >= 2


def test_ctrl_c_leaves_storage_consistent_and_resumable(tmp_path):
    path = write_config(tmp_path)
    storage = f"sqlite:///{tmp_path / 'int.db'}"
    args = [
        "run",
        "--config",
        str(path),
        "--space",
        str(slow_space(tmp_path)),
        "--storage",
        storage,
        "--study-name",
        "int",
        "--n-trials",
        "2",
        "--workers",
        "1",
    ]
    proc = cli(*args, start_new_session=True)
    number = _wait_for_running(storage, "int")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "rerun the same command to resume" in out
    assert "Traceback" not in out and "WorkerInterrupted" not in out and "failed with" not in out, (
        out
    )
    study = optuna.load_study(study_name="int", storage=storage)
    assert study.trials[number].state == TrialState.FAIL
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    (retry,) = [
        t
        for t in study.trials
        if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == number
    ]
    assert retry.state == TrialState.WAITING and retry.params == study.trials[number].params
    again = cli(*args)
    out = again.communicate(timeout=600)[0]
    assert again.returncode == 0, out
    study = optuna.load_study(study_name="int", storage=storage)
    assert (
        len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))) >= 2
    )
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
    assert study.trials[retry.number].state in (
        TrialState.COMPLETE,
        TrialState.PRUNED,
    )  # resumed with its params


def test_pruning_stops_a_deliberately_bad_trial_after_its_first_fold(tmp_path):
    """Churning thresholds (enter above the median prediction, exit below it) with a 1 % fee lose on
    every fold; the median pruner must stop that trial after fold 0."""
    path = write_config(
        tmp_path,
        walkforward={"train_days": 15, "test_days": 6},
        backtest={"fee": 0.01},
        study={"objective": "profit", "n_startup_trials": 2, "pruner_warmup_folds": 0},
    )
    config, space = load(path), load_space(SMOKE_SPACE)
    storage = make_storage(f"sqlite:///{tmp_path / 'prune.db'}", config.study)
    study = open_study(storage, "prune", config, space, seed=0)
    base = {
        "dropout_percent": 0.0,
        "window_size": 3,
        "learning_rate": 3e-3,
        **{f"w{i}": 0.5 for i in range(9)},
    }
    calm = {**base, "entry_threshold": 0.95, "exit_gap": 0.4}
    study.enqueue_trial(calm)
    study.enqueue_trial({**calm, "entry_threshold": 0.9})
    study.enqueue_trial({**base, "entry_threshold": 0.6, "exit_gap": 0.0})
    run_worker(
        config, space, storage=f"sqlite:///{tmp_path / 'prune.db'}", study_name="prune", n_trials=3
    )
    study = optuna.load_study(study_name="prune", storage=f"sqlite:///{tmp_path / 'prune.db'}")
    first, second, bad = study.trials[:3]
    assert first.state == second.state == TrialState.COMPLETE
    n_folds = len(first.intermediate_values)
    assert n_folds >= 4
    assert bad.state == TrialState.PRUNED, states(study)
    assert max(bad.intermediate_values) < n_folds - 1
    assert bad.intermediate_values[0] < min(
        first.intermediate_values[0], second.intermediate_values[0]
    )


def test_sqlite_storage_uses_write_ahead_log(tmp_path):
    """Every connection of a SQLite study runs in WAL mode; the file stays a plain study file."""
    import sqlite3

    path = tmp_path / "wal.db"
    storage = make_storage(f"sqlite:///{path}", load(write_config(tmp_path)).study)
    optuna.create_study(storage=storage, study_name="wal").optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    storage.engine.dispose()
    with sqlite3.connect(path) as raw:  # a fresh reader (e.g. optuna-dashboard) sees both trials
        assert raw.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone() == (
            2,
        )


def test_a_lost_race_to_create_the_tables_is_told_apart_from_other_storage_errors(tmp_path):
    # what two workers opening a new storage at once get (then retried), from a real SQLite file
    import sqlalchemy
    import sqlalchemy.exc

    from optimize.study.storage import _lost_creation_race

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'race.db'}")
    with engine.begin() as db:
        db.execute(sqlalchemy.text("CREATE TABLE studies (id INTEGER PRIMARY KEY)"))
        db.execute(sqlalchemy.text("INSERT INTO studies VALUES (1)"))

    def error(statement: str) -> sqlalchemy.exc.SQLAlchemyError:
        with pytest.raises(sqlalchemy.exc.SQLAlchemyError) as info, engine.begin() as db:
            db.execute(sqlalchemy.text(statement))
        return info.value

    assert _lost_creation_race(error("CREATE TABLE studies (id INTEGER PRIMARY KEY)"))
    assert _lost_creation_race(error("INSERT INTO studies VALUES (1)"))  # IntegrityError
    assert not _lost_creation_race(error("SELECT * FROM trials"))  # no such table
    assert not _lost_creation_race(ValueError("table studies already exists"))
