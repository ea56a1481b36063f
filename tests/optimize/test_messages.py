"""A bad value in any kind of input gets one line naming the file, the key, the value and what was
expected: run config sections, search spaces, LSTM parameters, backtest settings."""

from __future__ import annotations

import pytest
import yaml

from lstm.params import LSTMParams
from optimize.backtest.settings import BacktestSettings
from optimize.config import ConfigError, load_config
from optimize.search.space import SearchSpaceError, load_space

WEIGHTS = {"weights": {"type": "float", "low": 0, "high": 1}}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"study": {"n_trials": -3}},
            "study: n_trials must be an integer >= 0, but got n_trials=-3.",
        ),
        (
            {"training": {"ensemble_size": "2"}},
            "training: ensemble_size must be an integer >= 1, but got ensemble_size='2'.",
        ),
        (
            {"backtest": {"fee": 1.5}},
            "backtest: fee must be a finite number in [0.0, 1.0), but got fee=1.5.",
        ),
        (
            {"walkforward": {"train_days": 30, "test_days": 7, "holdout_days": -2}},
            "walkforward: holdout_days must be a finite number >= 0.0, but got holdout_days=-2.",
        ),
    ],
)
def test_run_config(tmp_path, raw, message):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {**WEIGHTS, "lstm": {"hidden_dim": 0}},
            "lstm.hidden_dim: value 0 is not accepted: LSTMParams.hidden_dim must be an integer "
            ">= 1, but got LSTMParams.hidden_dim=0.",
        ),
        (
            {**WEIGHTS, "lstm": {"hidden_dim": {"type": "int", "low": "8", "high": 16}}},
            "lstm.hidden_dim: low must be an integer, but got low='8'.",
        ),
        (
            {**WEIGHTS, "lstm": {"hidden_dim": {"type": "int", "low": 8, "high": 4}}},
            "lstm.hidden_dim: `low <= high` must hold, but got (low=8, high=4).",
        ),
    ],
)
def test_search_space(tmp_path, raw, message):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SearchSpaceError) as err:
        load_space(path)
    assert str(err.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: LSTMParams(dropout_percent=1.0),
            "LSTMParams.dropout_percent must be a finite number in [0.0, 1.0), but got "
            "LSTMParams.dropout_percent=1.0.",
        ),
        (
            lambda: BacktestSettings(stoploss=0.1),
            "stoploss must be a finite number in [-1.0, 0.0), but got stoploss=0.1.",
        ),
        (
            lambda: BacktestSettings(max_open_trades=0),
            "max_open_trades must be an integer >= 1 or -1, but got max_open_trades=0.",
        ),
    ],
)
def test_typed_parameters(build, message):
    with pytest.raises(ValueError) as err:
        build()
    assert str(err.value) == message
