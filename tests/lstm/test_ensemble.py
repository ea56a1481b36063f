"""Ensembles: K members that are exactly the single models of their seeds; thread-pinned fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm.fitspec import FitSpec
from lstm.params import LSTMParams
from lstm.train import (
    ensemble_mean,
    fit_ensemble,
    fit_predict,
    predict,
    predict_ensemble,
    record_fit_timings,
)

TRAIN, PREDICT = slice(0, 360), slice(360, 480)
SEEDS = (11, 12, 13)


def _single(features: np.ndarray, labels: np.ndarray, params: LSTMParams, seed: int):
    return fit_predict(features, labels, FitSpec(TRAIN, PREDICT, params, accelerator="cpu"), seed)


@pytest.fixture(scope="module")
def ensemble(real_features: np.ndarray, learnable_labels: np.ndarray, tiny_params: LSTMParams):
    spec = FitSpec(TRAIN, PREDICT, tiny_params, accelerator="cpu")
    return fit_ensemble(real_features, learnable_labels, spec, SEEDS)


def test_one_member_is_the_single_model(real_features, learnable_labels, tiny_params) -> None:
    one = fit_ensemble(
        real_features,
        learnable_labels,
        FitSpec(TRAIN, PREDICT, tiny_params, accelerator="cpu"),
        (SEEDS[0],),
    )
    alone = _single(real_features, learnable_labels, tiny_params, SEEDS[0])
    np.testing.assert_array_equal(one.predictions, alone.predictions)
    np.testing.assert_array_equal(one.train_predictions, alone.train_predictions)


def test_members_equal_their_seeds_trained_alone(
    ensemble, real_features, learnable_labels, tiny_params
) -> None:
    alone = [_single(real_features, learnable_labels, tiny_params, s) for s in SEEDS]
    for member, single in zip(ensemble.members, alone, strict=True):
        np.testing.assert_array_equal(member.predictions, single.predictions)
        for (name, a), b in zip(
            member.model.state_dict().items(), single.model.state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), name
    expected = np.mean([s.predictions for s in alone], axis=0)
    np.testing.assert_array_equal(ensemble.predictions, expected)
    np.testing.assert_array_equal(
        ensemble.train_predictions, np.mean([s.train_predictions for s in alone], axis=0)
    )
    # Different seeds really give different members (else the mean proves nothing).
    assert not np.array_equal(alone[0].predictions, alone[1].predictions)
    assert ensemble.seeds == SEEDS


def test_predict_ensemble_reproduces_the_fit(ensemble, real_features, tiny_params) -> None:
    again = predict_ensemble(
        [m.model for m in ensemble.members],
        ensemble.scaler,
        real_features,
        PREDICT,
        tiny_params.window_size,
    )
    np.testing.assert_array_equal(again, ensemble.predictions)


def test_fit_does_not_depend_on_the_callers_thread_count(
    real_features, learnable_labels, tiny_params
) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _single(real_features, learnable_labels, tiny_params, 5)
        torch.set_num_threads(2)
        two = _single(real_features, learnable_labels, tiny_params, 5)
        assert torch.get_num_threads() == 2  # restored after the fit
        again = predict(two.model, two.scaler, real_features, PREDICT, tiny_params.window_size)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one.predictions, two.predictions)
    np.testing.assert_array_equal(again, two.predictions)


def test_ensemble_mean_rules() -> None:
    a = np.array([1.0, np.nan, 3.0])
    np.testing.assert_array_equal(ensemble_mean([a]), a)
    np.testing.assert_array_equal(ensemble_mean([a, a + 1]), np.array([1.5, np.nan, 3.5]))
    with pytest.raises(ValueError, match="at least one member"):
        ensemble_mean([])
    with pytest.raises(ValueError, match="one seed per ensemble member"):
        fit_ensemble(
            np.zeros((10, 2)), np.zeros(10), FitSpec(slice(0, 5), slice(5, 10), LSTMParams()), ()
        )


def test_fit_timings_are_recorded_only_while_a_recorder_is_open(
    ensemble, real_features, learnable_labels, tiny_params
) -> None:
    with record_fit_timings() as timings, record_fit_timings() as inner:
        spec = FitSpec(TRAIN, PREDICT, tiny_params, accelerator="cpu")
        again = fit_ensemble(real_features, learnable_labels, spec, SEEDS[:2])
        single = _single(real_features, learnable_labels, tiny_params, SEEDS[0])
    _single(real_features, learnable_labels, tiny_params, SEEDS[0])  # after: not recorded
    assert inner == timings and [t.members for t in timings] == [2, 1]
    whole, one = timings
    assert 0 < whole.trainer_seconds < whole.seconds
    assert whole.trainer_seconds == sum(m.trainer_seconds for m in again.members)
    assert one.trainer_seconds == single.trainer_seconds
    assert whole.end <= one.start  # in call order
    # recording changes nothing the fit computes
    np.testing.assert_array_equal(again.members[1].predictions, ensemble.members[1].predictions)
