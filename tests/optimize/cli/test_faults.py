"""Every command, every kind of fault: the right exit code and one line, never a traceback; a bug
still shows its traceback.

The sweep drives each command ``python -m optimize`` registers with an output it cannot write, an
input that is missing, and SIGINT and SIGTERM while a model is training. Real processes, real
SQLite storages, real training, real freqtrade: "a model is training" is read from a line each
Lightning fit appends to a file as it starts (the probe in ``probe/sitecustomize.py``), not
guessed from a sleep. The fast cases run in the default suite; most signal cases are
``@pytest.mark.slow`` (about 15-40 s each on 2 loaded cores).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from optimize.cli import build_parser
from optimize.study.seednoise import read_values
from tests.conftest import REPO_ROOT, SMOKE_SPACE, SMOKE_STUDY
from tests.optimize.study.helpers import copy_study, load, write_config

PROBE = Path(__file__).resolve().parent / "probe"
PROGRESS = re.compile(r"\d+%\|.*\|")
"""A tqdm progress-bar update (run, robustness)."""


def commands() -> list[str]:
    """Every sub-command of ``python -m optimize``."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    return sorted(sub.choices)


def message_lines(stderr: str) -> list[str]:
    """The lines of ``stderr`` that say something: without progress-bar updates and Optuna's
    INFO records (``[I <time>] ...``)."""
    parts = re.split(r"[\r\n]", stderr)
    return [
        p.strip() for p in parts if p.strip() and not PROGRESS.search(p) and not p.startswith("[I ")
    ]


def start(cwd: Path, *argv: str, fit_log: Path | None = None) -> subprocess.Popen:
    """``python -m optimize ARGV`` in its own process group (a terminal's Ctrl-C reaches the
    group); with ``fit_log``, every fit announces itself there as it starts."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", TMPDIR=str(cwd / "tmp"))
    (cwd / "tmp").mkdir(exist_ok=True)
    if fit_log is not None:
        env["LSTM_OPTUNA_TEST_FIT_LOG"] = str(fit_log)
        env["PYTHONPATH"] = os.pathsep.join([str(PROBE), str(REPO_ROOT)])
    return subprocess.Popen(
        [sys.executable, "-m", "optimize", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_for_a_fit(proc: subprocess.Popen, fit_log: Path, timeout: float = 240) -> None:
    """Return once a model is training in ``proc`` or one of its children."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fit_log.is_file() and fit_log.read_text().strip():
            return
        if proc.poll() is not None:
            raise AssertionError(f"ended before any fit: {finish(proc)}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no fit started in {timeout} s: {finish(proc)}")


def slow_space(folder: Path, epochs: int = 200) -> Path:
    """The smoke space with long fits (no early stop): a signal sent when a fit starts lands
    inside it."""
    raw = yaml.safe_load(SMOKE_SPACE.read_text())
    raw["lstm"].update({"epochs": epochs, "early_stopping_patience": epochs, "hidden_dim": 32})
    path = folder / "slow-space.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def slow(tmp_path_factory) -> dict[str, Path]:
    """A one-trial study of long fits (``study.db``, study ``slow``), its config and space, and
    an export of its trial (``export/``, made from a copy so the study's holdout stays
    unevaluated)."""
    from optimize.freqtrade.export import export_study_trial
    from optimize.search.space import load_space
    from optimize.study.runner import run_worker

    folder = tmp_path_factory.mktemp("slow")
    config, space = write_config(folder), slow_space(folder)
    db = folder / "study.db"
    run_worker(
        load(config), load_space(space), storage=f"sqlite:///{db}", study_name="slow", n_trials=1
    )
    url = copy_study(db, folder / "for-export.db")
    export_study_trial(optuna.load_study(study_name="slow", storage=url), folder / "export")
    return {"db": db, "config": config, "space": space, "export": folder / "export"}


# --- the sweep -----------------------------------------------------------------------------------

SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}


def _second_candidate(url: str, name: str) -> None:
    """A copy of the study's only trial as a second complete trial, so that its race evaluates
    (a race of one candidate is over before it evaluates anything)."""
    study = optuna.load_study(study_name=name, storage=url)
    (trial,) = study.get_trials(deepcopy=False)
    study.add_trial(
        optuna.trial.create_trial(
            value=trial.value,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=trial.user_attrs,
        )
    )


