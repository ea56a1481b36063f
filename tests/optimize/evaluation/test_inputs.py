"""A study's inputs with FreqAI's pipeline: correlated pairs are loaded and checked like traded
pairs (one clear error when missing), their columns follow the pair's own, and with the pipeline
off every fold's fit and value are what they were without it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml

from optimize.evaluation.inputs import StudyData
from optimize.evaluation.trial import evaluate
from optimize.search.objectives import get_objective
from optimize.search.space import load_space, parse_space
from optimize.study.runner import StudyInputError, prepare_study_data
from tests.optimize.study.helpers import SMOKE_SPACE, load, write_config


def test_a_correlated_pair_is_loaded_like_a_traded_one_and_follows_the_pair_s_columns(tmp_path):
    config = load(write_config(tmp_path, features={"include_corr_pairlist": ["SOL/USDT"]}))
    data = StudyData.load(config, corr_pairs=("ETH/USDT",))
    assert set(data.corr_pairs) == {"SOL/USDT", "ETH/USDT"}  # the config's and the space's
    own = data.pairs["BTC/USDT"]
    matrix, names = data.features_of("BTC/USDT", ("SOL/USDT",))
    sol = data.corr_pairs["SOL/USDT"]
    assert names == own.feature_names + sol.feature_names
    assert all("SOL/USDT" in n for n in sol.feature_names)
    np.testing.assert_array_equal(matrix[:, : len(own.feature_names)], own.features)
    np.testing.assert_array_equal(matrix[:, len(own.feature_names) :], sol.features)
    # without correlated pairs, or with only the pair itself (FreqAI skips it): its own matrix
    assert data.features_of("BTC/USDT", ())[0] is own.features
    assert data.features_of("BTC/USDT", ("BTC/USDT",))[0] is own.features


def test_a_missing_correlated_pair_is_one_clear_error_before_the_study(tmp_path):
    config = load(write_config(tmp_path, features={"include_corr_pairlist": ["XRP/USDT"]}))
    space = load_space(SMOKE_SPACE)
    with pytest.raises(StudyInputError) as err:
        prepare_study_data(config, space)
    message = str(err.value)
    assert "correlated pair XRP/USDT (features.include_corr_pairlist)" in message
    assert "No 1h candles for 'XRP/USDT'" in message and "\n" not in message
    # the same from a search space's choice
    raw = yaml.safe_load(SMOKE_SPACE.read_text())
    raw["features"] = {
        "include_corr_pairlist": {"type": "categorical", "choices": [[], ["XRP/USDT"]]}
    }
    with pytest.raises(StudyInputError, match=r"correlated pair XRP/USDT"):
        prepare_study_data(load(write_config(tmp_path)), parse_space(raw, "space.yaml"))


def test_a_correlated_pair_must_cover_the_span(tmp_path):
    """SOL/USDT's embedded candles start on 2020-08-11: too late for a span from 2020-06-01."""
    span = {"start": "2020-06-01", "end": "2020-08-20"}
    config = load(
        write_config(tmp_path, data=span, features={"include_corr_pairlist": ["SOL/USDT"]})
    )
    with pytest.raises(
        ValueError, match=r"SOL/USDT \(features.include_corr_pairlist\) 1h candles start at 2020-08"
    ):
        StudyData.load(config)


def test_the_pipeline_off_is_the_study_without_it_bit_for_bit(tmp_path):
    """Every key at 0 / empty, set by the trial: the same value, folds and trades as a trial
    without them."""
    config = load(write_config(tmp_path))
    data = StudyData.load(config)
    space = load_space(SMOKE_SPACE)
    params = space.build({**space.constants, **{k: d.low for k, d in space.distributions.items()}})
    off = dataclasses.replace(
        params,
        features={
            "DI_threshold": 0,
            "weight_factor": 0,
            "noise_standard_deviation": 0,
            "include_corr_pairlist": (),
        },
    )
    objective = get_objective("sharpe")
    plain, zero = evaluate(data, params, objective), evaluate(data, off, objective)
    assert plain.values == zero.values and plain.trades == zero.trades
    assert plain.folds == zero.folds and plain.daily_returns == zero.daily_returns
    assert all("di_blocked" not in fold.to_dict() for fold in plain.folds)
