"""The FreqAI model class: trains with lstm.fit_predict, predicts windows like lstm.predict,
stores weights-only checkpoints FreqAI can reload (real freqtrade FreqAI classes, real candles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen

from lstm.checkpoint import load_checkpoint
from lstm.fitspec import FitSpec
from lstm.params import LSTMParams
from lstm.seeds import model_seed
from lstm.train import ensemble_mean, fit_predict, predict, predict_ensemble
from optimize.config import load_config
from optimize.freqtrade.trial_config import build_freqtrade_config
from optimize.search.space import TrialParams
from strategy.dissimilarity import DissimilarityIndex
from strategy.features import build_features
from strategy.freqtrade.lstm_regressor import LstmOptunaRegressor
from strategy.freqtrade.rules import EXTRA_BUY, EXTRA_SELL, LABEL, SETTINGS_KEY
from strategy.freqtrade.trained import (
    CheckpointDataDrawer,
    TrainedLSTM,
)
from strategy.signals import SignalParams, label_stats, resolve_thresholds
from strategy.target import TargetBasis, make_labels

PAIR = "BTC/USDT"
SEED = 7
WINDOW = 4
HORIZON = 2
TRAIN_ROWS = 720
TEST_ROWS = 256
LSTM = LSTMParams(
    num_lstm_layers=2,
    hidden_dim=8,
    dropout_percent=0.1,
    window_size=WINDOW,
    learning_rate=3e-3,
    batch_size=128,
    epochs=2,
    early_stopping_patience=1,
)
SIGNAL = SignalParams("quantile", 0.8, 0.3)
WEIGHTS = (0.5, 0.4, 0.3, 0.6, 0.1, 0.3, 0.4, 0.5, 0.8)
FLOAT32_BATCH = {"rtol": 1e-6, "atol": 0.0}
"""A window predicted in another batch position may differ in the last float32 bits."""


def _config(tmp: Path, **freqai: object) -> dict:
    run = load_config("configs/smoke.yaml")
    params = TrialParams(lstm=LSTM, weights=WEIGHTS, signal=SIGNAL, label_horizon=HORIZON)
    config = build_freqtrade_config(
        run, params, identifier="model-test", settings={"seed": SEED, "accelerator": "cpu"}
    )
    config["freqai"].update(freqai)
    config["user_data_dir"] = tmp
    return config


@pytest.fixture(scope="module")
def frame(datadir) -> pd.DataFrame:
    """Real candles with the project's features (FreqAI-style '%' names) and the label."""
    base = pd.read_feather(datadir / "binance" / "BTC_USDT-1h.feather")
    base = (
        base[base["date"] < pd.Timestamp("2025-08-01", tz="UTC")].tail(1400).reset_index(drop=True)
    )
    four = pd.read_feather(datadir / "binance" / "BTC_USDT-4h.feather")
    four = (
        four[four["date"] < pd.Timestamp("2025-08-01", tz="UTC")].tail(400).reset_index(drop=True)
    )
    run = load_config("configs/smoke.yaml")
    features = build_features({"1h": base, "4h": four}, run.features)
    target = TargetBasis.from_candles(base).score(WEIGHTS)
    out = pd.concat([base, features], axis=1)
    out[LABEL] = make_labels(target, HORIZON)
    return out.tail(TRAIN_ROWS + TEST_ROWS + 50).reset_index(drop=True)


@pytest.fixture(scope="module")
def trained(frame, tmp_path_factory):
    """One FreqAI training through the model class."""
    tmp = tmp_path_factory.mktemp("freqai")
    model = LstmOptunaRegressor(config=_config(tmp))
    model.signal_params = SIGNAL
    dk = FreqaiDataKitchen(model.config, live=True, pair=PAIR)
    train = frame.iloc[:TRAIN_ROWS].copy()
    dk.find_features(train)
    dk.find_labels(train)
    result = model.train(train, PAIR, dk)
    return model, dk, result


