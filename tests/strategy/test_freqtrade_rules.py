"""Rules shared by the freqtrade strategy, the FreqAI model and the export (pure functions)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from freqtrade.strategy import DecimalParameter

from strategy.freqtrade.rules import (
    EXTRA_BUY,
    EXTRA_ENTRY,
    EXTRA_EXIT_GAP,
    EXTRA_MODE,
    EXTRA_RETURNS,
    LABEL_MEAN,
    LABEL_STD,
    LEVERAGE_DECIMALS,
    THRESHOLD_DECIMALS,
    WEIGHT_DECIMALS,
    candle_thresholds,
    di_blocked,
    extra_returns,
    label_horizon,
    mode_code,
    side_signals,
    strategy_params,
    trade_signals,
)
from strategy.signals import (
    SignalParams,
    Thresholds,
    direction_signals,
    gated_signals,
    label_stats,
    long_signals,
    resolve_thresholds,
)
from strategy.target import WEIGHT_NAMES, TargetBasis, make_labels

WEIGHTS = (
    0.52475643,
    0.4319450,
    0.29122914,
    0.61185289,
    0.13949386,
    0.29214465,
    0.36636184,
    0.45606998,
    0.78517596,
)


@pytest.fixture(scope="module")
def target(datadir) -> np.ndarray:
    """T on real BTC/USDT 1h candles (about 4 months, warm-up included)."""
    candles = pd.read_feather(datadir / "binance" / "BTC_USDT-1h.feather").iloc[-3000:]
    return TargetBasis.from_candles(candles.reset_index(drop=True)).score(WEIGHTS)


def _windows(n: int, sizes: list[int]) -> np.ndarray:
    """Window index per candle for consecutive windows of the given sizes (sum = n)."""
    assert sum(sizes) == n
    return np.repeat(np.arange(len(sizes)), sizes)


def test_strategy_params_are_rounded_as_freqtrade_loads_them():
    signal = SignalParams("quantile", 0.7123456789123, 0.2000000049)
    params = strategy_params(WEIGHTS, signal)
    assert set(params) == {"buy", "sell"}
    assert set(params["buy"]) == {*WEIGHT_NAMES, "threshold_mode", "entry_threshold"}
    for name, value in params["buy"].items():
        if name == "threshold_mode":
            assert value == "quantile"
            continue
        decimals = WEIGHT_DECIMALS if name in WEIGHT_NAMES else THRESHOLD_DECIMALS
        param = DecimalParameter(-10.0, 10.0, default=0.0, decimals=decimals)
        param.value = value  # what freqtrade does with a value from the parameter file
        assert param.value == value
    raw = dict(zip(WEIGHT_NAMES, WEIGHTS, strict=True))
    assert all(abs(params["buy"][k] - raw[k]) <= 0.5 * 10**-WEIGHT_DECIMALS for k in WEIGHT_NAMES)
    assert abs(params["sell"]["exit_gap"] - signal.exit_gap) <= 0.5 * 10**-THRESHOLD_DECIMALS


def test_strategy_params_rejects_wrong_weight_count():
    with pytest.raises(ValueError, match="9 values"):
        strategy_params(WEIGHTS[:8], SignalParams())


def test_label_stats_give_the_zscore_thresholds_of_the_study(target):
    labels = make_labels(target, 3)
    train = labels[:1500]
    mean, std = label_stats(train)
    for entry, gap in ((1.0, 0.5), (-0.3, 0.0), (2.5, 1.7)):
        signal = SignalParams("zscore", entry, gap)
        expected = resolve_thresholds(signal, train_predictions=train, train_labels=train)
        columns = {LABEL_MEAN: np.full(10, mean), LABEL_STD: np.full(10, std)}
        buy, sell = candle_thresholds(signal, columns, np.ones(10))
        np.testing.assert_allclose(buy, expected.buy, rtol=1e-12, atol=0)
        np.testing.assert_allclose(sell, expected.sell, rtol=1e-12, atol=0)


def test_label_stats_need_two_finite_labels():
    assert all(math.isnan(v) for v in label_stats(np.array([np.nan, 1.0, np.inf])))
    assert label_stats(np.array([1.0, np.nan, 3.0])) == (2.0, 1.0)


def test_quantile_thresholds_come_from_the_model_columns(target):
    signal = SignalParams("quantile", 0.8, 0.3)
    thr = resolve_thresholds(signal, train_predictions=target[:1000], train_labels=target[:1000])
    extras = extra_returns(signal, thr)
    assert set(extras) == set(EXTRA_RETURNS)
    n = 50
    columns = {name: np.full(n, value) for name, value in extras.items()}
    buy, sell = candle_thresholds(signal, columns, np.ones(n))
    assert np.all(buy == thr.buy) and np.all(sell == thr.sell)


@pytest.mark.parametrize(
    ("field", "changed"),
    [
        ("entry", SignalParams("quantile", 0.85, 0.3)),
        ("exit_gap", SignalParams("quantile", 0.8, 0.25)),
    ],
)
def test_stale_quantile_thresholds_are_refused(target, field, changed):
    trained = SignalParams("quantile", 0.8, 0.3)
    thr = resolve_thresholds(trained, train_predictions=target[:1000], train_labels=target[:1000])
    columns = {name: np.full(20, value) for name, value in extra_returns(trained, thr).items()}
    with pytest.raises(ValueError, match="computed at training time"):
        candle_thresholds(changed, columns, np.ones(20))
    # rows FreqAI did not predict (do_predict 0, e.g. filled with 0 before the backtest) are ignored
    stale_rows = {
        **columns,
        EXTRA_ENTRY: np.zeros(20),
        EXTRA_EXIT_GAP: np.zeros(20),
        EXTRA_MODE: np.zeros(20),
    }
    do_predict = np.r_[np.zeros(5), np.ones(15)]
    for name in (EXTRA_ENTRY, EXTRA_EXIT_GAP, EXTRA_MODE):
        stale_rows[name][5:] = columns[name][5:]
    buy, _ = candle_thresholds(trained, stale_rows, do_predict)
    assert np.all(buy[5:] == thr.buy)


def test_quantile_mode_needs_the_model_columns():
    with pytest.raises(KeyError, match=EXTRA_BUY):
        candle_thresholds(SignalParams("quantile", 0.8, 0.3), {}, np.ones(3))


def test_absolute_thresholds_are_the_parameters():
    buy, sell = candle_thresholds(SignalParams("absolute", 0.02, 0.005), {}, np.ones(4))
    assert np.all(buy == 0.02) and np.allclose(sell, 0.015)


def test_mode_codes_are_distinct_and_checked():
    codes = {mode_code(m) for m in ("quantile", "zscore", "absolute")}
    assert len(codes) == 3
    with pytest.raises(ValueError, match="mode"):
        mode_code("median")


def test_extra_returns_are_nan_without_thresholds():
    assert all(math.isnan(v) for v in extra_returns(None, None).values())


def test_trade_signals_equal_long_signals_per_window(target):
    pred = target[-900:]
    n = pred.size
    window = _windows(n, [300, 250, 350])
    signal = SignalParams("quantile", 0.75, 0.35)
    buys, sells = np.empty(n), np.empty(n)
    expected_enter, expected_exit = np.zeros(n, bool), np.zeros(n, bool)
    for k in range(3):
        rows = window == k
        ref = target[-2000 + 300 * k : -1500 + 300 * k]  # a different reference per window
        thr = resolve_thresholds(signal, train_predictions=ref, train_labels=ref)
        buys[rows], sells[rows] = thr.buy, thr.sell
        expected_enter[rows], expected_exit[rows] = long_signals(pred[rows], thr)
    do_predict = np.ones(n, dtype=int)
    enter, exit_ = trade_signals(pred, do_predict, buys, sells)
    assert np.array_equal(enter, expected_enter) and np.array_equal(exit_, expected_exit)
    assert enter.any() and exit_.any()
    assert not (enter & exit_).any()


def test_trade_signals_need_do_predict_and_finite_thresholds():
    pred = np.array([5.0, 5.0, -5.0, -5.0, 5.0])
    do_predict = np.array([1, 0, 1, 0, 1])
    buy = np.array([1.0, 1.0, 1.0, 1.0, np.nan])
    sell = np.array([0.0, 0.0, 0.0, 0.0, np.nan])
    enter, exit_ = trade_signals(pred, do_predict, buy, sell)
    assert enter.tolist() == [True, False, False, False, False]
    assert exit_.tolist() == [False, False, True, False, False]


def test_a_candle_the_dissimilarity_index_blocks_keeps_its_exit_not_its_entry():
    """The study's rule (strategy.signals.gated_signals): DI stops entries, never exits."""
    pred = np.array([5.0, 5.0, -5.0, -5.0, np.nan])
    do_predict = np.array([1, 0, 1, 0, 0])  # rows 1, 3: blocked by the index; row 4: no prediction
    di_values = np.array([0.2, 1.5, 0.3, 2.0, 0.0])
    freqai = {"feature_parameters": {"DI_threshold": 1.0}}
    blocked = di_blocked(freqai, {"DI_values": di_values}, 5)
    assert blocked.tolist() == [False, True, False, True, False]
    buy, sell = np.full(5, 1.0), np.full(5, 0.0)
    enter, exit_ = trade_signals(pred, do_predict, buy, sell, blocked)
    assert enter.tolist() == [True, False, False, False, False]
    assert exit_.tolist() == [False, False, True, True, False]
    allowed = do_predict == 1
    study_enter, study_exit = gated_signals(pred, Thresholds(1.0, 0.0), allowed)
    assert np.array_equal(enter, study_enter) and np.array_equal(exit_, study_exit)
    assert di_blocked({"feature_parameters": {"DI_threshold": 0}}, {}, 5) is None  # DI off


