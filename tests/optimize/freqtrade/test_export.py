"""Export of a real (smoke) study to freqtrade: freqtrade validates the config and loads the
strategy with exactly the exported values; artefacts are traceable and hold no secrets; only
COMPLETE trials export; the CLI exports and verifies against the study's holdout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pandas as pd
import pytest
from freqtrade.configuration import Configuration
from freqtrade.configuration.config_validation import validate_config_consistency
from freqtrade.enums import RunMode
from freqtrade.resolvers import StrategyResolver
from optuna.trial import TrialState

from optimize._version import __version__
from optimize.cli import main
from optimize.config import load_config
from optimize.freqtrade.export import export_study_trial, export_trial
from optimize.search.space import TrialParams, load_space
from optimize.study.holdout import evaluate_holdout
from strategy.features import WARMUP_CANDLES
from strategy.freqtrade import STRATEGY_FILE, STRATEGY_NAME

REPO = Path(__file__).resolve().parents[3]
SMOKE_CONFIG = REPO / "configs" / "smoke.yaml"
SMOKE_SPACE = REPO / "search_spaces" / "smoke.yaml"
STUDY = "smoke"  # the study of conftest's smoke_study


@pytest.fixture(scope="module")
def storage(smoke_study) -> str:
    """This module's copy of the finished two-trial smoke study (2 pairs, 3 folds, holdout
    2025-08-05..2025-08-15)."""
    return smoke_study


@pytest.fixture(scope="module")
def study(storage) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=storage)


@pytest.fixture(scope="module")
def exported(storage, tmp_path_factory):
    return export_trial(STUDY, tmp_path_factory.mktemp("export"), storage=storage)


@pytest.fixture
def quiet_freqtrade_logging(monkeypatch):
    """freqtrade's Configuration would reconfigure the root logger; keep pytest's."""
    from freqtrade.configuration import configuration

    monkeypatch.setattr(configuration, "setup_logging", lambda config: None)


def test_freqtrade_validates_the_config_and_loads_the_exported_values(
    exported, datadir, quiet_freqtrade_logging
):
    args = {
        "config": [str(exported.config_path)],
        "datadir": str(datadir / "binance"),
        "strategy": STRATEGY_NAME,
        "timerange": exported.timerange,
    }  # as in the README
    config = Configuration(args, RunMode.BACKTEST).get_config()
    strategy = StrategyResolver.load_strategy(config)
    validate_config_consistency(config)  # freqtrade's full schema and consistency checks
    strategy.ft_load_hyper_params(False)
    params = json.loads(exported.params_path.read_text())["params"]
    loaded = {
        space: {name: p.value for name, p in strategy.enumerate_parameters(space)}
        for space in ("buy", "sell")
    }
    assert loaded == {"buy": params["buy"], "sell": params["sell"]}
    assert strategy.stoploss == params["stoploss"]["stoploss"]
    assert {str(k): v for k, v in strategy.minimal_roi.items()} == params["roi"]
    space = load_space(SMOKE_SPACE).distributions  # hyperopt ranges = the study's space
    for name, key in (
        ("entry_threshold", ("signal", "entry")),
        ("exit_gap", ("signal", "exit_gap")),
    ):
        param = getattr(strategy, name)
        assert (param.low, param.high) == (space[key].low, space[key].high)
    assert Path(strategy.__file__) == exported.strategy_link  # found through the export folder
    assert exported.strategy_link.resolve() == STRATEGY_FILE  # ... and it is the repository's code


def test_exported_values_are_the_trial_s(exported, study):
    trial = study.trials[exported.trial_number]
    assert exported.trial_number == study.best_trial.number
    params = TrialParams.from_dict(trial.user_attrs["resolved_params"])
    file = json.loads(exported.params_path.read_text())
    assert file["strategy_name"] == STRATEGY_NAME and file["ft_stratparam_v"] == 1
    buy, sell = file["params"]["buy"], file["params"]["sell"]
    assert [buy[f"w{i}"] for i in range(9)] == pytest.approx(params.weights, abs=5e-7)
    assert buy["threshold_mode"] == params.signal.mode
    assert buy["entry_threshold"] == pytest.approx(params.signal.entry, abs=5e-9)
    assert sell["exit_gap"] == pytest.approx(params.signal.exit_gap, abs=5e-9)
    config = json.loads(exported.config_path.read_text())
    run = load_config(SMOKE_CONFIG)
    freqai = config["freqai"]
    assert freqai["enabled"] and freqai["identifier"] == exported.identifier
    # FreqAI's window covers the study's train window and the purge gap (24 h: one day); the
    # model keeps the study's train_days that end purge_candles before each backtest window
    assert freqai["train_period_days"] == run.walkforward.train_days + 1
    settings = config["lstm_optuna"]
    assert settings["train_days"] == run.walkforward.train_days
    assert settings["purge_candles"] == run.walkforward.purge_candles
    assert settings["seed"] == run.study.seed
    assert settings["ensemble_size"] == run.training.ensemble_size
    # each span's indicators start WARMUP_CANDLES before its first training window; freqtrade
    # loads back to exactly that candle for the holdout (verify sets it for the span it runs)
    hour = pd.Timedelta(hours=1)
    assert (
        pd.Timestamp(settings["walkforward"]["warmup_start"])
        == pd.Timestamp(run.data.start, tz="UTC") - WARMUP_CANDLES * hour
    )
    holdout_start = pd.Timestamp(settings["holdout"]["start"])
    warmup = pd.Timestamp(settings["warmup_start"])
    assert warmup == pd.Timestamp(settings["holdout"]["warmup_start"])
    assert (
        warmup
        == holdout_start
        - run.walkforward.purge_candles * hour
        - pd.Timedelta(days=run.walkforward.train_days)
        - WARMUP_CANDLES * hour
    )
    assert (
        holdout_start
        - pd.Timedelta(days=freqai["train_period_days"])
        - config["startup_candle_count"] * hour
        == warmup
    )
    assert freqai["backtest_period_days"] == run.walkforward.test_days
    assert freqai["model_training_parameters"] == params.lstm.to_dict()
    assert freqai["conv_width"] == params.lstm.window_size
    fp = freqai["feature_parameters"]
    assert fp["include_timeframes"] == list(run.features.include_timeframes)
    assert fp["indicator_periods_candles"] == list(run.features.indicator_periods_candles)
    assert fp["include_shifted_candles"] == run.features.include_shifted_candles
    assert fp["label_period_candles"] == params.label_horizon
    assert config["exchange"]["pair_whitelist"] == list(run.data.pairs)
    assert config["pairlists"] == [{"method": "StaticPairList"}]
    assert config["timeframe"] == run.data.timeframe and config["fee"] == run.backtest.fee
    assert config["dry_run"] is True and config["exchange"]["name"] == "binance"


def test_every_artefact_carries_version_study_trial_and_params(exported, study):
    trial = study.trials[exported.trial_number]
    config = json.loads(exported.config_path.read_text())
    file = json.loads(exported.params_path.read_text())
    for block in (config["lstm_optuna"], file["lstm_optuna"]):
        assert block["version"] == __version__
        assert block["study_name"] == STUDY and block["trial_number"] == trial.number
        assert block["params"] == trial.user_attrs["resolved_params"]
    readme = exported.readme_path.read_text()
    assert __version__ in readme and repr(STUDY) in readme and f"trial {trial.number}" in readme
    assert exported.command in readme
    for flag in ("--config", "--strategy-path", "--freqaimodel-path", "--datadir", "--timerange"):
        assert flag in exported.command
    assert config["lstm_optuna"]["holdout"]["timerange"] == exported.timerange


def test_each_export_gets_its_own_freqai_identifier(storage, exported, tmp_path):
    again = export_trial(STUDY, tmp_path, storage=storage)
    assert again.identifier != exported.identifier


def test_no_secrets_in_the_output(study, tmp_path):
    url = "postgresql+psycopg2://bob:s3cret-pw@db.example/optuna"
    result = export_study_trial(study, tmp_path, storage=url)
    texts = [p.read_text() for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    assert texts and not any("s3cret-pw" in t for t in texts)
    config = json.loads(result.config_path.read_text())
    assert config["lstm_optuna"]["storage"] == "postgresql+psycopg2://bob:***@db.example/optuna"
    assert config["exchange"]["key"] == "" and config["exchange"]["secret"] == ""


def test_a_trial_that_is_not_complete_is_refused(storage, study, tmp_path, capsys):
    pruned = study.ask()
    study.tell(pruned, state=TrialState.PRUNED)
    with pytest.raises(ValueError, match=rf"trial {pruned.number} of study .* is PRUNED"):
        export_trial(STUDY, tmp_path, storage=storage, trial_number=pruned.number)
    code = main(
        [
            "export",
            "--study-name",
            STUDY,
            "--storage",
            storage,
            "--trial",
            str(pruned.number),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2 and f"trial {pruned.number}" in capsys.readouterr().err
    with pytest.raises(ValueError, match="has trials 0"):
        export_trial(STUDY, tmp_path, storage=storage, trial_number=99)
    with pytest.raises(ValueError, match="no study named 'nope'"):
        export_trial("nope", tmp_path, storage=storage)
    absent = tmp_path / "absent.db"
    with pytest.raises(ValueError, match="no study storage"):
        export_trial(STUDY, tmp_path, storage=f"sqlite:///{absent}")
    assert not absent.exists()  # looking did not create an empty database
    assert not (tmp_path / "config.json").exists()


def test_cli_export_then_verify_a_timerange_next_to_the_study_s_trades(
    storage, study, tmp_path, capsys
):
    best = study.best_trial.number
    record = evaluate_holdout(study, best)
    out = tmp_path / "exp"
    assert main(["export", "--study-name", STUDY, "--storage", storage, "--out", str(out)]) == 0
    stored = json.loads((out / "study_trades.json").read_text())["spans"]
    assert stored["holdout"]["trades"] == record.trades
    assert stored["walkforward"]["trades"] == study.best_trial.user_attrs["trades"]
    capsys.readouterr()
    assert main(["verify", "--export", str(out), "--timerange", "20250805-20250808"]) == 0
    text = capsys.readouterr().out
    assert f"trial {best}" in text and "20250805-20250808" in text
    assert re.search(r"trades: \d+ matched, \d+ study only, \d+ freqtrade only", text)
    row = next(line.split() for line in text.splitlines() if line.startswith("total_trades"))
    inside = [t for t in record.trades if t["close_date"] < "2025-08-08"]
    assert float(row[1]) == len(inside)  # the study's trades inside the timerange
    assert row[2] != "n/a"  # freqtrade's
