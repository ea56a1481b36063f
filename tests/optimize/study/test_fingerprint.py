"""A study's fingerprint: which differences refuse a resume, and the resumed sampler's seed."""

from __future__ import annotations

import dataclasses

from optimize.study.fingerprint import RESUMABLE_KEYS, fingerprint_differences, resume_seed


def test_differences_name_the_key_and_both_values():
    stored = {"config": {"walkforward": {"test_days": 7}}, "space": {"lstm.dropout": {"low": 0.1}}}
    current = {
        "config": {"walkforward": {"test_days": 10}},
        "space": {"lstm.dropout": {"low": 0.1}},
    }
    assert fingerprint_differences(stored, current) == [
        "config walkforward.test_days: stored 7, now 10"
    ]


def test_resumable_keys_and_json_round_trips_are_no_difference():
    assert "study.n_trials" in RESUMABLE_KEYS
    stored = {"config": {"study": {"n_trials": 10}, "data": {"pairs": ["BTC/USDT"]}}}
    current = {"config": {"study": {"n_trials": 50}, "data": {"pairs": ("BTC/USDT",)}}}
    assert fingerprint_differences(stored, current) == []


def test_a_missing_key_reads_as_absent():
    stored = {"config": {"data": {"end": "2025-01-01"}}, "space": {}}
    current = {"config": {"data": {"end": "2025-01-01", "start": "2024-01-01"}}, "space": {}}
    assert fingerprint_differences(stored, current) == [
        "config data.start: stored '<absent>', now '2024-01-01'"
    ]


def test_resume_seed_is_deterministic_and_depends_on_the_trials_held():
    assert resume_seed(7, 3) == resume_seed(7, 3)
    assert resume_seed(7, 3) != resume_seed(7, 4)
    assert 0 <= resume_seed(7, 3) < 2**32


def test_a_key_added_later_reads_as_its_default_on_resume():
    """A study made before the FreqAI pipeline keys existed resumes while they stay off."""
    from optimize.config import load_config
    from optimize.search.space import load_space
    from optimize.study.fingerprint import study_fingerprint
    from tests.conftest import SMOKE_CONFIG, SMOKE_SPACE

    config, space = load_config(SMOKE_CONFIG), load_space(SMOKE_SPACE)
    current = study_fingerprint(config, space)
    before = {"config": dict(current["config"]), "space": current["space"]}
    before["config"]["features"] = config.features.to_dict()  # the keys of the older version
    assert "DI_threshold" not in before["config"]["features"]
    assert fingerprint_differences(before, current) == []
    changed = study_fingerprint(
        dataclasses.replace(
            config, features=dataclasses.replace(config.features, DI_threshold=1.0)
        ),
        space,
    )
    assert fingerprint_differences(before, changed) == [
        "config features.DI_threshold: stored '<absent>', now 1.0"
    ]


def test_spot_studies_made_before_markets_and_directions_resume():
    """The spot configs and spaces shipped make the fingerprint they made before ``data.markets``,
    ``signal.direction`` and ``backtest.leverage`` existed; naming a markets file is a change."""
    from pathlib import Path

    from optimize.config import load_config
    from optimize.search.space import load_space
    from optimize.study.fingerprint import study_fingerprint

    root = Path(__file__).resolve().parents[3]
    for name in ("default", "smoke", "gpu"):
        config = load_config(root / "configs" / f"{name}.yaml")
        space = load_space(root / "search_spaces" / f"{name}.yaml")
        current = study_fingerprint(config, space)
        before = {
            "config": {**current["config"], "data": dict(current["config"]["data"])},
            "space": current["space"],
        }
        del before["config"]["data"]["markets"]  # the key of the older version
        assert not any("direction" in k or k.startswith("backtest.") for k in current["space"])
        assert fingerprint_differences(before, current) == [], name
        named = dataclasses.replace(
            config, data=dataclasses.replace(config.data, markets="mine.json")
        )
        assert fingerprint_differences(before, study_fingerprint(named, space)) == [
            "config data.markets: stored '<absent>', now 'mine.json'"
        ]