def _unwritable_case(command: str, tmp_path: Path, unwritable, smoke_study: str):
    """argv and the expected line of ``command`` given an output it cannot write."""
    config = write_config(tmp_path)
    storage = f"sqlite:///{tmp_path / 'new.db'}"
    if command == "run":
        unwritable(tmp_path / "logs")
        argv = ["run", "--config", str(config), "--space", str(SMOKE_SPACE), "--storage", storage]
        argv += ["--study-name", "s", "--n-trials", "1"]
        return argv, r"^error: cannot write the workers' log file logs/s\.log: .+"
    if command == "worker":
        log = unwritable(tmp_path / "ro") / "w.log"
        argv = ["worker", "--config", str(config), "--space", str(SMOKE_SPACE)]
        argv += ["--storage", storage, "--study-name", "s", "--n-trials", "1"]
        argv += ["--log-file", str(log)]
        return argv, rf"^error: cannot write the log file {re.escape(str(log))}: .+"
    if command == "robustness":  # it stores its values in the study: a read-only study file
        db = Path(smoke_study.removeprefix("sqlite:///"))
        url = copy_study(db, tmp_path / "ro.db")
        unwritable(tmp_path / "ro.db")
        # both trials race (a race of one candidate is over before it evaluates anything)
        argv = ["robustness", "--storage", url, "--study-name", SMOKE_STUDY, "--top", "2"]
        argv += ["--seeds", "3"]
        return argv, (
            rf"^error: the study storage {re.escape(url)} failed while the command ran: attempt "
            r"to write a readonly database; .+"
        )
    if command == "report":
        out = unwritable(tmp_path / "reports") / "r.html"
        argv = ["report", "--storage", smoke_study, "--study-name", SMOKE_STUDY, "--out", str(out)]
        return argv, rf"^error: cannot write the report {re.escape(str(out))}: .+"
    if command == "export":
        out = unwritable(tmp_path / "exports") / "e"
        argv = ["export", "--storage", smoke_study, "--study-name", SMOKE_STUDY, "--out", str(out)]
        return argv, rf"^error: cannot write the export folder {re.escape(str(out))}: .+"
    raise AssertionError(command)


def _missing_case(command: str, tmp_path: Path):
    """argv and the expected line of ``command`` given an input that does not exist."""
    nope = tmp_path / "nope"
    if command in ("run", "worker"):
        argv = [command, "--config", str(nope / "run.yaml"), "--space", str(SMOKE_SPACE)]
        argv += ["--storage", f"sqlite:///{tmp_path / 'new.db'}", "--study-name", "s"]
        return argv, rf"^error: run config {re.escape(str(nope / 'run.yaml'))} does not exist\.$"
    if command in ("robustness", "report", "export"):
        argv = [command, "--storage", f"sqlite:///{nope}.db", "--study-name", "s"]
        argv += {"export": ["--out", str(tmp_path / "e")], "report": ["--out", "r.html"]}.get(
            command, []
        )
        return argv, rf"^error: no study storage at {re.escape(str(nope))}\.db: .+"
    if command == "verify":
        return ["verify", "--export", str(nope)], rf"^error: no export at {re.escape(str(nope))}: "
    raise AssertionError(command)


def _signal_case(command: str, tmp_path: Path, slow: dict[str, Path]):
    """argv and the expected line of ``command`` stopped by ``name`` while a model trains."""
    new = ["--config", str(slow["config"]), "--space", str(slow["space"])]
    new += ["--storage", f"sqlite:///{tmp_path / 'new.db'}", "--study-name", "s", "--n-trials", "2"]
    if command == "run":
        return ["run", *new, "--workers", "1"], (
            r"^(interrupted|terminated): stopping workers \(their running trials are marked "
            r"FAILED and queued for retry\); rerun the same command to resume$"
        )
    if command == "worker":
        return ["worker", *new, "--log-file", str(tmp_path / "w.log")], (
            r"^worker 0 interrupted by SIG(INT|TERM); running trials are marked FAILED and "
            r"queued for retry; rerun the same command to resume$"
        )
    url = copy_study(slow["db"], tmp_path / "study.db")  # holdout and seed values not stored
    if command == "robustness":
        _second_candidate(url, "slow")
        argv = ["robustness", "--storage", url, "--study-name", "slow"]
        argv += ["--top", "2", "--seeds", "3"]
        return argv, (
            r"^interrupted by SIG(INT|TERM); the values computed so far are stored; rerun the "
            r"same command to resume$"
        )
    if command == "report":
        argv = ["report", "--storage", url, "--study-name", "slow", "--out", "r.html"]
        return argv, r"^interrupted by SIG(INT|TERM); no report was written; rerun the same command"
    if command == "export":
        argv = ["export", "--storage", url, "--study-name", "slow", "--out", str(tmp_path / "e")]
        return argv, r"^interrupted by SIG(INT|TERM); nothing was exported; rerun the same command$"
    if command == "verify":
        return ["verify", "--export", str(slow["export"]), "--strict"], (
            r"^interrupted by SIG(INT|TERM); the verification did not finish \(its temporary "
            r"folder is removed\)$"
        )
    raise AssertionError(command)


