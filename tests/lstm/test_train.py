"""fit_predict on real features: learning, reproducibility, no look-ahead, NaN rows, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstm.inference
from lstm.params import LSTMParams
from lstm.train import FitOptions, FitResult, FitSpec, fit_predict, predict

TRAIN, PREDICT = slice(0, 360), slice(360, 480)


def _fit(
    features: np.ndarray, labels: np.ndarray, params: LSTMParams, seed: int = 7, **kw
) -> FitResult:
    spec = FitSpec(
        train=kw.pop("train", TRAIN),
        predict=kw.pop("predict", PREDICT),
        params=params,
        accelerator="cpu",
        **kw,
    )
    return fit_predict(features, labels, spec, seed)


@pytest.fixture(scope="module")
def fitted(
    real_features: np.ndarray, learnable_labels: np.ndarray, tiny_params: LSTMParams
) -> FitResult:
    return _fit(real_features, learnable_labels, tiny_params)


def test_result_is_aligned_with_the_slices(fitted: FitResult, tiny_params: LSTMParams) -> None:
    assert fitted.predictions.shape == (PREDICT.stop - PREDICT.start,)
    assert fitted.train_predictions.shape == (TRAIN.stop - TRAIN.start,)
    # The first predict rows take their history from the train rows before them (past data).
    assert np.isfinite(fitted.predictions).all()
    # Train rows 0..W-2 have no full window; labels 0..1 are NaN (dropped, not predicted away).
    w = tiny_params.window_size
    assert np.isnan(fitted.train_predictions[: w - 1]).all()
    assert np.isfinite(fitted.train_predictions[w - 1 :]).all()
    assert fitted.n_fit_samples + fitted.n_val_samples == TRAIN.stop - (w - 1)
    assert not fitted.model.training and fitted.device == "cpu"
    assert [h["epoch"] for h in fitted.history] == list(range(tiny_params.epochs))
    assert not torch.are_deterministic_algorithms_enabled()  # global flag restored


def test_loss_falls_on_a_learnable_series(fitted: FitResult) -> None:
    train_losses = [h["train_loss"] for h in fitted.history]
    val_losses = [h["val_loss"] for h in fitted.history]
    assert train_losses[-1] < train_losses[0]
    assert min(val_losses) < val_losses[0]
    assert fitted.history[fitted.best_epoch]["val_loss"] == min(val_losses)


def test_same_seed_same_predictions_other_seed_differs(
    fitted: FitResult,
    real_features: np.ndarray,
    learnable_labels: np.ndarray,
    tiny_params: LSTMParams,
) -> None:
    again = _fit(real_features, learnable_labels, tiny_params)
    np.testing.assert_array_equal(again.predictions, fitted.predictions)
    np.testing.assert_array_equal(again.train_predictions, fitted.train_predictions)
    other = _fit(real_features, learnable_labels, tiny_params, seed=8)
    assert not np.array_equal(other.predictions, fitted.predictions)


def test_no_look_ahead(
    fitted: FitResult,
    real_features: np.ndarray,
    learnable_labels: np.ndarray,
    tiny_params: LSTMParams,
) -> None:
    """Perturbing every row after t (features and labels) changes nothing at or before t."""
    t = PREDICT.start + 40
    feats, labels = real_features.copy(), learnable_labels.copy()
    rng = np.random.default_rng(0)
    feats[t + 1 :] = rng.normal(0, 50, feats[t + 1 :].shape)
    labels[t + 1 :] = rng.normal(0, 50, labels[t + 1 :].shape)
    moved = _fit(feats, labels, tiny_params)
    k = t - PREDICT.start
    np.testing.assert_array_equal(moved.predictions[: k + 1], fitted.predictions[: k + 1])
    assert not np.array_equal(moved.predictions[k + 1 :], fitted.predictions[k + 1 :])
    np.testing.assert_array_equal(moved.scaler.center, fitted.scaler.center)
    np.testing.assert_array_equal(moved.scaler.scale, fitted.scaler.scale)


def test_no_look_ahead_when_the_future_is_cut_off(
    fitted: FitResult,
    real_features: np.ndarray,
    learnable_labels: np.ndarray,
    tiny_params: LSTMParams,
) -> None:
    """Fitting on the rows up to t only (same train slice) predicts rows up to t bit for bit."""
    t = PREDICT.start + 40
    cut = _fit(
        real_features[: t + 1],
        learnable_labels[: t + 1],
        tiny_params,
        predict=slice(PREDICT.start, t + 1),
    )
    np.testing.assert_array_equal(cut.predictions, fitted.predictions[: t + 1 - PREDICT.start])
    np.testing.assert_array_equal(cut.train_predictions, fitted.train_predictions)


@pytest.mark.parametrize("batch", [lstm.inference.PREDICT_BATCH, 64])
def test_truncating_the_future_keeps_past_predictions_with_nan_rows(
    fitted: FitResult,
    real_features: np.ndarray,
    tiny_params: LSTMParams,
    batch: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cutting rows off the end changes no earlier prediction, bit for bit, even when a NaN row
    near the cut makes later windows invalid (the batches must not depend on later rows)."""
    monkeypatch.setattr(lstm.inference, "PREDICT_BATCH", batch)
    w, nan_row = tiny_params.window_size, 299
    feats = real_features.copy()
    feats[nan_row, 1] = np.nan
    full = predict(fitted.model, fitted.scaler, feats, slice(0, None), w)
    assert np.isnan(full[nan_row : nan_row + w]).all()
    assert np.isfinite(np.delete(full, np.r_[: w - 1, nan_row : nan_row + w])).all()
    for cut in (nan_row - 1, nan_row + 1, nan_row + 2, nan_row + w + 1, 400):
        part = predict(fitted.model, fitted.scaler, feats[:cut], slice(0, cut), w)
        np.testing.assert_array_equal(part, full[:cut], err_msg=f"{cut=}")
        later = predict(fitted.model, fitted.scaler, feats[:cut], slice(200, cut), w)
        np.testing.assert_array_equal(
            later, predict(fitted.model, fitted.scaler, feats, slice(200, None), w)[: cut - 200]
        )


