"""Search spaces: every shipped file loads; malformed files name file, key and value; direction and
leverage are searchable and make the trial's backtest settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
import yaml

from lstm.params import LSTMParams
from optimize.backtest.settings import BacktestSettings
from optimize.search.space import (
    SearchSpaceError,
    TrialParams,
    load_space,
    optuna_name,
    parse_space,
)
from strategy.pipeline import DataPipeline
from strategy.signals import SignalParams

SPACES = sorted((Path(__file__).resolve().parents[3] / "search_spaces").glob("*.yaml"))


def test_the_four_required_spaces_exist():
    assert {"default", "smoke", "lstm-only", "strategy-only"} <= {p.stem for p in SPACES}


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_shipped_spaces_sample_typed_params(path):
    space = load_space(path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        params = space.sample(trial)
        assert isinstance(params, TrialParams)
        assert isinstance(params.lstm, LSTMParams) and isinstance(params.signal, SignalParams)
        assert len(params.weights) == 9
        # round trips: user attrs and Optuna params both rebuild the same typed params
        assert TrialParams.from_dict(params.to_dict()) == params
        assert space.from_optuna_params(trial.params) == params
        study.tell(trial, 0.0)


def test_default_space_searches_everything_jointly():
    space = load_space(Path(__file__).resolve().parents[3] / "search_spaces/default.yaml")
    searched = {optuna_name(key) for key in space.distributions}
    assert {
        "num_lstm_layers",
        "hidden_dim",
        "dropout_percent",
        "window_size",
        "learning_rate",
    } <= searched
    assert {f"w{i}" for i in range(9)} <= searched
    assert {"entry_threshold", "exit_gap", "label_horizon"} <= searched


BASE = {"weights": {"type": "float", "low": 0, "high": 1}}


@pytest.mark.parametrize(
    "raw, match",
    [
        ({**BASE, "model": {}}, r"model: unknown section"),
        ({**BASE, "lstm": {"layers": 2}}, r"lstm\.layers: unknown key"),
        (
            {**BASE, "lstm": {"hidden_dim": {"type": "int", "low": 64, "high": 16}}},
            r"lstm\.hidden_dim: `low <= high` must hold, but got \(low=64, high=16\)",
        ),
        (
            {**BASE, "lstm": {"hidden_dim": {"type": "int", "low": 1.5, "high": 16}}},
            r"lstm\.hidden_dim: low must be an integer, but got low=1.5",
        ),
        (
            {
                **BASE,
                "lstm": {"learning_rate": {"type": "float", "low": 0, "high": 1, "log": True}},
            },
            r"lstm\.learning_rate: `low > 0` must hold for `log=True`, "
            r"but got \(low=0\.0, high=1\.0\)",
        ),
        (
            {**BASE, "lstm": {"hidden_dim": {"type": "normal", "low": 1, "high": 2}}},
            r"type must be 'int', 'float'",
        ),
        (
            {**BASE, "lstm": {"hidden_dim": {"type": "int", "low": 1, "high": 2, "mean": 3}}},
            r"unknown keys \['mean'\]",
        ),
        (
            {**BASE, "lstm": {"hidden_dim": {"type": "categorical", "choices": []}}},
            r"lstm\.hidden_dim: choices must be a non-empty list, but got choices=\[\]",
        ),
        (
            {**BASE, "lstm": {"dropout_percent": {"type": "float", "low": 0.0, "high": 1.5}}},
            r"lstm\.dropout_percent: value 1.5 is not accepted",
        ),
        ({**BASE, "lstm": {"hidden_dim": "big"}}, r"lstm\.hidden_dim: value 'big' is not accepted"),
        ({"weights": {"w0": 0.5}}, r"weights: .*missing \['w1'"),
        ({**BASE, "signal": {"mode": "median"}}, r"signal\.mode: value 'median' is not accepted"),
        (
            {**BASE, "signal": {"entry": {"type": "float", "low": 0.5, "high": 1.2}}},
            r"signal\.entry: value 1.2 is not accepted",
        ),
        (
            {**BASE, "target": {"label_horizon": -1}},
            r"target\.label_horizon: value -1 is not accepted",
        ),
        ([1, 2], r"expected a mapping of sections"),
        (
            {**BASE, "features": {"DI_threshold": {"type": "float", "low": -1.0, "high": 1.0}}},
            r"features\.DI_threshold: value -1.0 is not accepted: DI_threshold must be a",
        ),
        (
            {**BASE, "features": {"buffer_train_data_candles": 20}},
            r"features\.buffer_train_data_candles: unknown key",
        ),
        (
            {**BASE, "features": {"include_corr_pairlist": ["BTCUSDT"]}},
            r"features\.include_corr_pairlist: include_corr_pairlist must be a list of distinct",
        ),
        (
            {**BASE, "features": {"include_corr_pairlist": {"type": "float", "low": 0}}},
            r"features\.include_corr_pairlist: include_corr_pairlist must be a list of pairs",
        ),
    ],
)
def test_malformed_space_names_file_key_value(tmp_path, raw, match):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SearchSpaceError, match=match) as err:
        load_space(path)
    assert str(path) in str(err.value)


def test_invalid_yaml_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("lstm: {hidden_dim: [")
    with pytest.raises(SearchSpaceError, match="not valid YAML"):
        load_space(path)
    with pytest.raises(SearchSpaceError, match=r"nope\.yaml does not exist"):
        load_space(tmp_path / "nope.yaml")


def test_weights_shorthand_and_constants():
    space = parse_space(
        {"weights": {"type": "float", "low": 0.2, "high": 0.2}, "lstm": {"hidden_dim": 7}}
    )
    params = space.sample(optuna.trial.FixedTrial({f"w{i}": 0.2 for i in range(9)}))
    assert params.weights == (0.2,) * 9 and params.lstm.hidden_dim == 7


def test_default_space_searches_freqai_s_pipeline_with_off_among_the_choices():
    space = load_space(Path(__file__).resolve().parents[3] / "search_spaces/default.yaml")
    for key in ("DI_threshold", "weight_factor", "noise_standard_deviation"):
        assert 0 in space.corners(("features", key)), key
    assert ("features", "include_corr_pairlist") not in space.entries


def test_features_section_overrides_the_run_config_s_keys_per_trial():
    space = parse_space(
        {
            **BASE,
            "features": {
                "DI_threshold": {"type": "categorical", "choices": [0, 1.0]},
                "weight_factor": 0.65,
                "include_corr_pairlist": {
                    "type": "categorical",
                    "choices": [[], ["BTC/USDT"], ["BTC/USDT", "ETH/USDT"]],
                },
            },
        }
    )
    assert space.corr_pairs() == ("BTC/USDT", "ETH/USDT")
    assert space.distributions[("features", "include_corr_pairlist")].choices == (
        "",
        "BTC/USDT",
        "BTC/USDT,ETH/USDT",
    )  # Optuna stores strings
    fixed = {f"w{i}": 0.5 for i in range(9)}
    fixed.update(DI_threshold=1.0, include_corr_pairlist="BTC/USDT,ETH/USDT")
    params = space.sample(optuna.trial.FixedTrial(fixed))
    assert params.features == {
        "DI_threshold": 1.0,
        "weight_factor": 0.65,
        "include_corr_pairlist": ("BTC/USDT", "ETH/USDT"),
    }
    assert TrialParams.from_dict(params.to_dict()) == params
    config = DataPipeline(noise_standard_deviation=0.1, buffer_train_data_candles=20)
    assert params.pipeline(config) == DataPipeline(
        DI_threshold=1.0,
        weight_factor=0.65,
        noise_standard_deviation=0.1,  # the space does not set it: the run config's value
        include_corr_pairlist=("BTC/USDT", "ETH/USDT"),
        buffer_train_data_candles=20,
    )


@pytest.mark.parametrize(
    "path",
    [p for p in SPACES if "features" not in yaml.safe_load(p.read_text())],
    ids=lambda p: p.stem,
)
def test_a_space_without_features_section_stores_what_it_stored_before(path):
    """No ``features`` entry and no ``features`` key in a trial's params: the study fingerprint
    and the stored params of such a space are unchanged."""
    space = load_space(path)
    assert not any(key.startswith("features.") for key in space.entries)
    params = space.sample(optuna.create_study().ask())
    assert params.features == {} and "features" not in params.to_dict()
    assert params.pipeline(DataPipeline()) == DataPipeline()


def test_direction_and_leverage_are_searchable_and_set_the_trial_s_settings():
    space = parse_space(
        {
            **BASE,
            "signal": {
                "direction": {"type": "categorical", "choices": ["long", "short", "both"]},
                "mode": "zscore",
            },
            "backtest": {"leverage": {"type": "float", "low": 1.0, "high": 3.0}},
        }
    )
    assert optuna_name(("signal", "direction")) == "trade_direction"
    assert optuna_name(("backtest", "leverage")) == "leverage"
    fixed = {f"w{i}": 0.5 for i in range(9)}
    fixed.update(trade_direction="both", leverage=2.3456, entry_threshold=0.5, exit_gap=0.1)
    trial = optuna.trial.FixedTrial(fixed)
    params = space.sample(trial)
    assert params.signal.direction == "both"
    assert params.backtest == {"leverage": 2.35}  # rounded as the strategy loads it
    assert params.to_dict()["backtest"] == {"leverage": 2.35}
    assert TrialParams.from_dict(params.to_dict()) == params
    assert space.from_optuna_params(trial.params) == params
    futures = BacktestSettings(trading_mode="futures", leverage=5.0)
    settings = params.settings(futures)
    assert (settings.leverage, settings.can_short) == (2.35, True)
    assert settings.trading_mode == "futures" and futures.leverage == 5.0  # base untouched
    long_only = dataclasses.replace(params, signal=SignalParams(direction="long"), backtest={})
    assert long_only.settings(futures) == dataclasses.replace(futures, can_short=False)
    # spot: a direction that shorts is refused, naming the key and the trading mode
    with pytest.raises(ValueError, match=r"signal\.direction='both' shorts, which needs "):
        params.settings(BacktestSettings())
    assert long_only.settings(BacktestSettings()) == BacktestSettings()


@pytest.mark.parametrize(
    "raw, match",
    [
        (
            {**BASE, "signal": {"direction": "sideways"}},
            r"signal\.direction: value 'sideways' is not accepted: direction must be one of",
        ),
        (
            {**BASE, "backtest": {"leverage": {"type": "categorical", "choices": [0.5, 2]}}},
            r"backtest\.leverage: value 0\.5 is not accepted: leverage must be a finite number "
            r">= 1\.0",
        ),
        (
            {**BASE, "backtest": {"stoploss": -0.1}},
            r"backtest\.stoploss: unknown key; expected one of \['leverage'\]",
        ),
    ],
)
def test_bad_direction_or_leverage_names_the_key(raw, match):
    with pytest.raises(SearchSpaceError, match=match):
        parse_space(raw, "s.yaml")


@pytest.mark.parametrize(
    "path",
    [p for p in SPACES if "backtest" not in yaml.safe_load(p.read_text())],
    ids=lambda p: p.stem,
)
def test_a_spot_space_stores_the_direction_and_no_backtest_keys(path):
    """Spaces without ``signal.direction`` trade long (the spot strategy) and store no backtest
    keys; their fingerprint (the file's entries) does not name either."""
    space = load_space(path)
    assert not any(k.startswith("backtest.") or k == "signal.direction" for k in space.entries)
    params = space.sample(optuna.create_study().ask())
    assert "backtest" not in params.to_dict() and params.backtest == {}
    assert params.signal.direction == "long"
    assert params.settings(BacktestSettings()) == BacktestSettings()
