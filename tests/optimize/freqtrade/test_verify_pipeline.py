"""FreqAI's data pipeline, all five keys on, from the study to freqtrade: a smoke study with
``DI_threshold``, ``weight_factor``, ``noise_standard_deviation``, a correlated pair that is not
traded and ``buffer_train_data_candles``, exported and backtested by freqtrade's own FreqAI
(in-process, offline, real candles), trades exactly as the study did over its walk-forward test
windows and its holdout; inside freqtrade every window fits the study's rows on the study's
features (correlated pair's included) and its dissimilarity index blocks the same candles."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen

from optimize.cli import main
from optimize.config import load_config
from optimize.evaluation.holdout import holdout_warmup_start
from optimize.evaluation.inputs import StudyData
from optimize.freqtrade.run_setup import read_export
from optimize.search.space import TrialParams, load_space
from optimize.study.holdout import stored_holdout
from optimize.study.records import TrialRecord, study_config
from optimize.study.runner import run_worker
from tests.conftest import SMOKE_CONFIG, SMOKE_SPACE

STUDY = "pipeline"
PIPELINE = {
    "DI_threshold": 1.0,
    "weight_factor": 0.65,
    "noise_standard_deviation": 0.1,
    "include_corr_pairlist": ["SOL/USDT"],  # not one of the smoke study's pairs
    "buffer_train_data_candles": 30,  # > purge_candles (24): it moves the fits' end too
}
PROFIT_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def storage(tmp_path_factory) -> str:
    """A one-trial smoke study with the five keys on."""
    folder = tmp_path_factory.mktemp("pipeline-study")
    raw = yaml.safe_load(SMOKE_CONFIG.read_text())
    raw["features"].update(PIPELINE)
    path = folder / "smoke-pipeline.yaml"
    path.write_text(yaml.safe_dump(raw))
    url = f"sqlite:///{folder / 'study.db'}"
    run_worker(
        load_config(path), load_space(SMOKE_SPACE), storage=url, study_name=STUDY, n_trials=1
    )
    return url


@pytest.fixture(scope="module")
def study(storage) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=storage)


@pytest.fixture(scope="module")
def exported(storage, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pipeline-export") / "export"
    assert main(["export", "--study-name", STUDY, "--storage", storage, "--out", str(out)]) == 0
    return out


def test_the_export_carries_the_five_keys(exported):
    params = read_export(exported)["freqai"]["feature_parameters"]
    assert {k: params[k] for k in PIPELINE} == PIPELINE


def test_the_trial_record_and_the_report_show_the_share_of_candles_blocked(
    study, storage, tmp_path, capsys
):
    record = TrialRecord.of(study.best_trial)
    folds = [f for f in record.folds]
    assert record.di_blocked == [f["di_blocked"] for f in folds]
    counts = [i for f in folds for i in f["pairs"].values()]
    total = sum(i["di_blocked_candles"] for i in counts) / sum(
        i["di_predicted_candles"] for i in counts
    )
    assert record.di_blocked_total == pytest.approx(total) and 0 < total < 1
    for fold in folds:
        pairs = fold["pairs"].values()
        share = sum(i["di_blocked_candles"] for i in pairs) / sum(
            i["di_predicted_candles"] for i in pairs
        )
        assert fold["di_blocked"] == pytest.approx(share)
    out = tmp_path / "report.html"
    capsys.readouterr()
    argv = ["report", "--storage", storage, "--study-name", STUDY, "--out", str(out)]
    assert main([*argv, "--json", "--no-holdout"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["di_blocked"]["folds"] == pytest.approx(record.di_blocked)
    assert doc["di_blocked"]["total"] == pytest.approx(total)
    assert doc["pipeline"] == PIPELINE
    page = out.read_text()
    assert "DI blocked" in page and f"{total:.2%}" in page


def _study_name(freqai_name: str, pair: str) -> str:
    """The study's name of a FreqAI column: the traded pair's own columns lose the pair
    (``%-rsi-period_10_BTC/USDT_1h`` -> ``%-rsi-period_10_1h``), FreqAI's ``_gen`` goes."""
    name = re.sub(r"_gen(?=_[A-Z0-9]+/)", "", freqai_name)
    return name.replace(f"_{pair}_", "_")


