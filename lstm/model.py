"""The seed's LSTM regressor architecture, with the whole sequence kept through every layer.

Per layer: LSTM -> BatchNorm (over the hidden features of every time step) -> Dropout, with a
residual connection from the previous layer's output (layers 2..N, where shapes match). Then the
last time step goes through Linear(hidden, 36) + ReLU, AlphaDropout(0.5), Linear(36, out).

Unlike the seed, no layer ever sees a 2-D tensor: the seed kept only the last step after the
first layer, so ``nn.LSTM`` in layers 2..N ran its recurrence across the *batch* and a sample's
prediction depended on its neighbours in the batch.
"""

from __future__ import annotations

import torch
from torch import nn

from base.checks import check_int, check_number

HEAD_DIM = 36
HEAD_DROPOUT = 0.5


class LSTMRegressor(nn.Module):
    """Stacked LSTM regressor: (batch, window, features) -> (batch, output_dim).

    Args:
        input_dim: Number of input features F (>= 1).
        hidden_dim: Hidden units per LSTM layer (>= 1).
        num_lstm_layers: Number of LSTM layers (>= 1).
        dropout_percent: Dropout probability after each LSTM layer, in [0, 1).
        output_dim: Number of regression outputs (>= 1).

    In eval mode every sample is processed independently of the others in its batch
    (BatchNorm then uses its running statistics).
    """

    def __init__(
        self,
        input_dim: int,
        *,
        hidden_dim: int,
        num_lstm_layers: int,
        dropout_percent: float,
        output_dim: int = 1,
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_dim", input_dim),
            ("hidden_dim", hidden_dim),
            ("num_lstm_layers", num_lstm_layers),
            ("output_dim", output_dim),
        ):
            check_int(f"LSTMRegressor.{name}", value, 1)
        check_number("LSTMRegressor.dropout_percent", dropout_percent, 0.0, 1.0, high_open=True)
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.output_dim = output_dim
        self.lstms = nn.ModuleList(
            nn.LSTM(input_dim if i == 0 else hidden_dim, hidden_dim, batch_first=True)
            for i in range(num_lstm_layers)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden_dim) for _ in range(num_lstm_layers))
        self.dropouts = nn.ModuleList(nn.Dropout(dropout_percent) for _ in range(num_lstm_layers))
        self.fc1 = nn.Linear(hidden_dim, HEAD_DIM)
        self.relu = nn.ReLU()
        self.head_dropout = nn.AlphaDropout(HEAD_DROPOUT)
        self.fc2 = nn.Linear(HEAD_DIM, output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict from windows.

        Args:
            x: (batch, window, input_dim) float tensor, oldest candle first.

        Returns:
            (batch, output_dim) predictions, computed from the last time step's state.

        Raises:
            ValueError: ``x`` is not 3-D or its last dimension is not ``input_dim``.
        """
        if x.dim() != 3 or x.shape[-1] != self.input_dim:
            raise ValueError(
                "LSTMRegressor expects input of shape (batch, window, "
                f"{self.input_dim}), but got {tuple(x.shape)=}."
            )
        h = x
        last_layer = len(self.lstms) - 1
        for i, (lstm, norm, dropout) in enumerate(
            zip(self.lstms, self.norms, self.dropouts, strict=True)
        ):
            out, _ = lstm(h)  # (B, W, H), contiguous
            batch, window, hidden = out.shape
            # BatchNorm over the hidden features, every (sample, step) pair is one observation.
            out = norm(out.reshape(batch * window, hidden)).reshape(batch, window, hidden)
            if i == last_layer:
                # Only the last step reaches the head: dropout and residual there alone give the
                # same outputs (and the same distribution in training) at 1/W of the cost.
                out, h = out[:, -1, :], h[:, -1, :]
            out = dropout(out)
            if i > 0:
                out = out + h
            h = out
        return self.fc2(self.head_dropout(self.relu(self.fc1(h))))
