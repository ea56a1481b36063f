"""Faults and bad input: nothing left RUNNING, no orphan workers, one clear line for every mistake.

Real storages (SQLite files, the PostgreSQL server), real worker subprocesses and signals, real
candles (bad candle files are altered copies of the embedded ones).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from optimize.cli import main
from optimize.config import load_config
from optimize.search.space import load_space
from optimize.study.runner import StudyInputError, open_study, run_worker
from optimize.study.storage import make_storage
from tests.conftest import EMBEDDED_DATADIR, SMOKE_CONFIG, SMOKE_SPACE, SMOKE_STUDY
from tests.optimize.study.helpers import (
    cli,
    fresh_pg_database,
    load,
    pg_unreachable,
    run_args,
    slow_space,
    states,
    worker_args,
    write_config,
)


def run_cli(capsys, *argv: str) -> tuple[int, list[str]]:
    """``python -m optimize ARGV`` in this process: exit code and the non-empty stderr lines."""
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def study_names(storage: str) -> list[str]:
    return optuna.get_all_study_names(storage=storage)


# --- bad storage URLs: one line, the URL without its password, the forms expected, exit 2 -------

BAD_URLS = [
    "sqlite:/x.db",
    "postgres://postgres@127.0.0.1/test",
    "postgresql+psycopg2://postgres:secret@no-such-host.invalid/test",
    "postgresql+psycopg2://postgres:secret@127.0.0.1:5432/no_such_database",
    "postgresql+psycopg2://postgres:secret@127.0.0.1:1/test",
    "mysql://user:secret@127.0.0.1/lstm",
]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("command", ["run", "worker", "export", "report"])
def test_bad_storage_url_is_one_line(tmp_path, capsys, command, url):
    config = write_config(tmp_path)
    argv = {
        "run": run_args(config, url, "s"),
        "worker": [
            "worker",
            "--config",
            str(config),
            "--space",
            str(SMOKE_SPACE),
            "--storage",
            url,
            "--study-name",
            "s",
            "--log-file",
            str(tmp_path / "w.log"),
        ],
        "export": ["export", "--storage", url, "--study-name", "s", "--out", str(tmp_path / "out")],
        "report": [
            "report",
            "--storage",
            url,
            "--study-name",
            "s",
            "--out",
            str(tmp_path / "r.html"),
        ],
    }[command]
    code, lines = run_cli(capsys, *argv)
    assert code == 2, lines
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("error: cannot open the study storage ")
    assert "sqlite:///path.db or postgresql+psycopg2://user@host/db" in line
    assert "secret" not in line
    shown = url.replace(":secret@", ":***@")
    assert shown in line


# --- inputs checked in the parent before a study exists -----------------------------------------


def _bad_datadir(tmp_path: Path, alter) -> Path:
    """A copy of the embedded BTC 1h candles, altered by ``alter(frame)``."""
    folder = tmp_path / "bad-data" / "binance"
    folder.mkdir(parents=True)
    frame = pd.read_feather(EMBEDDED_DATADIR / "binance" / "BTC_USDT-1h.feather")
    alter(frame).reset_index(drop=True).to_feather(folder / "BTC_USDT-1h.feather")
    return folder.parent


def _zero_volume_in_span(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[frame["date"] >= pd.Timestamp("2025-05-01", tz="UTC"), "volume"] = 0.0
    return frame


def _flat_in_span(frame: pd.DataFrame) -> pd.DataFrame:
    span = frame["date"] >= pd.Timestamp("2025-05-01", tz="UTC")
    for col in ("open", "high", "low", "close"):
        frame.loc[span, col] = 100.0
    return frame


BAD_INPUTS = {
    "missing pair": ({"data": {"pairs": ["DOGE/USDT"]}}, r"No 1h candles for 'DOGE/USDT'"),
    "missing datadir": (
        {"data": {"datadir": "/no/such/folder"}},
        r"data\.datadir='/no/such/folder' .* does not exist",
    ),
    "span too short": (
        {"data": {"end": "2025-06-20"}},
        r"too little data for one walk-forward fold",
    ),
    "end after data": (
        {"data": {"end": "2027-01-01"}},
        r"data\.end='2027-01-01' is after the last candle",
    ),
    "window above purge": (
        {"walkforward": {"purge_candles": 4}},
        (
            r"lstm\.window_size \(up to 6\) \+ target\.label_horizon \(up to 0\) = 6 exceeds "
            r"walkforward\.purge_candles=4"
        ),
    ),
    "zero volume in span": (
        _zero_volume_in_span,
        r"rule 'volume all zero': every candle from 2025-06-01",
    ),
    "flat prices in span": (_flat_in_span, r"rule 'flat prices': every candle from 2025-06-01"),
    "datadir is a file": (
        {"data": {"datadir": str(SMOKE_SPACE)}},
        r"data\.datadir='.*smoke\.yaml' .* is a file, not a folder",
    ),
    "folds shorter than the minimum (4h)": (
        {
            "data": {"timeframe": "4h"},
            "features": {"include_timeframes": ["4h"]},
            "walkforward": {"train_days": 30, "purge_candles": 6},
        },
        (
            r"a walk-forward fold trains on 180 4h candles \(walkforward\.train_days=30\), "
            r"fewer than training\.min_train_samples=200: every fold would be skipped and every "
            r"trial would score 0 with no trade; expected walkforward\.train_days >= 34"
        ),
    ),
    "folds of one day (1h)": (
        {"walkforward": {"train_days": 1}},
        r"a walk-forward fold trains on 24 1h candles .* walkforward\.train_days >= 9",
    ),
    "pair without candles in the span": (
        {"data": {"pairs": ["BTC/USDT", "SOL/USDT"], "start": "2020-03-01", "end": "2020-06-15"}},
        (
            r"SOL/USDT has no 1h candles in the span 2020-03-01 \.\. 2020-06-15: its first "
            r"candle is 2020-08-11 06:00:00\+00:00, after data\.end='2020-06-15'"
        ),
    ),
    "span after a pair's last candle": (
        {"data": {"start": "2027-01-01", "end": None}},
        r"BTC/USDT has no 1h candles in the span 2027-01-01 \.\. the end of its data",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_before_the_study_exists(tmp_path, capsys, case):
    """One line naming the problem, exit 2, no study; with the input fixed the same name works."""
    change, pattern = BAD_INPUTS[case]
    if callable(change):
        change = {"data": {"datadir": str(_bad_datadir(tmp_path, change))}}
    config = write_config(tmp_path, **change)
    db = tmp_path / "s.db"
    storage = f"sqlite:///{db}"
    code, lines = run_cli(capsys, *run_args(config, storage, "s", "--n-trials", "1"))
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert pd.Series(lines).str.contains(pattern).all(), lines
    assert study_names(storage) == []
    # the worker command checks the same before it creates the study
    with pytest.raises(StudyInputError, match=pattern):
        run_worker(
            load(config), load_space(SMOKE_SPACE), storage=storage, study_name="s", n_trials=1
        )
    assert study_names(storage) == []


def test_constant_window_above_purge_is_refused_before_any_trial(tmp_path):
    raw = yaml.safe_load(SMOKE_SPACE.read_text())
    raw["lstm"]["window_size"] = 20
    space_path = tmp_path / "wide.yaml"
    space_path.write_text(yaml.safe_dump(raw))
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    with pytest.raises(
        StudyInputError,
        match=r"wide\.yaml: lstm\.window_size \(up to 20\) .* = 20 exceeds "
        r"walkforward\.purge_candles=12 of .*; expected purge_candles >= 20",
    ):
        run_worker(
            load(write_config(tmp_path)), load_space(space_path), storage=storage, study_name="w"
        )
    assert study_names(storage) == []


def test_window_longer_than_a_fold_is_refused_before_any_trial(tmp_path, capsys):
    """A space that can draw a window (within the purge) longer than a fold's training rows
    allow: refused before the study exists, not one failed trial after another."""
    raw = yaml.safe_load(SMOKE_SPACE.read_text())
    raw["lstm"]["window_size"] = {"type": "int", "low": 4, "high": 400}
    space = tmp_path / "wide.yaml"
    space.write_text(yaml.safe_dump(raw))
    config = write_config(tmp_path, data={"end": "2025-09-01"}, walkforward={"purge_candles": 400})
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    code, lines = run_cli(capsys, *run_args(config, storage, "w", space=space))
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == (
        f"error: {space}: lstm.window_size (up to 400) leaves 81 training windows: a walk-forward "
        f"fold trains on 480 1h candles (walkforward.train_days=20) of {config}, and "
        "training.min_train_samples=200; expected window_size <= 281 (a narrower space) or "
        "walkforward.train_days >= 25."
    )
    assert not (tmp_path / "w.db").exists()


@pytest.mark.parametrize(
    "name, pattern",
    [
        ("", r"^error: --study-name must be a non-empty name, but got --study-name=''\.$"),
        ("   ", r"^error: --study-name must be a non-empty name"),
        (
            "a" * 300,  # fine for the storage, too long for the log file's name
            r"^error: cannot write the workers' log file logs/a{300}\.log: the name a{20}\.\.\. "
            r"is longer than 255 bytes; expected a writable file\.$",
        ),
        (
            "b" * 600,
            r"^error: --study-name must have at most 512 characters \(the storage's limit\), but "
            r"got 600 \(b{20}\.\.\.\)\.$",
        ),
    ],
    ids=["empty", "blank", "300", "600"],
)
def test_study_name_is_checked_before_anything_is_created(
    tmp_path, capsys, monkeypatch, name, pattern
):
    monkeypatch.chdir(tmp_path)  # logs/ of this run
    storage = f"sqlite:///{tmp_path / 'n.db'}"
    code, lines = run_cli(capsys, *run_args(write_config(tmp_path), storage, name))
    assert code == 2 and len(lines) == 1 and re.search(pattern, lines[0]), lines
    assert not (tmp_path / "n.db").exists() and not (tmp_path / "logs").exists()


@pytest.mark.postgres
def test_a_long_study_name_on_postgres_is_one_line_and_creates_nothing(tmp_path, capsys):
    """600 characters on PostgreSQL used to end in a StorageInternalError traceback (the study
    name column holds 512) after an empty study row... now it is refused first."""
    if reason := pg_unreachable():
        pytest.skip(reason)
    with fresh_pg_database("lstm_optuna_faults") as url:
        code, lines = run_cli(capsys, *run_args(write_config(tmp_path), url, "c" * 600))
        assert code == 2 and len(lines) == 1, lines
        assert "--study-name must have at most 512 characters" in lines[0]
        assert study_names(url) == []


def test_unwritable_log_folder_creates_no_study(tmp_path, capsys, monkeypatch, unwritable):
    monkeypatch.chdir(tmp_path)
    unwritable(tmp_path / "logs")
    storage = f"sqlite:///{tmp_path / 'l.db'}"
    code, lines = run_cli(capsys, *run_args(write_config(tmp_path), storage, "l"))
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: cannot write the workers' log file logs/l.log: ")
    assert not (tmp_path / "l.db").exists()


def test_study_file_deleted_mid_run_is_an_error(tmp_path):
    """The study file removed while the workers run: `run` notices, stops the workers and exits
    2 naming the file, instead of "trials: complete N", exit 0, with the study gone."""
    db = tmp_path / "gone.db"
    storage = f"sqlite:///{db}"
    space = slow_space(tmp_path)
    proc = cli(*run_args(write_config(tmp_path), storage, "gone", "--n-trials", "6", space=space))
    pids = _running_workers(storage, "gone", 1)
    for path in tmp_path.glob("gone.db*"):
        path.unlink()
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert f"error: the study storage file {db} was deleted while the study ran" in out, out
    assert "trials: complete" not in out
    time.sleep(0.5)
    assert not [pid for pid in pids if _alive(pid)], "workers outlived `run`"


@pytest.mark.slow
def test_study_file_deleted_under_a_worker_is_an_error(tmp_path):
    """A worker of its own notices it when its trial ends (about 20 s)."""
    db = tmp_path / "gone.db"
    storage = f"sqlite:///{db}"
    config, space = write_config(tmp_path), slow_space(tmp_path)
    proc = cli(*worker_args(config, storage, "gone", 6, space=space))
    _running_workers(storage, "gone", 1)
    for path in tmp_path.glob("gone.db*"):
        path.unlink()
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert f"error: the study storage file {db} was deleted while the study ran" in out, out


def test_study_without_trials_takes_a_fixed_config(tmp_path):
    """A study created (by an older version) from a config that could not run holds 0 trials: a
    fixed config is accepted under the same name."""
    storage = f"sqlite:///{tmp_path / 'e.db'}"
    space = load_space(SMOKE_SPACE)
    open_study(
        storage, "e", load(write_config(tmp_path, walkforward={"test_days": 30})), space, seed=0
    )
    study = open_study(storage, "e", load(write_config(tmp_path)), space, seed=0)
    assert study.user_attrs["fingerprint"]["config"]["walkforward"]["test_days"] == 7


# --- resume checks -------------------------------------------------------------------------------


def test_resume_allows_run_settings_and_names_each_differing_key(tmp_path):
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    space = load_space(SMOKE_SPACE)
    study = open_study(storage, "r", load(write_config(tmp_path)), space, seed=0)
    study.tell(study.ask(), state=TrialState.FAIL)  # the study is no longer empty
    allowed = write_config(
        tmp_path,
        study={"n_trials": 50, "grace_period": 9, "timeout": 60},
        training={"accelerator": "auto", "threads_per_worker": 2},
    )
    raw = yaml.safe_load(allowed.read_text())
    raw["training"]["cache_dir"] = str(tmp_path / "other-cache")
    allowed.write_text(yaml.safe_dump(raw))
    open_study(storage, "r", load(allowed), space, seed=0)
    changed = write_config(
        tmp_path, study={"seed": 7, "n_trials": 50}, walkforward={"test_days": 6}
    )
    with pytest.raises(ValueError) as err:
        open_study(storage, "r", load(changed), space, seed=0)
    message = str(err.value)
    assert "different config" in message
    assert "config study.seed: stored 42, now 7" in message
    assert "config walkforward.test_days: stored 7, now 6" in message
    assert "n_trials" not in message
    other = load_space(SMOKE_SPACE.parent / "strategy-only.yaml")
    with pytest.raises(
        ValueError, match=r"different space .*space lstm\.window_size\.type: stored 'int', now"
    ):
        open_study(storage, "r", load(write_config(tmp_path)), other, seed=0)


def test_resumed_study_does_not_repeat_the_startup_draws(tmp_path):
    storage = f"sqlite:///{tmp_path / 'seed.db'}"
    config, space = (
        load(write_config(tmp_path, study={"sampler": "random"})),
        load_space(SMOKE_SPACE),
    )

    def draw(n: int) -> list[dict]:
        study = open_study(
            storage, "seed", config, space, seed=config.study.seed
        )  # a rerun: same worker seed
        out = []
        for _ in range(n):
            trial = study.ask()
            space.sample(trial)
            study.tell(trial, 0.0)
            out.append(trial.params)
        return out

    first, second = draw(2), draw(2)
    assert not any(a == b for a in first for b in second), (first, second)
    fresh = (
        f"sqlite:///{tmp_path / 'fresh.db'}"  # a new study still starts from the configured seed
    )
    study = open_study(fresh, "seed", config, space, seed=config.study.seed)
    trial = study.ask()
    space.sample(trial)
    assert trial.params == first[0]


# --- CLI arguments and other bad input -----------------------------------------------------------


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--n-trials", "0"], r"--n-trials must be an integer >= 1, but got --n-trials=0\."),
        (["--n-trials", "-1"], r"--n-trials must be an integer >= 1, but got --n-trials=-1\."),
        (
            ["--timeout", "-5"],
            r"--timeout must be a finite number > 0\.0, but got --timeout=-5\.0\.",
        ),
        (
            ["--timeout", "inf"],
            r"--timeout must be a finite number > 0\.0, but got --timeout=inf\.",
        ),
        (["--workers", "0"], r"--workers must be an integer >= 1, but got --workers=0\."),
    ],
)
def test_run_arguments_that_would_do_nothing_are_errors(tmp_path, capsys, extra, pattern):
    storage = f"sqlite:///{tmp_path / 'a.db'}"
    code, lines = run_cli(capsys, *run_args(write_config(tmp_path), storage, "a", *extra))
    assert code == 2
    assert len(lines) == 1 and pd.Series(lines).str.contains(pattern).all(), lines
    assert not (tmp_path / "a.db").exists()


def test_verify_names_an_export_config_that_is_not_json(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{not json")
    code, lines = run_cli(capsys, "verify", "--export", str(tmp_path))
    assert code == 2
    assert (
        len(lines) == 1
        and str(tmp_path / "config.json") in lines[0]
        and "not valid JSON" in lines[0]
    ), lines


# --- stale trials: failed and retried at the start of every run, whatever the target -------------


def test_stale_trial_is_retried_although_the_target_is_reached(smoke_study, tmp_path):
    """A dead worker's trial (RUNNING, heartbeat older than grace_period) in a study that already
    holds its n_trials finished trials: the rerun recovers it, says so and runs the retry."""
    config, space = load_config(SMOKE_CONFIG), load_space(SMOKE_SPACE)
    storage = make_storage(smoke_study, config.study)
    study = optuna.load_study(study_name=SMOKE_STUDY, storage=storage)
    assert states(study) == {"COMPLETE": 2}
    dead = study.ask()
    space.sample(dead)
    storage.record_heartbeat(dead._trial_id)  # what the dead worker's heartbeat thread did
    time.sleep(config.study.grace_period + 1.5)
    proc = cli(*run_args(SMOKE_CONFIG, smoke_study, SMOKE_STUDY, "--n-trials", "2"))
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    assert f"recovered 1 stale trial(s) [{dead.number}]" in out
    study = optuna.load_study(study_name=SMOKE_STUDY, storage=smoke_study)
    trials = study.get_trials(deepcopy=False)
    assert trials[dead.number].state == TrialState.FAIL
    retries = [
        t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == dead.number
    ]
    assert len(retries) == 1 and retries[0].params == dead.params
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert states(study) in ({"COMPLETE": 3, "FAIL": 1}, {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1})


# --- signals: forwarded, one line, no traceback, no orphans, interrupted trials retried ----------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _running_workers(storage: str, name: str, n: int, timeout: float = 240) -> set[int]:
    """Pids of ``n`` workers each training a trial."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:  # not created yet
            time.sleep(0.2)
            continue
        pids = {
            t.user_attrs["worker_pid"]
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if "worker_pid" in t.user_attrs
        }
        if len(pids) >= n:
            return pids
        time.sleep(0.2)
    raise AssertionError(f"{n} workers did not start in time")