@pytest.fixture
def inside(monkeypatch) -> dict[str, list]:
    """What freqtrade's FreqAI hands the model (frames) and what it appends to the strategy's
    frame after each window (predictions, ``do_predict``, the model's training record)."""
    seen: dict[str, list] = {"frames": [], "windows": []}
    find, append = FreqaiDataKitchen.find_features, FreqaiDataKitchen.get_predictions_to_append

    def recording_find(self, dataframe):
        seen["frames"].append((self.pair, dataframe.copy()))
        return find(self, dataframe)

    def recording_append(self, predictions, do_predict, dataframe_backtest):
        start = pd.Timestamp(dataframe_backtest["date"].iloc[0])
        values = predictions.iloc[:, 0].to_numpy()
        fitted = dict(self.data["lstm_optuna"])
        seen["windows"].append((self.pair, start, values, np.asarray(do_predict), fitted))
        return append(self, predictions, do_predict, dataframe_backtest)

    monkeypatch.setattr(FreqaiDataKitchen, "find_features", recording_find)
    monkeypatch.setattr(FreqaiDataKitchen, "get_predictions_to_append", recording_append)
    return seen


@pytest.mark.parametrize("span", ["walkforward", "holdout"])
def test_freqtrade_reproduces_every_trade_with_the_pipeline_on(
    exported, study, span, inside, capsys
):
    capsys.readouterr()
    rc = main(["verify", "--export", str(exported), "--span", span, "--strict", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0, doc["mismatches"]
    n = doc["trades"]["matched"]
    assert n > 0 and doc["trades"]["study_only"] == doc["trades"]["freqtrade_only"] == 0
    assert abs(doc["study"]["profit_total"] - doc["freqtrade"]["profit_total"]) <= PROFIT_TOLERANCE

    # the study's windows of the span: fitted rows and DI-blocked candles per pair
    trial = study.best_trial
    config = study_config(study)
    params = TrialParams.from_dict(TrialRecord.of(trial).params)
    if span == "walkforward":
        data = StudyData.load(config)
        windows = {pd.Timestamp(f["test_start"]): f for f in TrialRecord.of(trial).folds}
    else:
        data = StudyData.load(config, warmup_from=holdout_warmup_start(config))
        record = stored_holdout(study, trial.number)
        windows = {pd.Timestamp(w.test_start): w.to_dict() for w in record.windows}
    blocked = {
        (pair, start): info["di_blocked_candles"]
        for start, w in windows.items()
        for pair, info in w["pairs"].items()
    }
    assert sum(blocked.values()) > 0  # the index blocked candles in the study ...
    theirs = {
        (pair, start): int((np.isfinite(values) & (do_predict == 0)).sum())
        for pair, start, values, do_predict, _ in inside["windows"]
    }
    assert theirs == blocked  # ... and the same number of candles, window by window, in freqtrade
    for pair, start, _, _, fitted in inside["windows"]:  # the rows each window fitted
        assert pd.Timestamp(fitted["train_start"]) == pd.Timestamp(windows[start]["train_start"])
        last = pd.Timestamp(windows[start]["train_end"]) - pd.Timedelta(hours=1)
        assert pd.Timestamp(fitted["train_last"]) == last, (pair, start)

    # every frame FreqAI hands the model: the study's features, the correlated pair's last
    corr = params.pipeline(config.features.pipeline).include_corr_pairlist
    checked = 0
    for pair, frame in inside["frames"]:
        if len(frame) < 2:
            continue  # FreqAI's one-row feature-list check
        names = [c for c in frame.columns if c.startswith("%")]
        matrix, study_names = data.features_of(pair, corr)
        assert [_study_name(c, pair) for c in names] == list(study_names)
        assert study_names[-1].startswith("%-") and "SOL/USDT" in study_names[-1]
        dates = pd.DatetimeIndex(frame["date"]).as_unit("ns")
        rows = data.dates.get_indexer(dates)
        known = rows >= 0  # the first fold's training frame starts before the study span
        np.testing.assert_array_equal(frame[names].to_numpy(np.float32)[known], matrix[rows[known]])
        checked += 1
    assert checked >= 2 * len(windows) * len(config.data.pairs)  # training and backtest frames
