"""Seeds that belong to the parameters, the robustness step's race and the selection by seed mean.

Real studies on the embedded candles (the session's smoke study: 2 pairs, 3 folds, 2 trials).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optimize.config import load_config
from optimize.evaluation.inputs import StudyData
from optimize.evaluation.trial import evaluate
from optimize.search.objectives import get_objective
from optimize.search.space import TrialParams
from optimize.study.racing import BUDGET_SPENT
from optimize.study.records import study_config
from optimize.study.robustness import RobustnessPlan, run_robustness, top_trials
from optimize.study.seednoise import (
    RaceRecord,
    attr_key,
    best_by_seed_mean,
    noise_sentence,
    race_noise,
    read_noise,
    read_values,
    value_iqr,
)
from optimize.study.selection import select_trial
from tests.optimize.study.helpers import copy_study, run_python

REPO = Path(__file__).resolve().parents[3]
SMOKE_CONFIG = REPO / "configs" / "smoke.yaml"
SMOKE_SPACE = REPO / "search_spaces" / "smoke.yaml"


@pytest.fixture(scope="module")
def study(smoke_study) -> optuna.Study:
    return optuna.load_study(study_name="smoke", storage=smoke_study)


@pytest.fixture(scope="module")
def data(study) -> StudyData:
    return StudyData.load(study_config(study))


def _params(trial) -> TrialParams:
    return TrialParams.from_dict(trial.user_attrs["resolved_params"])


def test_seed_set_zero_reproduces_the_recorded_value(study, data) -> None:
    """Identical parameters score identically: the trial's own seeds do not depend on the worker
    or the trial number, so evaluating its parameters again gives its value bit for bit."""
    objective = get_objective(data.config.study.objective)
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        again = evaluate(data, _params(trial), objective)
        assert again.values[0] == trial.value
        assert again.folds[-1].value_so_far == trial.value


def test_reported_values_are_the_objective_of_the_folds_so_far(study, data) -> None:
    """Pruning on one scale: after fold k the pruner sees the value a study of folds 0..k alone
    would give (the same models: seeds depend on the pair and the training end only)."""
    objective = get_objective(data.config.study.objective)
    trial = study.get_trials(states=(TrialState.COMPLETE,))[0]
    assert trial.intermediate_values[len(data.plan.folds) - 1] == trial.value
    for k in range(len(data.plan.folds) - 1):
        shorter = dataclasses.replace(
            data, plan=dataclasses.replace(data.plan, folds=data.plan.folds[: k + 1])
        )
        assert (
            trial.intermediate_values[k] == evaluate(shorter, _params(trial), objective).values[0]
        )


def test_robustness_races_stores_values_selects_the_winner_and_resumes(study) -> None:
    numbers = [t.number for t in top_trials(study, 2)]
    assert len(numbers) == 2
    before = best_by_seed_mean(study)
    assert before is None and select_trial(study).number == study.best_trial.number
    assert RaceRecord.stored(study) is None
    calls: list = []
    plans: list = []
    rounds: list = []
    race = run_robustness(
        study,
        top=2,
        budget=4,
        seed_sets=3,
        on_plan=plans.append,
        on_value=calls.append,
        on_round=rounds.append,
    )
    assert plans == [RobustnessPlan(tuple(numbers), budget=4, seed_sets=3, evaluations=0, rounds=0)]
    assert plans[0].most_evaluations == 4  # the budget, below 2 candidates x 3 seed sets
    # two candidates cannot be told apart on two seed sets (a Friedman test of 2 x 2 has p >= 0.16)
    assert race.stop == BUDGET_SPENT and len(race.rounds) == 2 and race.evaluations == 4
    assert len(calls) == 4 and [r.rounds for r in rounds] == [race.rounds[:1], race.rounds]
    noise = read_noise(study)
    assert sorted(noise) == sorted(numbers)
    for number, n in noise.items():
        assert n.seed_sets == (1, 2) and np.isfinite(n.values).all()
        assert race.values[number] == n.values
        assert n.recorded == study.trials[number].value
        for m in (1, 2):
            assert study.user_attrs[attr_key(number, m)]["value"] == n.values[m - 1]
    assert race_noise(study) == noise
    # fresh seed sets are other models: at least one value differs from the recorded one
    assert any(v != n.recorded for n in noise.values() for v in n.values)
    best = max(noise.values(), key=lambda n: (n.mean, -n.trial))
    assert race.winner == best.trial
    stored = RaceRecord.stored(study)
    assert stored is not None and stored.race() == race and stored.winner == race.winner
    assert best_by_seed_mean(study).number == best.trial
    assert select_trial(study).number == best.trial  # the default selection follows the race
    other = next(n for n in numbers if n != best.trial)
    assert select_trial(study, other).number == other  # an explicit --trial still wins
    # a rerun evaluates nothing: every value is stored, the race replays
    again: list = []
    assert run_robustness(study, top=2, budget=4, seed_sets=3, on_value=again.append) == race
    assert again == []
    # a bigger budget later: only the next round's values are computed
    more = run_robustness(study, top=2, budget=6, seed_sets=3, on_value=again.append)
    assert sorted((v.trial, v.seed_set) for v in again) == sorted((n, 3) for n in numbers)
    assert more.rounds[:2] == race.rounds and len(more.rounds) == 3
    assert RaceRecord.stored(study).race() == more
    iqr = value_iqr(study)
    assert iqr >= 0
    assert "IQR" in noise_sentence(race_noise(study)[more.winner], iqr) or iqr == 0
    # a smaller race later (fewer seed sets allowed): the stored values outside it stay, unused
    short = run_robustness(study, top=2, budget=6, seed_sets=1)
    assert len(short.rounds) == 1 and all(len(n.values) == 1 for n in race_noise(study).values())
    assert all(len(n.values) == 3 for n in read_noise(study).values())


def test_run_uses_the_robustness_settings_of_this_run(smoke_study_file, tmp_path) -> None:
    """`run` on an existing study with other robustness keys (they may change between runs):
    the race takes this run's values, not the ones stored with the study."""
    import yaml

    from optimize.cli import main

    smoke_study = copy_study(f"sqlite:///{smoke_study_file}", tmp_path / "run.db")

    raw = yaml.safe_load(SMOKE_CONFIG.read_text())
    raw["study"].update(robustness_top=2, robustness_budget=2, robustness_seed_sets=1)
    raw["training"]["cache_dir"] = str(tmp_path / "cache")
    config = tmp_path / "changed.yaml"
    config.write_text(yaml.safe_dump(raw))
    args = ["--config", str(config), "--space", str(SMOKE_SPACE), "--storage", smoke_study]
    assert main(["run", *args, "--study-name", "smoke", "--n-trials", "2"]) == 0
    study = optuna.load_study(study_name="smoke", storage=smoke_study)
    stored = study_config(study).study
    assert (stored.robustness_budget, stored.robustness_seed_sets) == (6, 3)  # smoke.yaml's
    record = RaceRecord.stored(study)
    assert record is not None and (record.budget, record.max_blocks) == (2, 1)
    assert len(record.rounds) == 1 and record.evaluations == 2