def _features(frame: pd.DataFrame, names: tuple[str, ...]) -> np.ndarray:
    """The feature rows as the study holds them: a float32 matrix."""
    return frame.loc[:, list(names)].to_numpy(dtype=np.float32)


def test_training_is_the_projects_fit(frame, trained):
    _, dk, result = trained
    names = result.feature_names
    assert len(names) > 10 and all("%" in n for n in names)
    x = _features(frame.iloc[:TRAIN_ROWS], names)
    y = frame[LABEL].to_numpy()[:TRAIN_ROWS]
    seed = model_seed(SEED, PAIR, frame["date"].iloc[TRAIN_ROWS - 1], 0)
    spec = FitSpec(
        train=slice(0, TRAIN_ROWS),
        predict=slice(TRAIN_ROWS - 1, TRAIN_ROWS),
        params=LSTM,
        label_horizon=HORIZON,
        feature_names=names,
        accelerator="cpu",
    )
    reference = fit_predict(x, y, spec, seed)
    ours = result.module.state_dict()
    for key, value in reference.model.state_dict().items():
        assert torch.equal(ours[key], value), key
    # the dtype matters: the same values as float64 rows are scaled in float64 and round
    # differently, so the fit would not be the study's
    wide = fit_predict(x.astype(np.float64), y, spec, seed)
    assert not np.array_equal(wide.train_predictions, reference.train_predictions)
    thr = resolve_thresholds(SIGNAL, train_predictions=reference.train_predictions, train_labels=y)
    extras = dk.data["extra_returns_per_train"]
    assert extras[EXTRA_BUY] == thr.buy and extras[EXTRA_SELL] == thr.sell
    assert (dk.data["labels_mean"][LABEL], dk.data["labels_std"][LABEL]) == label_stats(y)
    # the window before the test rows travels with the model
    np.testing.assert_array_equal(result.context, x[-(WINDOW - 1) :])


def test_predictions_equal_the_project_predict_of_the_checkpoint(frame, trained, tmp_path):
    model, dk, result = trained
    path = result.save(tmp_path / "sub-train_model.zip")
    payload = torch.load(path, weights_only=True)  # no pickled code in the file
    assert {"state_dict", "scaler", "hyperparameters"} <= set(payload)
    module, scaler, _ = load_checkpoint(path)
    rows = slice(TRAIN_ROWS, TRAIN_ROWS + TEST_ROWS)
    expected = predict(module, scaler, _features(frame, result.feature_names), rows, WINDOW)
    assert np.isfinite(expected).all()
    model.model = TrainedLSTM.load(path)
    pred_df, do_predict = model.predict(frame.iloc[rows].reset_index(drop=True), dk)
    np.testing.assert_array_equal(pred_df[LABEL].to_numpy(), expected)
    assert do_predict.tolist() == [1] * TEST_ROWS
    model.model = result  # the in-memory model predicts the same
    np.testing.assert_array_equal(
        model.predict(frame.iloc[rows], dk)[0][LABEL].to_numpy(), expected
    )
    # a window of 1 (what FreqAI's stock predict feeds the model) gives other numbers
    single = predict(module, scaler, _features(frame, result.feature_names), rows, 1)
    assert not np.allclose(single, expected)


def test_rows_without_history_are_not_predicted(frame, trained):
    model, dk, result = trained
    model.model = result
    adjacent, _ = model.predict(frame.iloc[TRAIN_ROWS : TRAIN_ROWS + TEST_ROWS], dk)
    later = frame.iloc[TRAIN_ROWS + 10 : TRAIN_ROWS + TEST_ROWS]  # not right after training
    pred_df, do_predict = model.predict(later, dk)
    values = pred_df[LABEL].to_numpy()
    assert np.isnan(values[: WINDOW - 1]).all() and not do_predict[: WINDOW - 1].any()
    np.testing.assert_allclose(
        values[WINDOW - 1 :], adjacent[LABEL].to_numpy()[10 + WINDOW - 1 :], **FLOAT32_BATCH
    )
    assert do_predict[WINDOW - 1 :].all()


