"""FreqAI's recency weights and training noise in a fit: FreqAI's own numbers, off means today's
fit bit for bit, on changes the fit reproducibly, and nothing of it reaches a prediction's
input."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from datasieve.transforms import SKLearnWrapper, VarianceThreshold
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen
from sklearn.preprocessing import MinMaxScaler

from lstm.data import RobustScaler
from lstm.fitspec import FitSpec
from lstm.params import LSTMParams
from lstm.pipeline import FitPipeline, RangeScaler, freqai_rows, recency_weights, training_noise
from lstm.prepare import prepare
from lstm.seeds import noise_generator
from lstm.train import FitResult, fit_predict

TRAIN, PREDICT = slice(0, 360), slice(360, 480)


def _freqai_weights(n: int, factor: float) -> np.ndarray:
    """FreqAI's own ``set_weights_higher_recent`` (it reads only the config)."""
    kitchen = SimpleNamespace(config={"freqai": {"feature_parameters": {"weight_factor": factor}}})
    return FreqaiDataKitchen.set_weights_higher_recent(kitchen, n)


@pytest.mark.parametrize(("n", "factor"), [(1, 0.65), (7, 0.65), (2160, 0.65), (500, 3.0)])
def test_recency_weights_are_freqai_s(n: int, factor: float) -> None:
    ours = recency_weights(n, factor)
    np.testing.assert_array_equal(ours, _freqai_weights(n, factor))
    assert ours[-1] == 1.0 and np.all(np.diff(ours) > 0)  # the newest row weighs most


def test_sample_weights_are_freqai_s_over_its_training_rows(
    real_features: np.ndarray, learnable_labels: np.ndarray, tiny_params: LSTMParams
) -> None:
    """FreqAI weighs the rows it keeps (finite features and label); a window weighs what its last
    row weighs."""
    x = real_features.copy()
    y = learnable_labels.copy()
    x[100:103, 1] = np.nan  # a hole FreqAI drops (and the windows across it are unusable)
    y[200] = np.nan
    spec = FitSpec(TRAIN, PREDICT, tiny_params, pipeline=FitPipeline(weight_factor=0.65))
    prep = prepare(x, y, spec)
    kept = freqai_rows(x[TRAIN], y[TRAIN])
    expected = np.full(TRAIN.stop, np.nan)
    expected[np.flatnonzero(kept)] = _freqai_weights(int(kept.sum()), 0.65)
    assert prep.lo == 0
    np.testing.assert_array_equal(prep.weights[: TRAIN.stop], expected.astype(np.float32))
    samples = np.concatenate([prep.fit_rows, prep.val_rows])
    assert np.isfinite(prep.weights[samples]).all()  # every sample has its last row's weight
    assert np.isnan(prep.weights[TRAIN.stop :]).all()  # nothing outside the training rows


def test_range_scaler_is_freqai_s_variance_threshold_and_min_max(real_features) -> None:
    x = real_features[:300].astype(np.float64).copy()
    x[:, 2] = 5.0  # a constant column: FreqAI's VarianceThreshold drops it
    scaler = RangeScaler.fit(x)
    vt = VarianceThreshold(threshold=0)
    mm = SKLearnWrapper(MinMaxScaler(feature_range=(-1, 1)))
    theirs, *_ = vt.fit_transform(x)
    theirs, *_ = mm.fit_transform(theirs)
    np.testing.assert_array_equal(scaler.kept, vt.mask)
    np.testing.assert_allclose(scaler.transform(x), theirs, rtol=0, atol=1e-12)
    later = real_features[300:].astype(np.float64)
    np.testing.assert_allclose(
        scaler.transform(later), mm.transform(vt.transform(later)[0])[0], rtol=0, atol=1e-12
    )
    assert scaler.half_range[2] == 0.0


def _fit(x, y, params, seed=7, pipeline=None, **kw) -> FitResult:
    pipeline = FitPipeline() if pipeline is None else pipeline
    spec = FitSpec(TRAIN, PREDICT, params, accelerator="cpu", pipeline=pipeline, **kw)
    return fit_predict(x, y, spec, seed)