def test_fresh_values_match_an_independent_evaluation(study, data) -> None:
    """A stored fresh value is evaluate(..., seed_set=m) of the trial's parameters."""
    noise = read_noise(study)
    if not noise:
        run_robustness(study, top=2, budget=2, seed_sets=1)
        noise = read_noise(study)
    number, n = next(iter(noise.items()))
    value = evaluate(
        data,
        _params(study.trials[number]),
        get_objective(data.config.study.objective),
        seed_set=n.seed_sets[0],
    ).values[0]
    assert value == n.values[0]


def test_identical_parameters_in_two_workers_score_identically(tmp_path) -> None:
    """The same parameters enqueued four times, run by two worker processes (other worker index,
    other torch thread count, one after the other so each surely runs two): one value."""
    storage = f"sqlite:///{tmp_path / 'same.db'}"
    config = load_config(SMOKE_CONFIG)
    from optimize.search.space import load_space
    from optimize.study.runner import open_study

    space = load_space(SMOKE_SPACE)
    study = open_study(storage, "same", config, space, seed=config.study.seed)
    fixed = {
        "dropout_percent": 0.1,
        "window_size": 4,
        "learning_rate": 3e-3,
        **{f"w{i}": 0.3 + 0.05 * i for i in range(9)},
        "entry_threshold": 0.8,
        "exit_gap": 0.2,
    }
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for k in range(2):
        for _ in range(
            2
        ):  # a worker runs every queued trial: queue each worker's two before it starts
            study.enqueue_trial(fixed)
        args = ["-m", "optimize", "worker", "--config", str(SMOKE_CONFIG), "--space",
                str(SMOKE_SPACE), "--storage", storage, "--study-name", "same", "--n-trials",
                str(2 * (k + 1)), "--worker-index", str(k), "--threads", str(k + 1),
                "--log-file", str(tmp_path / "same.log")]  # fmt: skip
        out = run_python(args, env)
        assert out.returncode == 0, out.stdout + out.stderr
    trials = optuna.load_study(study_name="same", storage=storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert all(t.params == trials[0].params for t in trials)
    assert len({t.user_attrs["worker_pid"] for t in trials}) == 2  # really two processes
    assert len({t.value for t in trials}) == 1
    assert len({str(t.intermediate_values) for t in trials}) == 1


def test_killed_robustness_leaves_no_evaluation_process(smoke_study, tmp_path) -> None:
    """SIGKILL of `robustness --workers 2` while it evaluates: its spawned processes die with it."""
    import shutil
    import signal
    import time

    import psutil

    db = tmp_path / "kill.db"
    shutil.copy(smoke_study.removeprefix("sqlite:///"), db)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "optimize",
            "robustness",
            "--storage",
            f"sqlite:///{db}",
            "--study-name",
            "smoke",
            "--top",
            "2",
            "--budget",
            "6",
            "--seeds",
            "3",
            "--workers",
            "2",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    children: list = []
    while time.monotonic() < deadline and len(children) < 2:
        time.sleep(0.5)
        children = [
            c
            for c in psutil.Process(proc.pid).children(recursive=True)
            if "spawn_main" in " ".join(c.cmdline())
        ]
    assert len(children) >= 2, "the evaluation processes never started"
    time.sleep(15)  # started up (imports, data) and evaluating
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"orphaned evaluation processes: {[p.pid for p in alive]}"


def test_killed_race_resumes_to_the_same_winner_without_recomputing(
    smoke_study_file, tmp_path
) -> None:
    """SIGKILL of `robustness` in its third round (rounds 1 and 2 run together and are recorded;
    the race cannot be over: two candidates need four shared seed sets before a Friedman test can
    reject), then a rerun: the rerun computes only the values not stored yet (the stored records
    are untouched) and ends with the race, winner and values of an uninterrupted race on another
    copy of the study."""
    import signal
    import time

    pristine = f"sqlite:///{smoke_study_file}"  # no fresh value stored yet
    killed = copy_study(pristine, tmp_path / "killed.db")
    whole = copy_study(pristine, tmp_path / "whole.db")
    args = ["--study-name", "smoke", "--top", "2", "--budget", "12", "--seeds", "6"]
    command = [sys.executable, "-m", "optimize", "robustness", "--storage", killed, *args]
    study = optuna.load_study(study_name="smoke", storage=killed)
    assert read_values(study) == [] and RaceRecord.stored(study) is None
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, stored = time.monotonic() + 300, []
    while time.monotonic() < deadline and len(stored) < 5 and proc.poll() is None:
        time.sleep(0.05)
        stored = read_values(optuna.load_study(study_name="smoke", storage=killed))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    before = {attr_key(v.trial, v.seed_set): v for v in read_values(study)}
    assert 5 <= len(before) < 8, before
    record = RaceRecord.stored(optuna.load_study(study_name="smoke", storage=killed))
    assert record is not None and len(record.rounds) == 2 and record.stop is None  # mid-race

    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "race over" in rerun.stdout
    after_study = optuna.load_study(study_name="smoke", storage=killed)
    after = {attr_key(v.trial, v.seed_set): v for v in read_values(after_study)}
    for key, value in before.items():
        assert after[key] == value  # never recomputed: same value, time and duration
    resumed = RaceRecord.stored(after_study).race()
    assert len(after) == resumed.evaluations > len(before)  # the rest computed once each

    reference = run_robustness(
        optuna.load_study(study_name="smoke", storage=whole), top=2, budget=12, seed_sets=6
    )
    assert resumed == reference and resumed.winner == reference.winner is not None
    assert select_trial(after_study).number == reference.winner


def test_plan_most_evaluations_is_the_budget_or_every_candidate_on_every_seed_set():
    # what the progress bar counts to: a budget above candidates x seed sets is never reached
    assert (
        RobustnessPlan((1, 2, 3), budget=30, seed_sets=3, evaluations=0, rounds=0).most_evaluations
        == 9
    )
    assert (
        RobustnessPlan((1, 2, 3), budget=6, seed_sets=10, evaluations=0, rounds=0).most_evaluations
        == 6
    )
    assert RobustnessPlan((), budget=6, seed_sets=10, evaluations=0, rounds=0).most_evaluations == 0