def test_truncating_the_future_does_not_change_past_predictions(frame, trained):
    model, dk, result = trained
    model.model = result
    full = model.predict(frame.iloc[TRAIN_ROWS : TRAIN_ROWS + TEST_ROWS], dk)[0][LABEL].to_numpy()
    for cut in (1, WINDOW, 37, TEST_ROWS - 1):
        part = model.predict(frame.iloc[TRAIN_ROWS : TRAIN_ROWS + cut], dk)[0][LABEL].to_numpy()
        np.testing.assert_array_equal(part, full[:cut])  # bitwise: batches have a fixed size


def test_freqai_drawer_reloads_the_checkpoint(frame, trained):
    model, dk, result = trained
    stamp = int(frame["date"].iloc[TRAIN_ROWS].timestamp())
    model.dd.set_pair_dict_info({"pair": PAIR})
    dk.set_paths(PAIR, stamp)
    dk.set_new_model_names(PAIR, stamp)
    model.dd.save_data(result, PAIR, dk)  # FreqAI's own save: calls result.save(<name>_model.zip)
    assert (dk.data_path / f"{dk.model_filename}_model.zip").is_file()
    fresh = CheckpointDataDrawer(Path(model.full_path), model.config)
    fresh.model_type = "pytorch"
    dk2 = FreqaiDataKitchen(model.config, live=True, pair=PAIR)
    loaded = fresh.load_data(PAIR, dk2)
    assert isinstance(loaded, TrainedLSTM) and dk2.training_features_list == list(
        result.feature_names
    )
    test = frame.iloc[TRAIN_ROWS : TRAIN_ROWS + TEST_ROWS]
    model.model = loaded
    again = model.predict(test, dk2)[0][LABEL].to_numpy()
    model.model = result
    np.testing.assert_array_equal(again, model.predict(test, dk)[0][LABEL].to_numpy())


def test_config_errors_name_the_setting(tmp_path):
    with pytest.raises(ValueError, match="conv_width"):
        LstmOptunaRegressor(config=_config(tmp_path, conv_width=WINDOW - 1))
    bad_fp = _config(tmp_path)
    bad_fp["freqai"]["feature_parameters"]["principal_component_analysis"] = True
    with pytest.raises(
        ValueError, match=r"does not apply FreqAI's PCA.*'principal_component_analysis': True"
    ):
        LstmOptunaRegressor(config=bad_fp)
    bad_di = _config(tmp_path)
    bad_di["freqai"]["feature_parameters"]["DI_threshold"] = -1
    with pytest.raises(ValueError, match="DI_threshold=-1"):
        LstmOptunaRegressor(config=bad_di)
    bad_params = _config(tmp_path)
    bad_params["freqai"]["model_training_parameters"]["hidden_units"] = 4
    with pytest.raises(ValueError, match="hidden_units"):
        LstmOptunaRegressor(config=bad_params)


def test_training_rows_of_each_freqai_window_are_the_study_fold_s(datadir, tmp_path):
    """FreqAI's own window split over the walk-forward span, then the model's purge and trim:
    the rows fitted are, date for date, the rows the study's fold fitted."""
    from optimize.data import load_candles
    from optimize.freqtrade.timerange import timerange_of
    from optimize.walkforward import WalkForwardSettings, make_folds

    candles = load_candles(
        PAIR, "1h", datadir=datadir, exchange="binance", start="2025-06-01", end="2025-08-15"
    )
    dates = pd.DatetimeIndex(candles["date"])
    for settings in (
        WalkForwardSettings(train_days=30, test_days=10, purge_candles=24),
        WalkForwardSettings(train_days=7.5, test_days=4, purge_candles=30),
    ):
        plan = make_folds(dates, settings, "1h")
        windows = plan.to_freqai()
        config = _config(
            tmp_path,
            train_period_days=windows["train_period_days"],
            backtest_period_days=windows["backtest_period_days"],
        )
        config[SETTINGS_KEY].update(
            train_days=settings.train_days, purge_candles=settings.purge_candles
        )
        config["timerange"] = timerange_of(*plan.walkforward_span)
        config["config_files"] = [str(tmp_path / "config.json")]
        (tmp_path / "config.json").write_text("{}")
        config["freqai"]["identifier"] = f"windows-{settings.train_days}"
        model = LstmOptunaRegressor(config=config)
        dk = FreqaiDataKitchen(config, live=False, pair=PAIR)
        trains, tests = dk.training_timeranges, dk.backtesting_timeranges
        assert len(trains) == len(plan.folds)
        for fold, tr_train, tr_test in zip(plan.folds, trains, tests, strict=True):
            assert tr_test.startdt == fold.test_start and tr_test.stopdt == fold.test_end
            frame_dates = dates[(dates >= tr_train.startdt) & (dates < tr_train.stopdt)]
            fit = model.fit_rows(frame_dates, pd.Timedelta(hours=1))
            assert frame_dates[fit].equals(dates[fold.train]), fold.index


