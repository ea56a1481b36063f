"""Checkpoints: identical predictions after save -> load, weights-only loading, clear errors."""

from __future__ import annotations

import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from lstm.checkpoint import FORMAT, load_checkpoint, package_version, save_checkpoint
from lstm.fitspec import FitSpec
from lstm.module import LSTMLightningModule
from lstm.params import LSTMParams
from lstm.train import FitResult, fit_predict, predict

TRAIN, PREDICT = slice(0, 300), slice(300, 480)
NAMES = ["ret", "range", "body", "dvol"]


@pytest.fixture(scope="module")
def fitted(
    real_features: np.ndarray, learnable_labels: np.ndarray, tiny_params: LSTMParams
) -> FitResult:
    spec = FitSpec(TRAIN, PREDICT, tiny_params, feature_names=NAMES, accelerator="cpu")
    return fit_predict(real_features, learnable_labels, spec, 3)


def test_save_load_gives_identical_predictions(
    fitted: FitResult, real_features: np.ndarray, tmp_path: Path
) -> None:
    path = save_checkpoint(
        fitted, None, tmp_path / "sub" / "fold0.pt", extra={"fold": 0, "pair": "BTC/USDT"}
    )
    module, scaler, meta = load_checkpoint(path)
    w = meta["params"].window_size
    np.testing.assert_array_equal(
        predict(module, scaler, real_features, PREDICT, w), fitted.predictions
    )
    np.testing.assert_array_equal(
        predict(module, scaler, real_features, TRAIN, w), fitted.train_predictions
    )
    assert meta["params"] == fitted.params and meta["feature_names"] == NAMES
    assert meta["version"] == package_version() and meta["format"] == FORMAT
    assert meta["extra"] == {"fold": 0, "pair": "BTC/USDT"}
    assert not module.training


def test_file_is_plain_data_for_weights_only_load(fitted: FitResult, tmp_path: Path) -> None:
    path = save_checkpoint(
        fitted.model,
        fitted.scaler,
        tmp_path / "m.pt",
        feature_names=NAMES,
        extra={"thresholds": (0.1, np.float64(0.2)), "q": np.arange(3)},
    )
    payload = torch.load(path, weights_only=True)
    assert payload["hyperparameters"]["window_size"] == fitted.params.window_size
    assert payload["extra"]["thresholds"] == [0.1, 0.2]
    assert isinstance(payload["state_dict"]["model.fc2.weight"], torch.Tensor)

    # The same loader refuses files holding pickled classes, so the check above is meaningful.
    torch.save({"obj": Fraction(1, 3)}, tmp_path / "bad.pt")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "bad.pt", weights_only=True)


def test_unsupported_extra_and_mismatched_names(fitted: FitResult, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"extra\['cfg'\]\['obj'\] must hold only"):
        save_checkpoint(fitted, None, tmp_path / "x.pt", extra={"cfg": {"obj": object()}})
    with pytest.raises(ValueError, match=r"name the model's 4 inputs, but got len\(names\)=2"):
        save_checkpoint(fitted, None, tmp_path / "x.pt", feature_names=["a", "b"])
    with pytest.raises(TypeError, match="needs the fold's RobustScaler"):
        save_checkpoint(fitted.model, None, tmp_path / "x.pt")
    with pytest.raises(TypeError, match="FitResult or an LSTMLightningModule"):
        save_checkpoint({"model": 1}, None, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_load_rejects_foreign_files(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not an LSTM checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="No LSTM checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_untrained_module_round_trip(real_features: np.ndarray, tmp_path: Path) -> None:
    """Batch-norm running statistics and every weight survive, not just the fitted ones."""
    from lstm.data import RobustScaler

    torch.manual_seed(0)
    module = LSTMLightningModule(4, num_lstm_layers=1, hidden_dim=4, window_size=2).eval()
    module.model.norms[0].running_mean.fill_(0.25)
    scaler = RobustScaler.fit(real_features)
    loaded, loaded_scaler, _ = load_checkpoint(save_checkpoint(module, scaler, tmp_path / "u.pt"))
    assert float(loaded.model.norms[0].running_mean[0]) == 0.25
    np.testing.assert_array_equal(
        predict(loaded, loaded_scaler, real_features, slice(0, 50), 2),
        predict(module, scaler, real_features, slice(0, 50), 2),
    )
