"""The exported FreqAI strategy inside freqtrade itself (in-process, offline, real candles):
its feature hooks rebuild the study's features, a short FreqAI backtest trains the project's LSTM
through the FreqAI model class, and freqtrade's lookahead analysis finds no look-ahead."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen

from lstm.params import LSTMParams
from optimize.config import load_config
from optimize.freqtrade.export import build_export
from optimize.freqtrade.lookahead import lookahead_analysis
from optimize.freqtrade.run_setup import read_export
from optimize.freqtrade.verify import verify_export
from optimize.search.space import TrialParams
from optimize.walkforward import WalkForwardSettings
from strategy.features import build_features
from strategy.freqtrade.lstm_strategy import LstmOptunaStrategy
from strategy.freqtrade.rules import LABEL
from strategy.signals import SignalParams
from strategy.target import TargetBasis, make_labels

PAIR = "BTC/USDT"
WEIGHTS = (0.5, 0.4, 0.3, 0.6, 0.1, 0.3, 0.4, 0.5, 0.8)
TRAIN_DAYS, TEST_DAYS = 20, 3
TIMERANGE = "20250805-20250811"  # two FreqAI windows of 3 days


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    """An export of hand-picked tiny parameters under the smoke run config (short windows)."""
    run = load_config("configs/smoke.yaml")
    run = dataclasses.replace(
        run,
        walkforward=WalkForwardSettings(
            train_days=TRAIN_DAYS, test_days=TEST_DAYS, purge_candles=24, holdout_days=10
        ),
    )
    params = TrialParams(
        lstm=LSTMParams(
            num_lstm_layers=1,
            hidden_dim=8,
            dropout_percent=0.0,
            window_size=3,
            batch_size=256,
            epochs=1,
            early_stopping_patience=1,
        ),
        weights=WEIGHTS,
        signal=SignalParams("quantile", 0.6, 0.3),
        label_horizon=1,
    )
    out = tmp_path_factory.mktemp("export")
    build_export(out, run, params, study_name="handmade", trial_number=0).write()
    return out


def _freqai_name(name: str, timeframes: tuple[str, ...]) -> str:
    """The FreqAI column name of a project feature column (same definition, other naming)."""
    shifted = re.fullmatch(r"(.+)_(shift-\d+)", name)
    if shifted:  # %-rsi-period_10_1h_shift-1 -> %-rsi-period_10_shift-1_BTC/USDT_1h
        base = _freqai_name(shifted.group(1), timeframes)
        head, tail = base.split(f"_{PAIR}_")
        return f"{head}_{shifted.group(2)}_{PAIR}_{tail}"
    for tf in timeframes:
        if name.endswith(f"_{tf}"):
            stem = name[: -len(tf) - 1]
            if re.search(r"-period_\d+$", stem):
                return f"{stem}_{PAIR}_{tf}"
            return f"{stem}_gen_{PAIR}_{tf}"
    return name


@pytest.mark.parametrize(("warmup_row", "shifts"), [(None, 0), (250, 0), (None, 2)])
def test_feature_hooks_and_target_are_the_study_s(export_dir, datadir, warmup_row, shifts):
    """The hooks rebuild the study's features and T from the candles freqtrade hands them, in the
    study's column order (shifted candles in their own timeframe on both sides); with
    ``lstm_optuna.warmup_start`` they compute from that candle on (NaN before), exactly as the
    study does on candles starting there."""
    config = read_export(export_dir)
    config["freqai"]["feature_parameters"]["include_shifted_candles"] = shifts
    config["user_data_dir"] = export_dir / "user_data"
    end = pd.Timestamp("2025-08-01", tz="UTC")
    base = pd.read_feather(datadir / "binance" / "BTC_USDT-1h.feather")
    base = base[base["date"] < end].tail(900).reset_index(drop=True)
    four = pd.read_feather(datadir / "binance" / "BTC_USDT-4h.feather")
    four = four[(four["date"] < end) & (four["date"] >= base["date"].iloc[0])].reset_index(
        drop=True
    )
    first = 0
    if warmup_row is None:
        config["lstm_optuna"].pop("warmup_start")
    else:
        config["lstm_optuna"]["warmup_start"] = base["date"].iloc[warmup_row].isoformat()
        first = warmup_row
    strategy = LstmOptunaStrategy(config)
    strategy.ft_load_hyper_params()  # defaults (no parameter file next to the imported class)
    dk = FreqaiDataKitchen(config, live=True, pair=PAIR)
    populated = dk.use_strategy_to_populate_indicators(
        strategy,
        base_dataframes={"1h": base.copy(), "4h": four.copy()},
        pair=PAIR,
        prediction_dataframe=base.copy(),
    )
    run = load_config("configs/smoke.yaml")
    run = dataclasses.replace(
        run, features=dataclasses.replace(run.features, include_shifted_candles=shifts)
    )
    start = base["date"].iloc[first]
    from_start = {
        "1h": base.iloc[first:].reset_index(drop=True),
        "4h": four[four["date"] >= start].reset_index(drop=True),
    }
    expected = build_features(from_start, run.features)
    names = {_freqai_name(c, run.features.include_timeframes): c for c in expected.columns}
    assert [c for c in populated.columns if c.startswith("%")] == list(names)  # same order
    for ft_name, name in names.items():
        values = populated[ft_name].to_numpy(np.float32)
        assert np.isnan(values[:first]).all(), ft_name
        np.testing.assert_array_equal(values[first:], expected[name].to_numpy(), err_msg=ft_name)
    target = TargetBasis.from_candles(from_start["1h"]).score(strategy.weights())
    labels = populated[LABEL].to_numpy()
    assert np.isnan(labels[:first]).all()
    np.testing.assert_array_equal(labels[first:], make_labels(target, 1))


def test_short_freqai_backtest_trains_the_project_lstm(export_dir, caplog):
    caplog.set_level(logging.INFO)
    result = verify_export(export_dir, timerange=TIMERANGE)
    trainings = [r.getMessage() for r in caplog.records if "training LSTM for" in r.getMessage()]
    # one training per pair and FreqAI window, each on the study's train window: train_days
    # ending purge_candles (24) before the window
    assert len(trainings) == 2 * 2
    rows = TRAIN_DAYS * 24
    for pair in ("BTC/USDT", "ETH/USDT"):
        for last in ("2025-08-03 23:00:00", "2025-08-06 23:00:00"):
            assert any(
                m.startswith(f"training LSTM for {pair} on {rows} rows") and last in m
                for m in trainings
            ), (pair, last, trainings)
    assert result.trades > 0 and result.freqtrade["total_trades"] == result.trades
    start, stop = (pd.Timestamp(d, tz="UTC") for d in TIMERANGE.split("-"))
    opened = pd.to_datetime([t["open_date"] for t in result.stats["trades"]], utc=True)
    assert len(opened) == result.trades and (opened >= start).all() and (opened < stop).all()
    assert result.study is None and "no study trades" in result.note


def test_freqtrade_lookahead_analysis_finds_no_lookahead(export_dir):
    summary = lookahead_analysis(
        export_dir, timerange="20250805-20250809", pairs=[PAIR], targeted_trade_amount=3
    )
    assert summary.total_signals >= 1
    assert summary.false_entry_signals == 0 and summary.false_exit_signals == 0
    # nothing changes on any candle before the cut; on the cut's last candle only FreqAI's
    # unpredicted boundary differs (its windows end before the timerange's last candle)
    assert summary.changed_before_last_candle == []
    assert summary.last_candle_unpredicted
    assert summary.no_lookahead


def test_feature_subset_setting_is_checked(export_dir):
    config = read_export(export_dir)
    config["lstm_optuna"]["features"] = ["rsi", "vwap"]
    with pytest.raises(
        ValueError,
        match=r"lstm_optuna\.features must be a non-empty subset of .*"
        r"but got unknown \['vwap'\]",
    ):
        LstmOptunaStrategy(config)
    config["lstm_optuna"]["features"] = ["rsi"]
    assert LstmOptunaStrategy(config).feature_set == ("rsi",)
