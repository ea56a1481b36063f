"""Run configs: shipped files load; malformed ones name file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from optimize.config import ConfigError, load_config, parse_config
from optimize.objectives import OBJECTIVES, get_objective

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
        ({"data": {"pairs": ["BTCUSDT"]}}, r"data: pairs must be a non-empty list like \['BTC/USDT'\], but got pairs=\['BTCUSDT'\]"),
        ({"data": {"timeframe": "1M"}}, r"data: timeframe must look like"),
        ({"study": {"objective": "money"}}, r"study: objective must be one of .* but got objective='money'"),
        ({"study": {"objective": "return_drawdown", "pruner": "median"}}, r"cannot prune"),
        ({"study": {"n_trials": -3}}, r"n_trials must be an integer >= 0, but got n_trials=-3"),
        ({"walkforward": {"train_days": 0, "test_days": 10}}, r"walkforward: .*train_days"),
        ({"backtest": {"stoploss": 0.1}}, r"backtest: .*stoploss"),
        ({"training": {"accelerator": "tpu"}}, r"accelerator must be one of"),
        ({"features": {"include_timeframes": ["4h", "1h"]}}, r"features: .*multiple of the base"),
        ({"features": {"include_timeframes": ["4h"]}}, r"must start with data.timeframe '1h'"),
    ],
)
def test_malformed_config(tmp_path, raw, match):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=match) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_objectives_are_pure_functions_of_metrics():
    metrics = {"sharpe": 1.5, "sortino": 2.0, "calmar": 3.0, "profit_total": 0.2, "max_drawdown_account": 0.05}
    assert get_objective("sharpe")(metrics) == (1.5,)
    assert get_objective("profit_drawdown")(metrics) == (pytest.approx(0.15),)
    assert get_objective("return_drawdown")(metrics) == (0.2, 0.05)
    assert get_objective("sharpe")({**metrics, "sharpe": float("nan")}) == (0.0,)  # no trades: flat
    assert set(OBJECTIVES) == {"sharpe", "sortino", "calmar", "profit", "profit_drawdown", "return_drawdown"}
