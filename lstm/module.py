"""LightningModule wrapping :class:`lstm.model.LSTMRegressor`: AdamW, MSE, ReduceLROnPlateau."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from lstm.model import LSTMRegressor
from lstm.params import LSTMParams

LR_FACTOR = 0.2
LR_PATIENCE = 5
MIN_LR = 1e-5
MONITOR = "val_loss"


class LSTMLightningModule(L.LightningModule):
    """Trains an :class:`LSTMRegressor` with MSE on standardised labels.

    The init arguments are the hyperparameters (``input_dim`` plus every
    :class:`~lstm.params.LSTMParams` field); they are validated through ``LSTMParams`` and
    recorded with ``save_hyperparameters()``. Batches are ``(x, y)`` with ``x`` of shape
    (batch, window, input_dim) and ``y`` of shape (batch,) or (batch, output_dim), or ``(x, y, w)``
    with sample weights ``w`` of shape (batch,): the loss is then the weighted mean of the squared
    errors, ``sum(w * err**2) / sum(w)`` (FreqAI's recency weights, :mod:`lstm.pipeline`).

    Logged per epoch (no per-step host sync): ``train_loss``, ``val_loss``.
    """

    def __init__(
        self,
        input_dim: int,
        num_lstm_layers: int = 3,
        hidden_dim: int = 128,
        dropout_percent: float = 0.4,
        window_size: int = 5,
        learning_rate: float = 3e-3,
        batch_size: int = 256,
        epochs: int = 10,
        weight_decay: float = 1e-2,
        early_stopping_patience: int = 5,
        val_fraction: float = 0.2,
        gradient_clip_val: float = 1.0,
        precision: str = "32",
        output_dim: int = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.params = LSTMParams(
            **{k: v for k, v in self.hparams.items() if k not in ("input_dim", "output_dim")}
        )
        self.model = LSTMRegressor(
            input_dim,
            hidden_dim=self.params.hidden_dim,
            num_lstm_layers=self.params.num_lstm_layers,
            dropout_percent=self.params.dropout_percent,
            output_dim=output_dim,
        )
        self.loss_fn = nn.MSELoss()

    @classmethod
    def from_params(
        cls, input_dim: int, params: LSTMParams, *, output_dim: int = 1
    ) -> LSTMLightningModule:
        """Build from an :class:`LSTMParams`."""
        if not isinstance(params, LSTMParams):
            raise TypeError(f"from_params expects LSTMParams, but got {type(params)=}.")
        return cls(input_dim, **params.to_dict(), output_dim=output_dim)

    @property
    def input_dim(self) -> int:
        return self.model.input_dim

    @property
    def output_dim(self) -> int:
        return self.model.output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _shared_step(self, batch: tuple[torch.Tensor, ...], stage: str) -> torch.Tensor:
        x, y = batch[0], batch[1]
        pred = self.model(x)
        target = y.reshape(pred.shape).to(pred.dtype)
        if len(batch) == 3:
            w = batch[2].reshape(pred.shape[0], *([1] * (pred.dim() - 1))).to(pred.dtype)
            err = (pred - target).square() * w
            loss = err.sum() / (w.sum() * (pred.numel() // pred.shape[0]))
        else:
            loss = self.loss_fn(pred, target)
        # A tensor value with on_step=False is accumulated on the device: no per-step sync.
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def configure_optimizers(self) -> dict[str, Any]:
        # One fused kernel per step instead of a loop over parameter tensors (CPU, CUDA, MPS).
        optimizer = torch.optim.AdamW(
            self.parameters(),
            lr=self.params.learning_rate,
            weight_decay=self.params.weight_decay,
            fused=True,
        )
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=LR_FACTOR, patience=LR_PATIENCE, min_lr=MIN_LR
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": MONITOR, "interval": "epoch"},
        }
