"""Run configs: shipped files load; malformed ones name file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from optimize.config import ConfigError, load_config, parse_config
from optimize.search.objectives import OBJECTIVES, get_objective

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_load(path):
    config = load_config(path)
    assert config.features.base_timeframe == config.data.timeframe == config.backtest.timeframe
    assert config.data.path.is_dir()
    assert parse_config(config.to_dict(), "roundtrip").to_dict() == config.to_dict()


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"dataa": {}}, r"dataa: unknown section"),
        ({"data": {"pair": ["BTC/USDT"]}}, r"data\.pair: unknown key"),
        (
            {"data": {"pairs": ["BTCUSDT"]}},
            r"data: pairs must be a non-empty list like \['BTC/USDT'\], but got "
            r"pairs=\['BTCUSDT'\]",
        ),
        ({"data": {"timeframe": "1M"}}, r"data: timeframe must look like"),
        (
            {"study": {"objective": "money"}},
            r"study: objective must be one of .* but got objective='money'",
        ),
        ({"study": {"objective": "return_drawdown", "pruner": "median"}}, r"cannot prune"),
        ({"study": {"n_trials": -3}}, r"n_trials must be an integer >= 0, but got n_trials=-3"),
        ({"walkforward": {"train_days": 0, "test_days": 10}}, r"walkforward: .*train_days"),
        ({"backtest": {"stoploss": 0.1}}, r"backtest: .*stoploss"),
        ({"training": {"accelerator": "tpu"}}, r"accelerator must be one of"),
        ({"features": {"include_timeframes": ["4h", "1h"]}}, r"features: .*multiple of the base"),
        ({"features": {"include_timeframes": ["4h"]}}, r"must start with data.timeframe '1h'"),
        (
            {"data": {"pairs": "BTC/USDT"}},
            r"data: pairs must be a list like \['BTC/USDT'\], but got pairs='BTC/USDT'",
        ),
        (
            {"data": {"start": "2025-13-45"}},
            r"data: start must be a date .*, but got start='2025-13-45'",
        ),
        (
            {"data": {"start": "2025-08-01", "end": "2025-06-01"}},
            r"data: start must be before end, but got start='2025-08-01' and end='2025-06-01'",
        ),
        (
            {"walkforward": {"test_days": 10}},
            r"walkforward: missing required key\(s\) \['train_days'\]",
        ),
        (
            {"features": {"DI_threshold": -0.5}},
            r"features: DI_threshold must be a finite number >= 0.0, but got DI_threshold=-0.5",
        ),
        (
            {"features": {"weight_factor": "recent"}},
            r"features: weight_factor must be a finite number",
        ),
        (
            {"features": {"include_corr_pairlist": ["BTC/USDT", "BTC/USDT"]}},
            r"features: include_corr_pairlist must be a list of distinct pairs",
        ),
        (
            {"features": {"buffer_train_data_candles": 2.5}},
            r"features: buffer_train_data_candles must be an integer >= 0, but got "
            r"buffer_train_data_candles=2.5",
        ),
    ],
)
def test_malformed_config(tmp_path, raw, match):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=match) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_objectives_are_pure_functions_of_metrics():
    metrics = {
        "sharpe": 1.5,
        "sortino": 2.0,
        "calmar": 3.0,
        "profit_total": 0.2,
        "max_drawdown_account": 0.05,
    }
    assert get_objective("sharpe")(metrics) == (1.5,)
    assert get_objective("profit_drawdown")(metrics) == (pytest.approx(0.15),)
    assert get_objective("return_drawdown")(metrics) == (0.2, 0.05)
    assert get_objective("sharpe")({**metrics, "sharpe": float("nan")}) == (0.0,)  # no trades: flat
    assert set(OBJECTIVES) == {
        "sharpe",
        "sortino",
        "calmar",
        "profit",
        "profit_drawdown",
        "return_drawdown",
    }


def test_unquoted_impossible_date_names_file_and_key(tmp_path):
    """YAML would turn ``2025-13-45`` into a date and fail inside the parser ("month must be in
    1..12"); the key must be named instead."""
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  start: 2025-13-45\n")
    with pytest.raises(
        ConfigError, match=r"data: start must be a date .*, but got start='2025-13-45'"
    ) as err:
        load_config(path)
    assert str(path) in str(err.value)
    path.write_text("data:\n  start: 2025-06-01\n  end: 2025-08-15\n")
    data = load_config(path).data
    assert (data.start, data.end) == ("2025-06-01", "2025-08-15")


def test_empty_section_means_its_defaults(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("walkforward:\nstudy:\n")
    config = load_config(path)
    assert config.walkforward == parse_config({}).walkforward
    assert config.study == parse_config({}).study


def test_freqai_pipeline_keys_default_off_and_read_from_features(tmp_path):
    from strategy.pipeline import DataPipeline

    assert load_config(CONFIGS[0]).features.pipeline == DataPipeline()  # shipped configs: off
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "features": {
                    "DI_threshold": 1,
                    "weight_factor": 0.65,
                    "noise_standard_deviation": 0.1,
                    "include_corr_pairlist": ["BTC/USDT"],
                    "buffer_train_data_candles": 20,
                }
            }
        )
    )
    config = load_config(path)
    assert config.features.pipeline == DataPipeline(1.0, 0.65, 0.1, ("BTC/USDT",), 20)
    assert parse_config(config.to_dict(), "roundtrip").features == config.features
    # the feature set (and the feature cache key) does not hold the pipeline's keys
    assert "DI_threshold" not in config.features.to_dict()