def test_label_horizon_reads_label_period_candles():
    assert label_horizon({}) == 0
    assert label_horizon({"feature_parameters": {"label_period_candles": 3}}) == 3
    for bad in (-1, 2.0, True, "3"):
        with pytest.raises(
            ValueError,
            match=r"label_period_candles must be an integer >= 0, but got "
            rf"label_period_candles={bad!r}",
        ):
            label_horizon({"feature_parameters": {"label_period_candles": bad}})


def test_side_signals_are_the_study_s_direction_signals_per_candle():
    """Both sides with per-candle thresholds, do_predict and the dissimilarity index: what the
    study's rule (strategy.signals.direction_signals) gives, entries only where predicted."""
    pred = np.array([5.0, -5.0, 5.0, -5.0, 0.5, -5.0, 5.0, np.nan])
    do_predict = np.array([1, 1, 0, 0, 1, 1, 1, 0])  # rows 2, 3: blocked by the index
    blocked = np.array([False, False, True, True, False, False, False, False])
    buy = np.array([1.0, 1.0, 1.0, 1.0, 1.0, np.nan, 1.0, 1.0])
    sell = np.array([0.0, 0.0, 0.0, 0.0, 0.0, np.nan, 0.0, 0.0])
    both = side_signals(pred, do_predict, buy, sell, blocked, "both")
    assert both.enter_long.tolist() == [True, False, False, False, False, False, True, False]
    assert both.enter_short.tolist() == [False, True, False, False, False, False, False, False]
    # blocked candles keep their exits; row 5 has no finite thresholds: nothing
    assert both.exit_long.tolist() == [False, True, False, True, False, False, False, False]
    assert both.exit_short.tolist() == [True, False, True, False, False, False, True, False]
    assert not (both.enter_long & both.enter_short).any()
    study = direction_signals(pred, Thresholds(buy, sell), "both", do_predict == 1)
    finite = np.isfinite(buy)
    for name in ("enter_long", "enter_short"):
        np.testing.assert_array_equal(getattr(both, name), getattr(study, name) & finite)
    long_only = side_signals(pred, do_predict, buy, sell, blocked, "long")
    assert not (long_only.enter_short.any() or long_only.exit_short.any())
    assert np.array_equal(
        (long_only.enter_long, long_only.exit_long),
        trade_signals(pred, do_predict, buy, sell, blocked),
    )
    short_only = side_signals(pred, do_predict, buy, sell, blocked, "short")
    assert not (short_only.enter_long.any() or short_only.exit_long.any())
    np.testing.assert_array_equal(short_only.enter_short, both.enter_short)
    np.testing.assert_array_equal(short_only.exit_short, both.exit_short)


def test_futures_parameters_carry_direction_and_leverage():
    signal = SignalParams("quantile", 0.8, 0.6, "both")
    params = strategy_params(WEIGHTS, signal, leverage=2.456)
    assert params["futures"] == {"trade_direction": "both", "trade_leverage": 2.46}
    assert round(2.456, LEVERAGE_DECIMALS) == 2.46
    # spot: the parameters they always were (no futures space), and shorts are refused
    assert set(strategy_params(WEIGHTS, SignalParams())) == {"buy", "sell"}
    with pytest.raises(ValueError, match=r"direction='short' shorts, which needs futures mode"):
        strategy_params(WEIGHTS, SignalParams(direction="short"))
