"""LSTMRegressor: shapes, batch independence (and the seed defect it fixes), window locality."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from torch import nn

from lstm.data import RobustScaler
from lstm.model import LSTMRegressor
from lstm.module import LSTMLightningModule
from lstm.params import LSTMParams
from lstm.train import predict

B, W, F, H = 16, 6, 4, 8


class SeedForwardLSTM(LSTMRegressor):
    """The seed's forward pass on the same layers: keeps only the last step after layer 1,
    so layers 2..N get a 2-D (batch, hidden) tensor that nn.LSTM reads as ONE unbatched
    sequence whose time axis is the batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = None
        for i, (lstm, norm, dropout) in enumerate(
            zip(self.lstms, self.norms, self.dropouts, strict=True)
        ):
            x, _ = lstm(x)
            if i == 0:
                x = x[:, -1, :]
            x = dropout(norm(x))
            if residual is not None:
                x = x + residual
            residual = x
        return self.fc2(self.head_dropout(self.relu(self.fc1(x))))


def _windows(real_features: np.ndarray) -> torch.Tensor:
    scaled = RobustScaler.fit(real_features).transform(real_features)
    return torch.from_numpy(np.stack([scaled[i : i + W] for i in range(B)]))


def _batch_leak(model: nn.Module, x: torch.Tensor, watch: int) -> float:
    """Max change of sample ``watch``'s prediction when every other sample is replaced."""
    model.eval()
    other = x.flip(0).clone() * 3.0 + 1.0
    other[watch] = x[watch]
    with torch.no_grad():
        return float((model(x)[watch] - model(other)[watch]).abs().max())


def _model(cls: type[LSTMRegressor], layers: int = 3) -> LSTMRegressor:
    torch.manual_seed(0)
    return cls(F, hidden_dim=H, num_lstm_layers=layers, dropout_percent=0.3)


def test_output_shape_and_bad_input() -> None:
    model = LSTMRegressor(F, hidden_dim=H, num_lstm_layers=2, dropout_percent=0.0, output_dim=3)
    assert model(torch.zeros(5, W, F)).shape == (5, 3)
    with pytest.raises(ValueError, match=r"\(batch, window, 4\).*\(5, 4\)"):
        model(torch.zeros(5, F))
    with pytest.raises(ValueError, match=r"\(5, 6, 7\)"):
        model(torch.zeros(5, W, 7))
    with pytest.raises(ValueError, match="hidden_dim must be an integer >= 1"):
        LSTMRegressor(F, hidden_dim=0, num_lstm_layers=1, dropout_percent=0.0)


@pytest.mark.parametrize("watch", [B // 2, B - 1])
def test_prediction_independent_of_other_samples(real_features: np.ndarray, watch: int) -> None:
    x = _windows(real_features)
    assert _batch_leak(_model(LSTMRegressor), x, watch) < 1e-6


def test_seed_forward_leaks_across_the_batch(real_features: np.ndarray) -> None:
    """The same check catches the seed's defect: its predictions depend on the batch."""
    x = _windows(real_features)
    assert _batch_leak(_model(SeedForwardLSTM), x, B - 1) > 1e-3
    # With a single LSTM layer the seed's forward has no 2-D LSTM call, hence no leak:
    assert _batch_leak(_model(SeedForwardLSTM, layers=1), x, B - 1) < 1e-6


def test_prediction_independent_of_batch_size(real_features: np.ndarray) -> None:
    x = _windows(real_features)
    model = _model(LSTMRegressor).eval()
    with torch.no_grad():
        full = model(x)
        singles = torch.cat([model(x[i : i + 1]) for i in range(B)])
    torch.testing.assert_close(full, singles, rtol=1e-5, atol=1e-6)


def test_module_depends_only_on_last_window_rows(real_features: np.ndarray) -> None:
    """Row t is predicted from rows t-W+1 .. t: older or newer rows do not matter."""
    torch.manual_seed(1)
    module = LSTMLightningModule(F, num_lstm_layers=2, hidden_dim=H, window_size=W).eval()
    scaler = RobustScaler.fit(real_features[:200])
    t = 150
    base = predict(module, scaler, real_features, slice(t, t + 1), W)[0]
    for row, changes in ((t - W, False), (t + 1, False), (t - W + 1, True), (t, True)):
        moved = real_features.copy()
        moved[row] += 5.0
        value = predict(module, scaler, moved, slice(t, t + 1), W)[0]
        assert (value != base) == changes, (row, value, base)


def test_module_init_defaults_are_the_lstm_params_defaults() -> None:
    init = inspect.signature(LSTMLightningModule.__init__).parameters
    defaults = {
        k: p.default for k, p in init.items() if k not in ("self", "input_dim", "output_dim")
    }
    assert defaults == LSTMParams().to_dict()
    assert LSTMLightningModule(F).params == LSTMParams()


def test_module_hyperparameters_are_recorded() -> None:
    params = LSTMParams(num_lstm_layers=1, hidden_dim=4, window_size=3)
    module = LSTMLightningModule.from_params(F, params)
    assert module.params == params
    assert dict(module.hparams) == {"input_dim": F, "output_dim": 1, **params.to_dict()}
    with pytest.raises(ValueError, match=r"LSTMParams\.dropout_percent"):
        LSTMLightningModule(F, dropout_percent=1.5)
