"""Hyperparameters of the LSTM regressor, shared by the search space, the trainer and the export.

One frozen dataclass, validated on construction, that round-trips through plain dicts
(checkpoints, Optuna user attributes, exported parameter files).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PRECISIONS = ("32", "bf16")


def _as_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"LSTMParams.{name} must be an integer >= {minimum}, but got {value=!r}.")
    if value < minimum:
        raise ValueError(f"LSTMParams.{name} must be an integer >= {minimum}, but got {value=!r}.")
    return int(value)


def _as_float(
    name: str,
    value: Any,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    expected = f"a finite number in {left}{low}, {high}{right}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"LSTMParams.{name} must be {expected}, but got {value=!r}.")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if not math.isfinite(value) or too_low or too_high:
        raise ValueError(f"LSTMParams.{name} must be {expected}, but got {value=!r}.")
    return value


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
        checked: dict[str, Any] = {
            "num_lstm_layers": _as_int("num_lstm_layers", self.num_lstm_layers, 1),
            "hidden_dim": _as_int("hidden_dim", self.hidden_dim, 1),
            "dropout_percent": _as_float(
                "dropout_percent", self.dropout_percent, low=0.0, high=1.0, high_open=True
            ),
            "window_size": _as_int("window_size", self.window_size, 1),
            "learning_rate": _as_float("learning_rate", self.learning_rate, low=0.0, low_open=True),
            "batch_size": _as_int("batch_size", self.batch_size, 1),
            "epochs": _as_int("epochs", self.epochs, 1),
            "weight_decay": _as_float("weight_decay", self.weight_decay, low=0.0),
            "early_stopping_patience": _as_int(
                "early_stopping_patience", self.early_stopping_patience, 1
            ),
            "val_fraction": _as_float(
                "val_fraction", self.val_fraction, low=0.0, high=0.5, low_open=True
            ),
            "gradient_clip_val": _as_float("gradient_clip_val", self.gradient_clip_val, low=0.0),
        }
        precision = self.precision
        if isinstance(precision, int) and not isinstance(precision, bool):
            precision = str(precision)
        if precision not in PRECISIONS:
            raise ValueError(
                f"LSTMParams.precision must be one of {PRECISIONS}, but got {self.precision=!r}."
            )
        checked["precision"] = precision
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
            raise ValueError(
                f"LSTMParams.from_dict got unknown keys {unknown}; expected a subset of "
                f"{sorted(names)}."
            )
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> LSTMParams:
        """Copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