@pytest.fixture(scope="module")
def plain(real_features, learnable_labels, tiny_params) -> FitResult:
    return _fit(real_features, learnable_labels, tiny_params)


def _same_fit(a: FitResult, b: FitResult) -> None:
    np.testing.assert_array_equal(a.predictions, b.predictions)
    np.testing.assert_array_equal(a.train_predictions, b.train_predictions)
    assert a.history == b.history
    for (name, p), (_, q) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert np.array_equal(p.numpy(), q.numpy()), name


def test_off_is_the_unweighted_noise_free_fit_bit_for_bit(
    plain, real_features, learnable_labels, tiny_params
) -> None:
    off = FitPipeline(weight_factor=0, noise_standard_deviation=0)
    _same_fit(plain, _fit(real_features, learnable_labels, tiny_params, pipeline=off))


@pytest.mark.parametrize(
    "pipeline",
    [FitPipeline(weight_factor=0.65), FitPipeline(noise_standard_deviation=0.1)],
    ids=["weights", "noise"],
)
def test_on_changes_the_fit_and_reproduces_it(
    pipeline, plain, real_features, learnable_labels, tiny_params
) -> None:
    a = _fit(real_features, learnable_labels, tiny_params, pipeline=pipeline)
    b = _fit(real_features, learnable_labels, tiny_params, pipeline=pipeline)
    _same_fit(a, b)
    assert not np.array_equal(a.predictions, plain.predictions)


def test_noise_comes_from_the_member_seed(real_features, learnable_labels, tiny_params) -> None:
    noisy = FitPipeline(noise_standard_deviation=0.1)
    a = _fit(real_features, learnable_labels, tiny_params, seed=7, pipeline=noisy)
    b = _fit(real_features, learnable_labels, tiny_params, seed=8, pipeline=noisy)
    assert not np.array_equal(a.predictions, b.predictions)
    first = training_noise(5, np.ones(3), 0.1, 7)
    np.testing.assert_array_equal(first, training_noise(5, np.ones(3), 0.1, 7))
    assert not np.array_equal(first, training_noise(5, np.ones(3), 0.1, 8))
    # the noise stream is not the seed's plain numpy stream
    assert not np.array_equal(
        noise_generator(7).standard_normal(4), np.random.default_rng(7).standard_normal(4)
    )


def test_noise_has_freqai_s_size_in_its_range_scale(real_features, learnable_labels) -> None:
    """``sigma`` in FreqAI's [-1, 1] scale is ``sigma * (max - min) / 2`` in feature units."""
    x = real_features[TRAIN].astype(np.float64)
    rows = freqai_rows(x, learnable_labels[TRAIN])
    half = RangeScaler.fit(x[rows]).half_range
    robust = RobustScaler.fit(x, learnable_labels[TRAIN])
    noise = training_noise(200_000, half / robust.scale, 0.1, 3)
    in_range_units = noise * robust.scale / half
    np.testing.assert_allclose(in_range_units.std(axis=0), 0.1, rtol=0.01)
    np.testing.assert_allclose(in_range_units.mean(axis=0), 0.0, atol=0.001)


def test_noise_never_reaches_a_prediction_s_input(
    real_features, learnable_labels, tiny_params
) -> None:
    """The fitted model of a noisy fit predicts the clean rows: its predictions are what
    predicting the clean features with it gives."""
    from lstm.train import predict

    fit = _fit(
        real_features,
        learnable_labels,
        tiny_params,
        pipeline=FitPipeline(noise_standard_deviation=0.2),
    )
    again = predict(fit.model, fit.scaler, real_features, PREDICT, tiny_params.window_size)
    np.testing.assert_array_equal(fit.predictions, again)
    inside = predict(fit.model, fit.scaler, real_features, TRAIN, tiny_params.window_size)
    np.testing.assert_array_equal(fit.train_predictions, inside)
