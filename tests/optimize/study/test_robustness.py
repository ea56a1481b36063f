"""Seeds that belong to the parameters, the robustness step and the selection by seed mean.

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
from optimize.search.objectives import get_objective
from optimize.search.space import TrialParams
from optimize.study.evaluate import evaluate
from optimize.study.inputs import StudyData
from optimize.study.records import study_config
from optimize.study.robustness import RobustnessPlan, missing_jobs, run_robustness, top_trials
from optimize.study.seednoise import (
    attr_key,
    best_by_seed_mean,
    noise_sentence,
    read_noise,
    value_iqr,
)
from optimize.study.selection import select_trial

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
        assert again.folds[-1]["value_so_far"] == trial.value


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


def test_robustness_stores_values_selects_by_mean_and_resumes(study) -> None:
    numbers = [t.number for t in top_trials(study, 2)]
    assert len(numbers) == 2
    before = best_by_seed_mean(study)
    assert before is None and select_trial(study).number == study.best_trial.number
    calls: list = []
    plans: list = []
    noise = run_robustness(study, top=2, seed_sets=2, on_plan=plans.append, on_value=calls.append)
    assert len(calls) == 4 and sorted(noise) == sorted(numbers)
    assert plans == [RobustnessPlan(top=2, seed_sets=2, evaluations=4)]
    for number, n in noise.items():
        assert n.seed_sets == (1, 2) and len(n.values) == 2 and np.isfinite(n.values).all()
        assert n.mean == pytest.approx(np.mean(n.values)) and n.std == pytest.approx(
            np.std(n.values, ddof=1)
        )
        assert n.recorded == study.trials[number].value
        for m in (1, 2):
            assert study.user_attrs[attr_key(number, m)]["value"] == n.values[m - 1]
    # fresh seed sets are other models: at least one value differs from the recorded one
    assert any(v != n.recorded for n in noise.values() for v in n.values)
    best = max(noise.values(), key=lambda n: (n.mean, -n.trial))
    assert best_by_seed_mean(study).number == best.trial
    assert select_trial(study).number == best.trial  # the default selection follows the mean
    other = next(n for n in numbers if n != best.trial)
    assert select_trial(study, other).number == other  # an explicit --trial still wins
    # a rerun evaluates nothing: every value is stored
    assert missing_jobs(study, 2, 2) == []
    again: list = []
    assert run_robustness(study, on_plan=plans.append, on_value=again.append) == noise
    assert again == [] and plans[-1] == RobustnessPlan(top=2, seed_sets=2, evaluations=0)
    # more seed sets later: only the new ones are computed
    assert [(n, m) for n, _, m in missing_jobs(study, 2, 3)] == [(numbers[0], 3), (numbers[1], 3)]
    iqr = value_iqr(study)
    assert iqr >= 0
    assert "IQR" in noise_sentence(noise[best.trial], iqr) or iqr == 0


def test_fresh_values_match_an_independent_evaluation(study, data) -> None:
    """A stored fresh value is evaluate(..., seed_set=m) of the trial's parameters."""
    noise = read_noise(study)
    if not noise:
        run_robustness(study, top=1, seed_sets=1)
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
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "optimize",
                "worker",
                "--config",
                str(SMOKE_CONFIG),
                "--space",
                str(SMOKE_SPACE),
                "--storage",
                storage,
                "--study-name",
                "same",
                "--n-trials",
                str(2 * (k + 1)),
                "--worker-index",
                str(k),
                "--threads",
                str(k + 1),
                "--log-file",
                str(tmp_path / "same.log"),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
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