def test_a_key_given_twice_is_an_error_naming_it_and_both_lines(tmp_path):
    """A second ``data:`` block (only ``pairs``) used to replace the first one silently: the span
    was gone and the study covered the whole history."""
    path = tmp_path / "twice.yaml"
    path.write_text(
        "data:\n"
        "  pairs: [BTC/USDT]\n"
        '  start: "2025-06-01"\n'
        '  end: "2025-08-15"\n'
        "walkforward:\n"
        "  train_days: 30\n"
        "data:\n"
        "  pairs: [ETH/USDT]\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not valid YAML (")
    assert "duplicate key 'data': first on line 1, again on line 7" in message


def test_a_space_key_given_twice_is_an_error(tmp_path):
    from optimize.search.space import SearchSpaceError, load_space

    path = tmp_path / "space.yaml"
    path.write_text("lstm:\n  hidden_dim: 8\n  epochs: 1\n  hidden_dim: 64\nweights: 0.5\n")
    with pytest.raises(
        SearchSpaceError,
        match=r"duplicate key 'hidden_dim': first on line 2, "
        r"again on line 4",
    ):
        load_space(path)


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"data:\n  pairs: [BTC/USDT]\n  exchange: bin\xe9ance\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: line 3: byte 0xe9 is not UTF-8 text; expected a UTF-8 YAML run config."
    )


def test_a_folder_given_as_the_config_is_named_so(tmp_path):
    with pytest.raises(ConfigError, match=r"run config .* is a folder; expected a YAML file\."):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match=r"run config .*nope\.yaml does not exist\."):
        load_config(tmp_path / "nope.yaml")


FUTURES = {"trading_mode": "futures"}


@pytest.mark.parametrize(
    "raw, match",
    [
        (
            {"backtest": FUTURES},
            r"data\.pairs: backtest\.trading_mode='futures' trades perpetuals written "
            r"BASE/QUOTE:SETTLE such as 'BTC/USDT:USDT', but got \['BTC/USDT', 'ETH/USDT', "
            r"'SOL/USDT'\]",
        ),
        (
            {"data": {"pairs": ["BTC/USDT:USDT"]}},
            r"data\.pairs: backtest\.trading_mode='spot' trades spot pairs written BASE/QUOTE "
            r"such as 'BTC/USDT', but got \['BTC/USDT:USDT'\]",
        ),
        (
            {
                "data": {"pairs": ["ETH/USDT:USDT"]},
                "features": {"include_corr_pairlist": ["BTC/USDT"]},
                "backtest": FUTURES,
            },
            r"features\.include_corr_pairlist: backtest\.trading_mode='futures' trades perpetuals",
        ),
        ({"data": {"markets": ""}}, r"data: markets must be the path of a markets JSON file"),
        (
            {"data": {"pairs": ["BTC/USDT:USDT"]}, "backtest": {**FUTURES, "leverage": 0.5}},
            r"backtest: leverage must be a finite number >= 1\.0",
        ),
    ],
)
def test_pairs_are_written_as_the_trading_mode_s_markets_name_them(tmp_path, raw, match):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=match) as err:
        load_config(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_futures_config_reads_perpetual_candles_and_names_its_markets(tmp_path):
    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "futures.yaml")
    assert config.candle_type == "futures" and config.backtest.futures
    assert all(p.endswith(":USDT") for p in config.data.pairs)
    assert config.data.markets is None and config.data.markets_path is None
    assert load_config(CONFIGS[0]).candle_type == "spot"
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"data": {"markets": "my-markets.json"}}))
    named = load_config(path).data
    assert named.markets == "my-markets.json" and named.markets_path.name == "my-markets.json"
