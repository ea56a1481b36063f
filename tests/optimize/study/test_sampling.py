"""Workers draw different parameters however they start, and a study stays reproducible: the
sampler is seeded by the number of the worker's first trial (unique in the study)."""

from __future__ import annotations

import itertools

import optuna
import pytest
from optuna.trial import TrialState

from optimize.search.space import load_space
from optimize.study.fingerprint import resume_seed
from optimize.study.runner import make_sampler, open_study
from optimize.study.sampling import FirstTrialSeeded, worker_seed
from tests.conftest import SMOKE_SPACE
from tests.optimize.study.helpers import (
    cli,
    fresh_pg_database,
    load,
    pg_unreachable,
    slow_space,
    worker_args,
    write_config,
)


def test_worker_seed_keeps_the_single_worker_rule():
    assert worker_seed(42, 0) == 42  # a new study's first worker: the configured seed
    assert worker_seed(42, 5) == resume_seed(42, 5)  # a worker resuming after 5 trials
    assert len({worker_seed(42, n) for n in range(50)}) == 50


def test_workers_that_join_at_the_same_moment_draw_different_parameters(tmp_path):
    """Two workers (same seed, same worker index) open the study before either has a trial, as
    two processes started together do: their first draws differ."""
    storage = f"sqlite:///{tmp_path / 'together.db'}"
    config, space = load(write_config(tmp_path)), load_space(SMOKE_SPACE)
    first, second = (open_study(storage, "t", config, space, seed=42) for _ in range(2))
    trials = [first.ask(), second.ask()]
    drawn = [space.sample(trial).to_dict() for trial in trials]
    assert drawn[0] != drawn[1]
    assert first.sampler.seed == 42 and second.sampler.seed == resume_seed(42, 1)


def test_a_single_worker_draws_what_the_configured_sampler_draws(tmp_path):
    """Reproducible as before: the first worker of a new study samples exactly like the
    configured sampler seeded with the study's seed."""
    config, space = load(write_config(tmp_path)), load_space(SMOKE_SPACE)
    ours = open_study(f"sqlite:///{tmp_path / 'a.db'}", "a", config, space, seed=42)
    plain = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'b.db'}",
        sampler=make_sampler(config.study, 42),
        directions=["maximize"],
    )
    for _ in range(3):
        a, b = ours.ask(), plain.ask()
        assert space.sample(a).to_dict() == space.sample(b).to_dict()
        ours.tell(a, 0.0)
        plain.tell(b, 0.0)


def test_the_wrapper_builds_its_sampler_at_the_first_trial():
    seeds = []

    def make(seed: int) -> optuna.samplers.BaseSampler:
        seeds.append(seed)
        return optuna.samplers.RandomSampler(seed=seed)

    sampler = FirstTrialSeeded(make, 7)
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"x": 0.5})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # trial 0
    assert seeds == [7] and sampler.seed == 7
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert seeds == [7]  # one sampler for the worker's whole life


def _started_together(storage: str, tmp_path) -> list[optuna.trial.FrozenTrial]:
    config, space = write_config(tmp_path), slow_space(tmp_path)  # both get a trial
    procs = [
        cli(*worker_args(config, storage, "together", 2, index=0, space=space)) for _ in range(2)
    ]
    for proc in procs:
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, out
    study = optuna.load_study(study_name="together", storage=storage)
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def _assert_all_different(trials: list[optuna.trial.FrozenTrial]) -> None:
    assert len(trials) >= 2
    for a, b in itertools.combinations(trials, 2):
        assert a.params != b.params, (a.number, b.number)
    seeds = {(t.user_attrs["worker_pid"], t.user_attrs["sampler_seed"]) for t in trials}
    assert len(seeds) == 2 and len({seed for _, seed in seeds}) == 2, seeds  # one per worker


def test_two_workers_started_together_draw_different_parameters(tmp_path):
    """The many-machines recipe, two `worker`s at once with the same index, on SQLite."""
    _assert_all_different(_started_together(f"sqlite:///{tmp_path / 'w.db'}", tmp_path))


@pytest.mark.slow  # about 20 s; the SQLite case runs by default
@pytest.mark.postgres
def test_two_workers_started_together_on_postgres(tmp_path):
    if reason := pg_unreachable():
        pytest.skip(reason)
    with fresh_pg_database("lstm_optuna_sampling") as url:
        _assert_all_different(_started_together(url, tmp_path))