SWEPT = ("run", "worker", "robustness", "report", "export", "verify")
FAST_SIGNALS = {("robustness", "SIGTERM"), ("verify", "SIGINT"), ("report", "SIGTERM")}
"""Signal cases in the default suite; the others are marked slow."""


NOT_SWEPT = ("markets",)
"""Commands without an input file or a model to train: ``markets`` (pairs on the command line,
the exchange over the network) is driven with an unwritable ``--out`` below and without network
in ``tests/optimize/freqtrade/test_verify_futures.py``."""


def test_the_sweep_covers_every_command():
    assert set(commands()) == set(SWEPT) | set(NOT_SWEPT)


def test_markets_refuses_an_unwritable_out_before_asking_the_exchange(tmp_path, unwritable):
    out = unwritable(tmp_path / "ro") / "markets.json"
    argv = ["markets", "--pairs", "BNB/USDT", "--out", str(out)]
    code, _, err = finish(start(tmp_path, *argv))
    _assert_one_line(code, err, 2, rf"^error: cannot write --out {re.escape(str(out))}: .+")
    assert not out.exists()


def _assert_one_line(code: int, err: str, expected_code: int, pattern: str) -> None:
    assert "Traceback" not in err, err
    lines = message_lines(err)
    assert code == expected_code, (code, err)
    assert len(lines) == 1, lines
    assert re.search(pattern, lines[0]), (pattern, lines[0])


@pytest.mark.parametrize(
    "command",
    [
        *[c for c in SWEPT if c != "verify"],
        pytest.param(
            "verify",
            marks=pytest.mark.skip(
                reason="verify writes nothing but a private temporary folder (tempfile falls back "
                "to another folder when TMPDIR cannot be written)"
            ),
        ),
    ],
)
def test_unwritable_output(command, tmp_path, unwritable, smoke_study):
    argv, pattern = _unwritable_case(command, tmp_path, unwritable, smoke_study)
    code, _, err = finish(start(tmp_path, *argv))
    _assert_one_line(code, err, 2, pattern)
    if command in ("run", "worker"):  # refused before anything was created
        assert not (tmp_path / "new.db").exists()


@pytest.mark.parametrize("command", SWEPT)
def test_missing_input(command, tmp_path):
    argv, pattern = _missing_case(command, tmp_path)
    code, _, err = finish(start(tmp_path, *argv))
    _assert_one_line(code, err, 2, pattern)
    assert not (tmp_path / "nope.db").exists() and not (tmp_path / "new.db").exists()
    assert not (tmp_path / "e").exists() and not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    "command, name",
    [
        pytest.param(c, s, marks=() if (c, s) in FAST_SIGNALS else pytest.mark.slow, id=f"{c}-{s}")
        for c in SWEPT
        for s in SIGNALS
    ],
)
def test_signal_while_a_model_trains(command, name, tmp_path, slow):
    """Ctrl-C (SIGINT to the process group) or a scheduler's SIGTERM (to the process) while a
    fit runs: 130/143, one line, no traceback; verify leaves no temporary folder."""
    signum, expected = SIGNALS[name]
    argv, pattern = _signal_case(command, tmp_path, slow)
    fit_log = tmp_path / "fits.log"
    proc = start(tmp_path, *argv, fit_log=fit_log)
    wait_for_a_fit(proc, fit_log)
    if signum == signal.SIGINT:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc, timeout=120)
    _assert_one_line(code, err, expected, pattern)
    assert not list((tmp_path / "tmp").glob("ftoffline-*")), "freqtrade's temporary folder is left"
    if command in ("report", "export"):
        assert not (tmp_path / "r.html").exists() and not (tmp_path / "e").exists()


# --- bugs show their traceback, project errors one line; -v shows both in full --------------------


@pytest.fixture(scope="module")
def buggy_objective(tmp_path_factory) -> Path:
    """A run config whose objective (a user plug-in) has a bug: it divides by zero."""
    folder = tmp_path_factory.mktemp("buggy")
    plugins = folder / "objectives"
    plugins.mkdir()
    (plugins / "buggy.py").write_text(
        "from optimize.search.objectives.base import Objective\n\n"
        'OBJECTIVE = Objective("buggy", ("maximize",), lambda m: (1 / 0,), "a bug")\n'
    )
    return write_config(
        folder, study={"objective": "buggy", "objectives_path": str(plugins), "n_trials": 1}
    )


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "-v"])
def test_a_bug_shows_its_traceback(buggy_objective, tmp_path, verbose):
    argv = ["worker", "--config", str(buggy_objective), "--space", str(SMOKE_SPACE)]
    argv += ["--storage", f"sqlite:///{tmp_path / 'b.db'}", "--study-name", "b"]
    argv += ["--log-file", str(tmp_path / "b.log")]
    code, _, err = finish(start(tmp_path, *(["-v"] if verbose else []), *argv))
    assert code == 1, err
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError" in err, err
    assert not any(line.startswith("error: ") for line in message_lines(err)), err


