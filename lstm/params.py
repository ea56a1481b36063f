"""Hyperparameters of the LSTM regressor, shared by the search space, the trainer and the export.

One frozen dataclass, validated on construction, that round-trips through plain dicts
(checkpoints, Optuna user attributes, exported parameter files).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from base.checks import check_choice, check_int, check_number
from base.errors import InputError

PRECISIONS = ("32", "bf16")


@dataclass(frozen=True)
class LSTMParams:
    """Hyperparameters of one LSTM fit.

    Attributes:
        num_lstm_layers: Number of stacked LSTM layers (>= 1).
        hidden_dim: Hidden units per LSTM layer (>= 1).
        dropout_percent: Dropout probability after each LSTM layer, in [0, 1).
        window_size: Candles per input window W (>= 1); sample i sees rows i-W+1 .. i.
        learning_rate: AdamW learning rate (> 0).
        batch_size: Samples per optimisation step (>= 1).
        epochs: Maximum number of epochs (>= 1); early stopping may end sooner.
        weight_decay: AdamW decoupled weight decay (>= 0).
        early_stopping_patience: Epochs without validation improvement before stopping (>= 1).
        val_fraction: Share of the training samples, taken from the end of the training
            window in time order, used for validation, in (0, 0.5].
        gradient_clip_val: Gradient norm clip (>= 0; 0 disables clipping).
        precision: "32" (float32 everywhere) or "bf16" (bfloat16 autocast, used only on a
            CUDA device; float32 elsewhere).

    Raises:
        TypeError: A field has the wrong type (the field and value are named).
        ValueError: A field is out of range (the field, value and valid range are named).
    """

    num_lstm_layers: int = 3
    hidden_dim: int = 128
    dropout_percent: float = 0.4
    window_size: int = 5
    learning_rate: float = 3e-3
    batch_size: int = 256
    epochs: int = 10
    weight_decay: float = 1e-2
    early_stopping_patience: int = 5
    val_fraction: float = 0.2
    gradient_clip_val: float = 1.0
    precision: str = "32"

    def __post_init__(self) -> None:
        ints = (
            "num_lstm_layers",
            "hidden_dim",
            "window_size",
            "batch_size",
            "epochs",
            "early_stopping_patience",
        )
        checked: dict[str, Any] = {k: check_int(_name(k), getattr(self, k), 1) for k in ints}
        for key, low, high, low_open, high_open in (
            ("dropout_percent", 0.0, 1.0, False, True),
            ("learning_rate", 0.0, math.inf, True, False),
            ("weight_decay", 0.0, math.inf, False, False),
            ("val_fraction", 0.0, 0.5, True, False),
            ("gradient_clip_val", 0.0, math.inf, False, False),
        ):
            checked[key] = check_number(
                _name(key), getattr(self, key), low, high, low_open=low_open, high_open=high_open
            )
        precision = self.precision
        if isinstance(precision, int) and not isinstance(precision, bool):
            precision = str(precision)
        checked["precision"] = check_choice(_name("precision"), precision, PRECISIONS)
        # Normalise numpy scalars and ints-for-floats to plain Python types.
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{field: value}`` dict (ints, floats, str only)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, ignore_unknown: bool = False) -> LSTMParams:
        """Build from a mapping; missing fields take their defaults.

        Args:
            data: Field values, e.g. ``to_dict()`` output or an Optuna trial's params.
            ignore_unknown: Skip keys that are not fields (e.g. strategy weights in a
                trial's params) instead of raising.

        Raises:
            TypeError: ``data`` is not a mapping.
            ValueError: Unknown keys while ``ignore_unknown`` is False, or a bad value.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"LSTMParams.from_dict expects a mapping, but got {type(data)=}.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown and not ignore_unknown:
            raise InputError(
                f"LSTMParams.from_dict got unknown keys {unknown}; expected a subset of "
                f"{sorted(names)}."
            )
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> LSTMParams:
        """Copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _name(key: str) -> str:
    return f"LSTMParams.{key}"
