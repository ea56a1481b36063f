"""Thresholds never conflict, are fitted on training data only, and signals follow them exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategy.signals import SignalParams, Thresholds, long_signals, resolve_thresholds

RNG = np.random.default_rng(3)
TRAIN_PRED = RNG.normal(size=500)
TRAIN_LAB = RNG.normal(loc=2.0, scale=3.0, size=500)


@pytest.mark.parametrize(
    "params",
    [
        SignalParams("quantile", 0.9, 0.3),
        SignalParams("quantile", 0.55, 0.9),
        SignalParams("zscore", 1.0, 0.5),
        SignalParams("zscore", -0.5, 0.0),
        SignalParams("absolute", 0.2, 0.1),
    ],
)
def test_entry_and_exit_never_both(params):
    thr = resolve_thresholds(params, train_predictions=TRAIN_PRED, train_labels=TRAIN_LAB)
    assert thr.sell <= thr.buy
    score = RNG.normal(size=2000)
    enter, exit_ = long_signals(score, thr)
    assert not np.any(enter & exit_)
    np.testing.assert_array_equal(enter, score > thr.buy)
    np.testing.assert_array_equal(exit_, score < thr.sell)


def test_per_candle_thresholds_are_compared_element_wise():
    score = RNG.normal(size=200)
    buy = RNG.normal(size=200)
    sell = buy - RNG.uniform(0.0, 1.0, size=200)
    buy[:3], sell[:3] = np.nan, np.nan
    enter, exit_ = long_signals(score, Thresholds(buy, sell))
    singles = [long_signals(score[i : i + 1], Thresholds(buy[i], sell[i])) for i in range(200)]
    np.testing.assert_array_equal(enter, [e[0] for e, _ in singles])
    np.testing.assert_array_equal(exit_, [x[0] for _, x in singles])
    assert enter.any() and exit_.any() and not (enter[:3] | exit_[:3]).any()


def test_quantile_thresholds_are_training_quantiles():
    thr = resolve_thresholds(
        SignalParams("quantile", 0.8, 0.3), train_predictions=TRAIN_PRED, train_labels=TRAIN_LAB
    )
    assert thr.buy == pytest.approx(np.quantile(TRAIN_PRED, 0.8))
    assert thr.sell == pytest.approx(np.quantile(TRAIN_PRED, 0.5))
    # a large gap clips at the minimum
    thr = resolve_thresholds(
        SignalParams("quantile", 0.6, 0.9), train_predictions=TRAIN_PRED, train_labels=TRAIN_LAB
    )
    assert thr.sell == pytest.approx(TRAIN_PRED.min())


def test_zscore_uses_label_mean_and_std():
    thr = resolve_thresholds(
        SignalParams("zscore", 1.5, 0.5), train_predictions=TRAIN_PRED, train_labels=TRAIN_LAB
    )
    mean, std = TRAIN_LAB.mean(), TRAIN_LAB.std()
    assert thr.buy == pytest.approx(mean + 1.5 * std)
    assert thr.sell == pytest.approx(mean + 1.0 * std)


def test_nan_reference_ignored_and_empty_gives_no_signals():
    pred = TRAIN_PRED.copy()
    pred[:100] = np.nan
    a = resolve_thresholds(
        SignalParams("quantile", 0.7, 0.2), train_predictions=pred, train_labels=TRAIN_LAB
    )
    assert a.buy == pytest.approx(np.quantile(TRAIN_PRED[100:], 0.7))
    empty = resolve_thresholds(
        SignalParams("quantile", 0.7, 0.2),
        train_predictions=np.full(5, np.nan),
        train_labels=TRAIN_LAB,
    )
    assert math.isnan(empty.buy)
    enter, exit_ = long_signals(np.array([1.0, -1.0, np.nan]), empty)
    assert not enter.any() and not exit_.any()
    enter, exit_ = long_signals(np.array([np.nan]), Thresholds(0.0, -1.0))
    assert not enter.any() and not exit_.any()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "median"}, "mode must be one of"),
        ({"entry": 1.0}, r"entry must be a finite number in \(0\.0, 1\.0\), but got entry=1\.0"),
        ({"exit_gap": -0.1}, "exit_gap must be a finite number >= 0.0, but got exit_gap=-0.1"),
        ({"entry": float("nan")}, "finite number"),
        ({"entry": "0.9"}, "finite number"),
    ],
)
def test_bad_params(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SignalParams(**kwargs)