@pytest.mark.parametrize("verbose", [False, True], ids=["plain", "-v"])
def test_a_project_error_is_one_line_and_its_traceback_is_shown_with_v(tmp_path, verbose):
    config = write_config(tmp_path, walkforward={"train_days": 1})
    argv = ["run", "--config", str(config), "--space", str(SMOKE_SPACE)]
    argv += ["--storage", f"sqlite:///{tmp_path / 'p.db'}", "--study-name", "p"]
    code, _, err = finish(start(tmp_path, *(["-v"] if verbose else []), *argv))
    assert code == 2, err
    line = r"^error: .+ a walk-forward fold trains on 24 1h candles \(walkforward\.train_days=1\)"
    errors = [x for x in message_lines(err) if x.startswith("error: ")]
    assert len(errors) == 1 and re.search(line, errors[0]), err
    if verbose:
        assert "Traceback (most recent call last)" in err and "StudyInputError" in err, err
    else:
        assert "Traceback" not in err and message_lines(err) == errors, err


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.is_file() else []


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_ctrl_c_right_after_the_workers_start(tmp_path):
    """Ctrl-C while the workers are still starting (Python's start-up, imports): `run` says it
    once, no worker prints a traceback, nothing is left running."""
    config = write_config(tmp_path)
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    argv = ["run", "--config", str(config), "--space", str(SMOKE_SPACE), "--storage", storage]
    proc = start(tmp_path, *argv, "--study-name", "c", "--n-trials", "4", "--workers", "2")
    deadline = time.monotonic() + 120
    while len(_children(proc.pid)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    workers = _children(proc.pid)
    assert len(workers) == 2, finish(proc)
    os.killpg(proc.pid, signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert message_lines(err) == [
        "interrupted: stopping workers (their running trials are marked FAILED and queued for "
        "retry); rerun the same command to resume"
    ], err
    assert not [p for p in workers if Path(f"/proc/{p}").exists()], "a worker outlived `run`"
    study = optuna.load_study(study_name="c", storage=storage)
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))


# --- one line for a broken export, an export onto a file; `run` stopped in its robustness step ---


@pytest.mark.parametrize("damage", ["deleted", "not JSON", "of another trial"])
def test_verify_refuses_a_broken_parameter_file(slow, tmp_path, damage):
    """freqtrade would run the strategy's default parameters without a word."""
    export = tmp_path / "export"
    shutil.copytree(slow["export"], export, symlinks=True)
    params = export / "strategy" / "LstmOptunaStrategy.json"
    if damage == "deleted":
        params.unlink()
        says = r" does not exist; expected the strategy parameter file written by the export\.$"
    elif damage == "not JSON":
        params.write_text('{"params": ')
        says = r": not valid JSON \(.+\); expected the strategy parameter file"
    else:
        doc = json.loads(params.read_text())
        doc["lstm_optuna"]["trial_number"] = 99
        params.write_text(json.dumps(doc))
        says = r" is of trial_number=99, but the export's config\.json is of trial_number=0"
    code, _, err = finish(start(tmp_path, "verify", "--export", str(export)))
    _assert_one_line(code, err, 2, rf"^error: {re.escape(str(params))}{says}")


def test_export_onto_a_file_is_one_line(tmp_path, smoke_study):
    target = tmp_path / "a-file"
    target.write_text("mine")
    argv = ["export", "--storage", smoke_study, "--study-name", SMOKE_STUDY, "--out", str(target)]
    code, _, err = finish(start(tmp_path, *argv))
    _assert_one_line(
        code,
        err,
        2,
        rf"^error: cannot write the export folder {re.escape(str(target))}: it is a file, not a "
        r"folder; expected a writable folder\.$",
    )
    assert target.read_text() == "mine"


@pytest.mark.slow
def test_sigterm_while_run_is_in_its_robustness_step(tmp_path, slow):
    """The trials are done, `run` itself races the best two on fresh seeds (about 60 s)."""
    config = write_config(
        tmp_path,
        study={
            "n_trials": 2,
            "robustness_top": 2,
            "robustness_budget": 4,
            "robustness_seed_sets": 2,
        },
    )
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    fit_log = tmp_path / "fits.log"
    argv = ["run", "--config", str(config), "--space", str(slow["space"]), "--storage", storage]
    proc = start(tmp_path, *argv, "--study-name", "r", "--workers", "1", fit_log=fit_log)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:  # a fit in `run` itself
        if fit_log.is_file() and f"{proc.pid} fit" in fit_log.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc, timeout=120)
    _assert_one_line(code, err, 143, r"^interrupted by SIGTERM; rerun the same command to resume$")
    study = optuna.load_study(study_name="r", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert read_values(study) == []  # its first evaluations were stopped: nothing half-stored
