"""The dissimilarity index: FreqAI's own pipeline gives the same index on the same rows, its fit
sees the training rows only, and a row's index never depends on the rows predicted with it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from freqtrade.freqai.freqai_interface import IFreqaiModel

from lstm.fitspec import FitSpec
from lstm.params import LSTMParams
from optimize.data import load_candles
from strategy.dissimilarity import DissimilarityIndex, mean_distance
from strategy.features import FeatureConfig, build_features
from strategy.pipeline import DataPipeline, fit_window
from strategy.target import TargetBasis, make_labels

TRAIN = slice(400, 1120)  # 30 days of 1h candles, past every indicator's warm-up
TEST = slice(1120, 1360)
THRESHOLD = 0.5
TINY = LSTMParams(
    num_lstm_layers=1,
    hidden_dim=8,
    dropout_percent=0.0,
    window_size=4,
    learning_rate=3e-3,
    batch_size=128,
    epochs=1,
    early_stopping_patience=1,
)


@pytest.fixture(scope="module")
def window(datadir) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Real features (the smoke config's set) and labels of BTC/USDT, float32 like the study's."""
    config = FeatureConfig(include_timeframes=("1h", "4h"), indicator_periods_candles=(10,))
    candles = {
        tf: load_candles("BTC/USDT", tf, datadir=datadir, start="2025-05-01", end="2025-07-15")
        for tf in config.include_timeframes
    }
    frame = build_features(candles, config)
    labels = make_labels(TargetBasis.from_candles(candles["1h"]).score((0.5,) * 9), 2)
    return frame.to_numpy(np.float32), labels, tuple(frame.columns)


def _freqai_pipeline(threshold: float):
    """FreqAI's own data pipeline with only the dissimilarity index switched on."""
    model = SimpleNamespace(freqai_info={"feature_parameters": {"DI_threshold": threshold}})
    return IFreqaiModel.define_data_pipeline(model, threads=1)


def test_index_is_freqai_s_on_the_same_rows(window):
    x, y, names = window
    ours = DissimilarityIndex.fit(x[TRAIN], y[TRAIN], THRESHOLD)
    rows = np.isfinite(x[TRAIN]).all(axis=1) & np.isfinite(y[TRAIN])  # FreqAI's filter_features
    train = pd.DataFrame(x[TRAIN][rows].astype(np.float64), columns=list(names))
    test = pd.DataFrame(x[TEST].astype(np.float64), columns=list(names))
    pipe = _freqai_pipeline(THRESHOLD)
    pipe.fit_transform(train)
    _, do_predict, _ = pipe.transform(test, outlier_check=True)
    theirs = pipe["di"]
    # the same scaled training rows, the same mean distance, the same index and do_predict
    np.testing.assert_allclose(ours.train, theirs.trained_data, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.mean_distance, theirs.avg_mean_dist, rtol=1e-12)
    values = ours.values(x[TEST])
    np.testing.assert_allclose(values, theirs.di_values, rtol=1e-9)
    np.testing.assert_array_equal(ours.allowed(x[TEST]).astype(int), np.asarray(do_predict))
    blocked = int((~ours.allowed(x[TEST])).sum())
    assert 0 < blocked < TEST.stop - TEST.start  # the case blocks some candles, not all


def test_mean_distance_blocks_do_not_change_it():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(1300, 5))  # more rows than one block
    d = np.sqrt(((rows[:, None, :] - rows[None, :, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(mean_distance(rows), d.sum() / (1300 * 1299), rtol=1e-12)


def test_a_row_s_index_does_not_depend_on_the_rows_predicted_with_it(window):
    x, y, _ = window
    index = DissimilarityIndex.fit(x[TRAIN], y[TRAIN], THRESHOLD)
    full = index.values(x[TEST])
    for a, b in ((0, 1), (17, 90), (100, 240)):
        part = index.values(x[TEST][a:b])
        np.testing.assert_array_equal(part, full[a:b])  # bit for bit


def test_nan_rows_have_no_index_and_are_never_allowed(window):
    x, y, _ = window
    index = DissimilarityIndex.fit(x[TRAIN], y[TRAIN], THRESHOLD)
    rows = x[TEST].copy()
    rows[3, 0] = np.nan
    assert np.isnan(index.values(rows)[3]) and not index.allowed(rows)[3]


def test_fit_sees_nothing_after_the_training_window(window):
    """Truncation: rows after the training window's last row, changed or cut away, change nothing
    fitted (the index, the scaler, the ensemble's weights and in-sample predictions)."""
    x, y, names = window
    changed_x, changed_y = x.copy(), y.copy()
    changed_x[TRAIN.stop :] *= 3.0
    changed_y[TRAIN.stop :] = -changed_y[TRAIN.stop :]
    pipeline = DataPipeline(
        DI_threshold=THRESHOLD, weight_factor=0.65, noise_standard_deviation=0.1
    )
    fits = [
        fit_window(
            fx[TRAIN.start : stop],
            fy[TRAIN.start : stop],
            FitSpec(
                train=slice(0, TRAIN.stop - TRAIN.start),
                predict=slice(TRAIN.stop - TRAIN.start - 1, TRAIN.stop - TRAIN.start),
                params=TINY,
                label_horizon=2,
                feature_names=names,
                accelerator="cpu",
                pipeline=pipeline.fit,
            ),
            (11,),
            DI_threshold=pipeline.DI_threshold,
        )
        for fx, fy, stop in (
            (x, y, TEST.stop),
            (changed_x, changed_y, TEST.stop),
            (x, y, TRAIN.stop),
        )
    ]
    first = fits[0]
    for other in fits[1:]:
        a, b = first.dissimilarity, other.dissimilarity
        np.testing.assert_array_equal(a.train, b.train)
        assert a.mean_distance == b.mean_distance
        np.testing.assert_array_equal(a.scaler.data_min, b.scaler.data_min)
        np.testing.assert_array_equal(a.scaler.data_max, b.scaler.data_max)
        np.testing.assert_array_equal(
            first.ensemble.train_predictions, other.ensemble.train_predictions
        )
        for key, value in first.ensemble.members[0].model.state_dict().items():
            assert np.array_equal(value, other.ensemble.members[0].model.state_dict()[key]), key


def test_round_trip_through_a_checkpoint_dict(window):
    x, y, _ = window
    index = DissimilarityIndex.fit(x[TRAIN], y[TRAIN], THRESHOLD)
    again = DissimilarityIndex.from_dict(index.to_dict())
    np.testing.assert_array_equal(again.values(x[TEST]), index.values(x[TEST]))


def test_bad_fits_say_why(window):
    x, y, _ = window
    with pytest.raises(ValueError, match="at least 2 training rows"):
        DissimilarityIndex.fit(x[TRAIN][:1], y[TRAIN][:1], THRESHOLD)
    with pytest.raises(ValueError, match="DI_threshold"):
        DissimilarityIndex.fit(x[TRAIN], y[TRAIN], 0.0)