@pytest.mark.parametrize("buffer", [10, 30])  # shorter and longer than the purge gap (24)
def test_buffer_train_data_candles_cuts_what_freqai_cuts(datadir, tmp_path, buffer):
    """FreqAI's own buffer_timerange cuts its training windows; the model (which turns FreqAI's
    cut off to keep the candles before each backtest window) fits exactly the rows of the study's
    buffered fold, every one of them inside FreqAI's cut window."""
    import copy

    from optimize.data import load_candles
    from optimize.freqtrade.timerange import timerange_of
    from optimize.walkforward import WalkForwardSettings, make_folds

    candles = load_candles(
        PAIR, "1h", datadir=datadir, exchange="binance", start="2025-06-01", end="2025-08-15"
    )
    dates = pd.DatetimeIndex(candles["date"])
    settings = WalkForwardSettings(train_days=30, test_days=10, purge_candles=24)
    plan = make_folds(dates, settings, "1h", buffer_candles=buffer)
    windows = plan.to_freqai()
    config = _config(
        tmp_path,
        train_period_days=windows["train_period_days"],
        backtest_period_days=windows["backtest_period_days"],
    )
    config["freqai"]["feature_parameters"]["buffer_train_data_candles"] = buffer
    config[SETTINGS_KEY].update(
        train_days=settings.train_days, purge_candles=settings.purge_candles
    )
    config["timerange"] = timerange_of(*plan.walkforward_span)
    config["config_files"] = [str(tmp_path / "config.json")]
    (tmp_path / "config.json").write_text("{}")
    freqai_own = FreqaiDataKitchen(copy.deepcopy(config), live=False, pair=PAIR)
    model = LstmOptunaRegressor(config=config)
    assert config["freqai"]["feature_parameters"]["buffer_train_data_candles"] == 0
    dk = FreqaiDataKitchen(config, live=False, pair=PAIR)
    plain = make_folds(dates, settings, "1h")
    for fold, tr_train, whole in zip(plan.folds, dk.training_timeranges, plain.folds, strict=True):
        # the cut shortens the fit: by the buffer at the start (train_period_days has no slack
        # here), by what exceeds the purge gap at the end
        start_cut, end_cut = buffer, max(buffer - settings.purge_candles, 0)
        assert (fold.train.start, fold.train.stop) == (
            whole.train.start + start_cut,
            whole.train.stop - end_cut,
        )
        cut = freqai_own.buffer_timerange(copy.deepcopy(tr_train))  # FreqAI's own cut
        assert cut.startdt == tr_train.startdt + pd.Timedelta(hours=buffer)
        assert cut.stopdt == tr_train.stopdt - pd.Timedelta(hours=buffer)
        frame_dates = dates[(dates >= tr_train.startdt) & (dates < tr_train.stopdt)]
        fitted = frame_dates[model.fit_rows(frame_dates, pd.Timedelta(hours=1))]
        assert fitted.equals(dates[fold.train]), fold.index
        assert fitted[0] >= cut.startdt and fitted[-1] < cut.stopdt
        assert fitted[-1] < tr_train.stopdt - pd.Timedelta(hours=max(buffer, 24) - 1)