def test_sigterm_on_run_stops_its_workers_and_queues_retries(tmp_path):
    """What `timeout 12 python -m optimize run ...` does: SIGTERM to `run` only."""
    config = write_config(tmp_path)
    space = slow_space(tmp_path)
    storage = f"sqlite:///{tmp_path / 'term.db'}"
    proc = cli(*run_args(config, storage, "term", "--n-trials", "4", "--workers", "2", space=space))
    pids = _running_workers(storage, "term", 2)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 143, out
    assert "Traceback" not in out
    assert "terminated: stopping workers" in out and "rerun the same command to resume" in out
    time.sleep(0.5)
    assert not [pid for pid in pids if _alive(pid)], "workers outlived `run`"
    study = optuna.load_study(study_name="term", storage=storage)
    trials = study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 2 and not [t for t in trials if t.state == TrialState.RUNNING]
    for trial in failed:
        retries = [
            t
            for t in trials
            if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == trial.number
        ]
        assert len(retries) == 1 and retries[0].state == TrialState.WAITING
        assert retries[0].params == trial.params


def test_sigkill_of_run_leaves_no_orphan_workers(tmp_path):
    config = write_config(tmp_path)
    storage = f"sqlite:///{tmp_path / 'orphan.db'}"
    proc = cli(
        *run_args(
            config,
            storage,
            "orphan",
            "--n-trials",
            "4",
            "--workers",
            "2",
            space=slow_space(tmp_path),
        )
    )
    pids = _running_workers(storage, "orphan", 2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 60
    while [pid for pid in pids if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in pids if _alive(pid)], "workers outlived a killed `run`"


def test_run_says_why_a_worker_died(tmp_path):
    config = write_config(tmp_path)
    storage = f"sqlite:///{tmp_path / 'died.db'}"
    proc = cli(
        *run_args(
            config, storage, "died", "--n-trials", "1", "--workers", "1", space=slow_space(tmp_path)
        )
    )
    (pid,) = _running_workers(storage, "died", 1)
    os.kill(pid, signal.SIGKILL)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, out
    assert f"worker 0 (pid {pid}) was killed by SIGKILL" in out


def test_survivor_retries_a_killed_workers_trial_after_reaching_the_target(tmp_path):
    """The survivor reaches --n-trials before the dead trial's grace_period has passed: it stays,
    fails the stale trial and runs its retry, so the study ends with nothing RUNNING."""
    path, space = write_config(tmp_path), slow_space(tmp_path)
    storage = f"sqlite:///{tmp_path / 'survive.db'}"
    open_study(
        storage, "survive", load(path), load_space(space), seed=0
    )  # create once, as `run` does
    victim, survivor = (
        cli(*worker_args(path, storage, "survive", 1, k, space=space)) for k in (0, 1)
    )
    _running_workers(storage, "survive", 2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    study = optuna.load_study(study_name="survive", storage=storage)
    (dead,) = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.user_attrs.get("worker_pid") == victim.pid
    ]
    out = survivor.communicate(timeout=600)[0]
    assert survivor.returncode == 0, out
    study = optuna.load_study(study_name="survive", storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert trials[dead.number].state == TrialState.FAIL
    (retry,) = [
        t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == dead.number
    ]
    assert retry.params == dead.params and retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
