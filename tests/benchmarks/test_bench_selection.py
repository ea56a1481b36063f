"""The selection benchmark's arithmetic on synthetic values (the real run trains; `python -m
benchmarks --only selection --quick` runs it end to end)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.selection import SAME_BUDGET, StudyValues, designs, noise_figures, regrets, select

RACES = {"race_same": (4, SAME_BUDGET, SAME_BUDGET), "race_defaults": (6, 18, 8)}


def _study(seed: int = 0, trials: int = 12, sets: int = 16, shared: float = 0.5) -> StudyValues:
    rng = np.random.default_rng(seed)
    true = rng.normal(size=trials)
    common = rng.normal(size=sets)
    noise = np.sqrt(shared) * common[None, :] + np.sqrt(1 - shared) * rng.normal(
        size=(trials, sets)
    )
    return StudyValues(
        list(range(trials)), true + rng.normal(size=trials), true[:, None] + 0.5 * noise
    )


def test_select_uses_recorded_ranks_and_the_given_seed_sets_only() -> None:
    sv = _study()
    blocks = np.arange(8)
    picks = select(sv, blocks, RACES)
    order = np.argsort(-sv.recorded)
    assert picks["recorded"] == (int(order[0]), 0)
    top3 = order[:3]
    assert picks["top3x3"] == (int(top3[np.argmax(sv.fresh[top3][:, :3].mean(1))]), 9)
    assert picks["floor"] == (int(np.argmax(sv.fresh[:, :8].mean(1))), 12 * 8)
    assert picks["race_same"][1] <= SAME_BUDGET and picks["race_defaults"][1] <= 18
    assert picks["race_same"][0] in order[:4] and picks["race_defaults"][0] in order[:6]
    # values outside the given seed sets change nothing
    other = StudyValues(sv.numbers, sv.recorded, sv.fresh.copy())
    other.fresh[:, 8:] = -1e9
    assert select(other, blocks, RACES) == picks


def test_regrets_are_zero_for_a_perfect_pick_and_noise_figures_are_shares() -> None:
    sv = _study()
    out = regrets(sv, RACES, splits=20, seed=1)
    assert set(out) == {"recorded", "top3x3", "floor", "race_same", "race_defaults"}
    for regret, evaluations, hit in out.values():
        assert regret >= 0 and 0 <= hit <= 1 and evaluations >= 0
    # no noise: the truly best trial is the best recorded -> every fresh design finds it
    exact = StudyValues(sv.numbers, np.arange(12.0)[::-1], np.tile(np.arange(12.0)[::-1, None], 16))
    for key in ("top3x3", "floor", "race_same", "race_defaults"):
        assert regrets(exact, RACES, 5, 0)[key][0] == 0.0
    std_iqr, shared = noise_figures(_study(shared=0.9, sets=400))
    assert 0 < std_iqr and shared == pytest.approx(0.9, abs=0.1)


def test_designs_follow_the_config_defaults_and_default_yaml() -> None:
    from benchmarks import REPO_ROOT
    from optimize.config import StudyConfig, load_config

    races = designs(trials=20)
    d, y = StudyConfig(), load_config(REPO_ROOT / "configs" / "default.yaml").study
    assert races["race_same"] == (4, 9, 9)
    assert races["race_defaults"] == (d.robustness_top, d.robustness_budget, d.robustness_seed_sets)
    assert races["race_default_yaml"] == (
        y.robustness_top,
        y.robustness_budget,
        y.robustness_seed_sets,
    )
    assert designs(trials=2)["race_defaults"][0] == 2


def test_the_floor_beats_best_3_x_3_when_the_best_trial_was_recorded_low() -> None:
    # the truly best trial ranks last by recorded value: only the floor looks at it
    rng = np.random.default_rng(3)
    true = np.arange(12.0)
    fresh = true[:, None] + 0.3 * rng.normal(size=(12, 16))
    sv = StudyValues(list(range(12)), -true, fresh)
    out = regrets(sv, RACES, splits=20, seed=0)
    assert out["floor"][0] < out["top3x3"][0]
    assert out["floor"][2] > 0.9  # picks the truly best
