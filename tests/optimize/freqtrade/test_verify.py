"""What freqtrade runs is what the study scored: the smoke study's best trial, exported and
backtested by freqtrade's own FreqAI (in-process, offline, real candles), trades exactly as the
study did over its walk-forward test windows and over its holdout; inside freqtrade, every
training window fits the study fold's rows and sees the study's features and T."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen

from optimize.cli import main
from optimize.evaluation.holdout import holdout_warmup_start
from optimize.evaluation.inputs import StudyData
from optimize.freqtrade.export import TRADES_FILE
from optimize.freqtrade.run_setup import read_export
from optimize.freqtrade.verify import verify_export
from optimize.search.space import TrialParams
from optimize.study.holdout import stored_holdout
from optimize.study.records import study_config
from optimize.walkforward import holdout_windows
from strategy.freqtrade.rules import LABEL
from strategy.target import make_labels

STUDY = "smoke"
JSON_KEYS = {"span", "trades", "study", "freqtrade", "mismatches"}
PROFIT_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def study(smoke_study) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=smoke_study)


@pytest.fixture(scope="module")
def exported(smoke_study, tmp_path_factory) -> Path:
    """The best trial of the smoke study, exported with the CLI."""
    out = tmp_path_factory.mktemp("verify") / "export"
    assert main(["export", "--study-name", STUDY, "--storage", smoke_study, "--out", str(out)]) == 0
    return out


def _verify_json(args: list[str], capsys) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["verify", *args, "--json"])
    return rc, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("span", ["walkforward", "holdout"])
def test_freqtrade_reproduces_every_study_trade(exported, study, span, capsys):
    rc, doc = _verify_json(["--export", str(exported), "--span", span, "--strict"], capsys)
    assert rc == 0, doc["mismatches"]
    assert JSON_KEYS <= set(doc)
    assert {"start", "end"} <= set(doc["span"])
    assert set(doc["trades"]) == {"matched", "study_only", "freqtrade_only"}
    assert doc["trades"]["study_only"] == doc["trades"]["freqtrade_only"] == 0
    assert doc["mismatches"] == {"study_only": [], "freqtrade_only": []}
    n = doc["trades"]["matched"]
    assert n > 0 and doc["study"]["total_trades"] == doc["freqtrade"]["total_trades"] == n
    assert abs(doc["study"]["profit_total"] - doc["freqtrade"]["profit_total"]) <= PROFIT_TOLERANCE
    # the study's side is what the study scored and stored
    trial = study.best_trial
    config = study_config(study)
    data = StudyData.load(config)
    if span == "walkforward":
        folds = data.plan.folds
        assert (doc["span"]["start"], doc["span"]["end"]) == (
            folds[0].test_start.isoformat(),
            folds[-1].test_end.isoformat(),
        )
        assert doc["study"]["profit_total"] == trial.user_attrs["oos_metrics"]["profit_total"]
        assert n == len(trial.user_attrs["trades"])
    else:
        record = stored_holdout(study, trial.number)
        assert (pd.Timestamp(doc["span"]["start"]), pd.Timestamp(doc["span"]["end"])) == (
            data.plan.holdout.start,
            data.plan.holdout.end,
        )
        assert doc["study"]["profit_total"] == record.metrics["profit_total"]
        assert n == len(record.trades)


def test_strict_fails_on_a_mismatch_and_names_it(exported, tmp_path, capsys):
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "strategy").mkdir()
    for name in ("config.json", "strategy/LstmOptunaStrategy.json"):
        (forged / name).write_text((exported / name).read_text())
    (forged / "strategy" / "LstmOptunaStrategy.py").symlink_to(
        (exported / "strategy" / "LstmOptunaStrategy.py").resolve()
    )
    doc = json.loads((exported / TRADES_FILE).read_text())
    trades = doc["spans"]["holdout"]["trades"]
    victim = dict(trades[0])
    trades[0]["exit_reason"] = "roi" if victim["exit_reason"] != "roi" else "stop_loss"
    (forged / TRADES_FILE).write_text(json.dumps(doc))

    rc, out = _verify_json(["--export", str(forged), "--strict"], capsys)
    assert rc == 1
    assert out["trades"]["study_only"] == out["trades"]["freqtrade_only"] == 1
    assert out["mismatches"]["study_only"][0]["exit_reason"] == trades[0]["exit_reason"]
    theirs = out["mismatches"]["freqtrade_only"][0]
    assert (theirs["pair"], theirs["open_date"], theirs["exit_reason"]) == (
        victim["pair"],
        victim["open_date"],
        victim["exit_reason"],
    )
    # without --strict the same run reports and succeeds
    assert _verify_json(["--export", str(forged)], capsys)[0] == 0


def _study_name(freqai_name: str) -> str:
    """The study's name of a FreqAI feature column (``%-rsi-period_10_BTC/USDT_1h`` ->
    ``%-rsi-period_10_1h``, ``%-macd_gen_BTC/USDT_4h`` -> ``%-macd_4h``)."""
    return re.sub(r"(_gen)?_[A-Z0-9]+/[A-Z0-9]+_(\w+)$", r"_\2", freqai_name)


def test_inside_freqtrade_each_window_fits_the_study_fold_rows_on_the_study_s_features(
    exported, study, monkeypatch
):
    """Every frame FreqAI hands the model (training windows and backtest windows, holdout span)
    holds the study's holdout features (same columns, same order, same float32 values) and the
    study's T at every candle; the rows the model fits are the study window's training rows."""
    frames: list[pd.DataFrame] = []
    real = FreqaiDataKitchen.find_features

    def recording(self, dataframe):
        frames.append(dataframe.copy())
        return real(self, dataframe)

    monkeypatch.setattr(FreqaiDataKitchen, "find_features", recording)
    result = verify_export(exported, span="holdout")
    assert result.all_match
    config = study_config(study)
    params = TrialParams.from_dict(study.best_trial.user_attrs["resolved_params"])
    data = StudyData.load(config, warmup_from=holdout_warmup_start(config))
    windows = holdout_windows(data.plan, data.dates)
    settings = read_export(exported)["lstm_optuna"]
    tf = pd.Timedelta(hours=1)
    checked_train = 0
    for frame in frames:
        if len(frame) < 2 or LABEL not in frame:
            continue  # FreqAI's one-row feature-list check
        names = [c for c in frame.columns if c.startswith("%")]
        pair = next(p for p in config.data.pairs if p in names[0])
        study_pair = data.pairs[pair]
        assert [_study_name(n) for n in names] == list(study_pair.feature_names)
        dates = pd.DatetimeIndex(frame["date"]).as_unit("ns")
        rows = data.dates.get_indexer(dates)
        assert (rows >= 0).all()  # every candle FreqAI uses is inside the study span
        np.testing.assert_array_equal(frame[names].to_numpy(np.float32), study_pair.features[rows])
        target = make_labels(study_pair.basis.score(params.weights), params.label_horizon)
        labels = frame[LABEL].to_numpy()
        known = np.isfinite(labels)  # FreqAI has no label for the last h rows of its frame
        assert known[: len(labels) - params.label_horizon].all()
        np.testing.assert_array_equal(labels[known], target[rows][known])
        if dates[-1] + tf in {w.test_start for w in windows}:  # a training frame
            window = next(w for w in windows if w.test_start == dates[-1] + tf)
            fit_end = dates[-1] + tf - settings["purge_candles"] * tf
            fit = (dates < fit_end) & (dates >= fit_end - pd.Timedelta(days=settings["train_days"]))
            assert dates[fit].as_unit("ns").equals(data.dates[window.train].as_unit("ns")), (
                window.index
            )
            checked_train += 1
    assert checked_train == len(windows) * len(config.data.pairs)