def test_scaler_uses_train_rows_only(
    fitted: FitResult,
    real_features: np.ndarray,
    learnable_labels: np.ndarray,
    tiny_params: LSTMParams,
) -> None:
    feats = real_features.copy()
    feats[PREDICT] *= 100.0  # test rows: scaler unchanged
    test_moved = _fit(
        feats, learnable_labels, tiny_params, predict=slice(PREDICT.start, PREDICT.start + 8)
    )
    np.testing.assert_array_equal(test_moved.scaler.center, fitted.scaler.center)
    np.testing.assert_array_equal(test_moved.scaler.scale, fitted.scaler.scale)
    assert test_moved.scaler.label_center == fitted.scaler.label_center
    feats = real_features.copy()
    feats[TRAIN] *= 100.0  # train rows: scaler changes
    train_moved = _fit(
        feats, learnable_labels, tiny_params, predict=slice(PREDICT.start, PREDICT.start + 8)
    )
    assert not np.array_equal(train_moved.scaler.scale, fitted.scaler.scale)


def test_nan_rows_in_train_are_dropped(
    real_features: np.ndarray, learnable_labels: np.ndarray, tiny_params: LSTMParams
) -> None:
    feats, labels = real_features.copy(), learnable_labels.copy()
    feats[100, 1] = np.nan
    labels[[200, 201]] = np.nan
    feats[PREDICT.start + 10, 0] = np.inf
    res = _fit(feats, labels, tiny_params)
    w = tiny_params.window_size
    bad_train = set(range(w - 1)) | set(range(100, 100 + w)) | {200, 201}
    assert res.n_fit_samples + res.n_val_samples == TRAIN.stop - len(bad_train)
    # Rows whose window holds NaN are predicted as NaN, other rows are finite.
    assert np.isnan(res.train_predictions[100 : 100 + w]).all()
    assert np.isfinite(res.train_predictions[[99, 100 + w, 200, 201]]).all()
    nan_pred = np.flatnonzero(np.isnan(res.predictions))
    np.testing.assert_array_equal(nan_pred, np.arange(10, 10 + w))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"labels": np.zeros(5)},
            ValueError,
            r"labels must be 1-D with one value per feature row \(480\)",
        ),
        ({"train": slice(0, 300, 2)}, ValueError, r"train must be a contiguous slice"),
        ({"predict": slice(480, 500)}, ValueError, r"predict selects no rows of the 480"),
        ({"train": [0, 1]}, TypeError, r"train must be a slice"),
        ({"params": {"hidden_dim": 4}}, TypeError, r"params must be LSTMParams"),
        ({"feature_names": ["a"]}, ValueError, r"feature_names must name the 4 feature columns"),
        ({"train": slice(0, 5)}, ValueError, r"Too few usable training samples"),
        ({"seed": 1.5}, TypeError, r"seed must be an integer"),
        ({"seed": -1}, ValueError, r"seed must be in \[0, 2\*\*32\), but got seed=-1"),
    ],
)
def test_bad_input_is_named(
    real_features: np.ndarray,
    learnable_labels: np.ndarray,
    tiny_params: LSTMParams,
    kwargs: dict,
    error: type,
    match: str,
) -> None:
    args = {
        "labels": learnable_labels,
        "train": TRAIN,
        "predict": PREDICT,
        "params": tiny_params,
        "seed": 0,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        labels, seed = args.pop("labels"), args.pop("seed")
        fit_predict(real_features, labels, FitSpec(**args), seed)


def test_bf16_is_ignored_off_gpu_and_callbacks_and_logger_are_used(
    fitted: FitResult,
    real_features: np.ndarray,
    learnable_labels: np.ndarray,
    tiny_params: LSTMParams,
    tmp_path,
) -> None:
    from lightning.pytorch.callbacks import Callback

    class CountEpochs(Callback):
        def __init__(self) -> None:
            self.val_ends = 0

        def on_validation_end(self, trainer, pl_module) -> None:
            self.val_ends += 1

    counter = CountEpochs()
    res = _fit(
        real_features,
        learnable_labels,
        tiny_params.replace(precision="bf16"),
        options=FitOptions(callbacks=[counter], logger=tmp_path / "tb"),
    )
    np.testing.assert_array_equal(res.predictions, fitted.predictions)  # float32 on CPU
    assert counter.val_ends == len(res.history) == tiny_params.epochs
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_public_face_names_the_functions_not_the_modules() -> None:
    import lstm
    import lstm.train

    # a submodule named like a lazily exported function would shadow it once imported
    assert lstm.predict is lstm.train.predict is lstm.inference.predict
    assert lstm.fit_predict is lstm.train.fit_predict and lstm.FitOptions is lstm.train.FitOptions