def test_the_dissimilarity_index_blocks_predictions_and_survives_the_checkpoint(frame, tmp_path):
    """With DI_threshold the model fits the index on its training rows (the study's
    fit_window), gives do_predict = 0 and FreqAI's DI_values where DI >= threshold, and reloads
    it from the weights-only checkpoint."""
    config = _config(tmp_path)
    config["freqai"]["feature_parameters"].update(DI_threshold=0.5, weight_factor=0.65)
    model = LstmOptunaRegressor(config=config)
    model.signal_params = SIGNAL
    dk = FreqaiDataKitchen(model.config, live=True, pair=PAIR)
    train = frame.iloc[:TRAIN_ROWS].copy()
    dk.find_features(train)
    dk.find_labels(train)
    result = model.train(train, PAIR, dk)
    names = list(result.feature_names)
    expected = DissimilarityIndex.fit(
        _features(train, result.feature_names), train[LABEL].to_numpy(), 0.5
    )
    np.testing.assert_array_equal(result.dissimilarity.train, expected.train)
    model.model = result
    test = frame.iloc[TRAIN_ROWS : TRAIN_ROWS + TEST_ROWS]
    values, do_predict = model.predict(test, dk)
    index = expected.values(test[names].to_numpy(np.float64))
    np.testing.assert_array_equal(dk.DI_values, np.nan_to_num(index, nan=0.0))
    finite = np.isfinite(values[LABEL].to_numpy())
    assert np.array_equal(do_predict == 1, finite & (index < 0.5))
    assert (finite & (do_predict == 0)).any()  # some candles blocked
    loaded = TrainedLSTM.load(result.save(tmp_path / "di_model.zip"))
    model.model = loaded
    np.testing.assert_array_equal(model.predict(test, dk)[1], do_predict)


def test_an_ensemble_trains_saves_and_reloads_its_members(frame, tmp_path):
    """ensemble_size K: K members with the seed rule's members 0..K-1, the study's mean
    prediction, all K reloaded from the weights-only checkpoint."""
    config = _config(tmp_path)
    config[SETTINGS_KEY]["ensemble_size"] = 2
    model = LstmOptunaRegressor(config=config)
    model.signal_params = SIGNAL
    dk = FreqaiDataKitchen(model.config, live=True, pair=PAIR)
    train = frame.iloc[:TRAIN_ROWS].copy()
    dk.find_features(train)
    dk.find_labels(train)
    result = model.train(train, PAIR, dk)
    last = frame["date"].iloc[TRAIN_ROWS - 1]
    assert dk.data[SETTINGS_KEY]["seeds"] == [model_seed(SEED, PAIR, last, k) for k in (0, 1)]
    assert len(result.modules) == 2
    first, second = (m.state_dict() for m in result.modules)
    assert any(not torch.equal(first[k], second[k]) for k in first)  # two different seeds
    rows = slice(TRAIN_ROWS, TRAIN_ROWS + TEST_ROWS)
    x = _features(frame, result.feature_names)
    expected = predict_ensemble(result.modules, result.scaler, x, rows, WINDOW)
    members = [predict(m, result.scaler, x, rows, WINDOW) for m in result.modules]
    np.testing.assert_array_equal(expected, ensemble_mean(members))
    model.model = result
    np.testing.assert_array_equal(
        model.predict(frame.iloc[rows], dk)[0][LABEL].to_numpy(), expected
    )
    path = result.save(tmp_path / "ens_model.zip")
    torch.load(path, weights_only=True)
    loaded = TrainedLSTM.load(path)
    assert len(loaded.modules) == 2
    for ours, theirs in zip(result.modules, loaded.modules, strict=True):
        for key, value in ours.state_dict().items():
            assert torch.equal(theirs.state_dict()[key], value), key
    model.model = loaded
    np.testing.assert_array_equal(
        model.predict(frame.iloc[rows], dk)[0][LABEL].to_numpy(), expected
    )
