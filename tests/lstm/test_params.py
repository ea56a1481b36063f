"""LSTMParams: defaults, validation naming the bad field, dict round-trips."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from lstm.params import LSTMParams


def test_defaults_are_the_seed_configuration() -> None:
    p = LSTMParams()
    assert (p.num_lstm_layers, p.hidden_dim, p.dropout_percent, p.window_size) == (3, 128, 0.4, 5)
    assert (p.learning_rate, p.precision) == (3e-3, "32")


def test_round_trip_through_dict_and_json() -> None:
    p = LSTMParams(num_lstm_layers=2, hidden_dim=32, learning_rate=1e-3, precision="bf16")
    assert LSTMParams.from_dict(p.to_dict()) == p
    assert LSTMParams.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_from_dict_unknown_keys() -> None:
    data = {"hidden_dim": 8, "w0": 0.5, "threshold_buy": 1.0}
    with pytest.raises(ValueError, match=r"unknown keys \['threshold_buy', 'w0'\]"):
        LSTMParams.from_dict(data)
    assert LSTMParams.from_dict(data, ignore_unknown=True).hidden_dim == 8


def test_numpy_and_int_values_are_normalised() -> None:
    p = LSTMParams(
        hidden_dim=np.int64(8), weight_decay=0, learning_rate=np.float32(0.5), precision=32
    )
    assert type(p.hidden_dim) is int and type(p.weight_decay) is float
    assert type(p.learning_rate) is float and p.precision == "32"
    assert json.loads(json.dumps(p.to_dict())) == p.to_dict()  # plain Python types only


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("num_lstm_layers", 0, ValueError),
        ("num_lstm_layers", 2.0, TypeError),
        ("num_lstm_layers", True, TypeError),
        ("hidden_dim", -4, ValueError),
        ("dropout_percent", 1.0, ValueError),
        ("dropout_percent", -0.1, ValueError),
        ("window_size", 0, ValueError),
        ("learning_rate", 0.0, ValueError),
        ("learning_rate", float("nan"), ValueError),
        ("learning_rate", "0.1", TypeError),
        ("batch_size", 0, ValueError),
        ("epochs", 0, ValueError),
        ("weight_decay", -1e-3, ValueError),
        ("early_stopping_patience", 0, ValueError),
        ("val_fraction", 0.0, ValueError),
        ("val_fraction", 0.9, ValueError),
        ("gradient_clip_val", float("inf"), ValueError),
        ("precision", "16", ValueError),
    ],
)
def test_bad_value_names_field_and_value(field: str, value: object, error: type) -> None:
    with pytest.raises(error, match=rf"LSTMParams\.{field} .*but got .*{re.escape(repr(value))}"):
        LSTMParams(**{field: value})


def test_frozen_and_replace_revalidates() -> None:
    p = LSTMParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.hidden_dim = 4  # type: ignore[misc]
    assert p.replace(hidden_dim=4).hidden_dim == 4
    with pytest.raises(ValueError, match="hidden_dim"):
        p.replace(hidden_dim=0)
