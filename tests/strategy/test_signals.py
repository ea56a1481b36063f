"""Thresholds never conflict, are fitted on training data only, and signals follow them exactly;
with both directions a candle never asks to enter both ways and each side follows the seed's
rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategy.signals import (
    SignalParams,
    Signals,
    Thresholds,
    direction_signals,
    long_signals,
    resolve_thresholds,
)

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


# --- directions: the seed's rules for long, short and both -----------------------------------


def _random_case(
    rng: np.random.Generator, mode: str
) -> tuple[SignalParams, Thresholds, np.ndarray]:
    """Random threshold parameters of ``mode``, thresholds fitted on random training data, and
    random scores to trade (NaN among them)."""
    scale = rng.uniform(0.01, 100.0)
    train_pred = rng.normal(rng.normal(), scale, size=int(rng.integers(2, 400)))
    train_lab = rng.normal(rng.normal(), scale, size=train_pred.size)
    entry = float(rng.uniform(0.01, 0.99)) if mode == "quantile" else float(rng.normal(0.0, 2.0))
    gap = float(rng.choice([0.0, rng.uniform(0.0, 2.0)]))
    params = SignalParams(mode, entry, gap, "both")
    thr = resolve_thresholds(params, train_predictions=train_pred, train_labels=train_lab)
    score = rng.normal(rng.normal(), scale, size=300)
    score[rng.random(300) < 0.05] = np.nan
    # ties with the thresholds themselves: the comparisons are strict on both sides
    score[:3] = [thr.buy, thr.sell, (thr.buy + thr.sell) / 2]
    return params, thr, score


@pytest.mark.parametrize("mode", ["quantile", "zscore", "absolute"])
def test_both_never_enters_both_ways_and_follows_the_seed_s_rules(mode):
    """Property over 300 random draws per mode: with ``both`` no candle asks to enter long and
    short, nor to enter a side and exit it; each array is the seed's rule exactly."""
    rng = np.random.default_rng(["quantile", "zscore", "absolute"].index(mode))
    for _ in range(300):
        params, thr, score = _random_case(rng, mode)
        assert thr.sell <= thr.buy
        s = direction_signals(score, thr, params.direction)
        assert not np.any(s.enter_long & s.enter_short)
        assert not np.any(s.enter_long & s.exit_long)
        assert not np.any(s.enter_short & s.exit_short)
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(s.enter_long, score > thr.buy)  # long above buy
            np.testing.assert_array_equal(s.enter_short, score < thr.sell)  # short below sell
            np.testing.assert_array_equal(s.exit_long, score < thr.sell)  # long exits below sell
            np.testing.assert_array_equal(s.exit_short, score > thr.buy)  # short exits above buy
        nan = np.isnan(score)
        assert not (s.enter_long | s.enter_short | s.exit_long | s.exit_short)[nan].any()


def test_each_direction_trades_only_its_sides():
    score = RNG.normal(size=500)
    thr = Thresholds(0.4, -0.3)
    long_ = direction_signals(score, thr, "long")
    short = direction_signals(score, thr, "short")
    both = direction_signals(score, thr, "both")
    enter, exit_ = long_signals(score, thr)
    # long is the spot strategy, unchanged
    np.testing.assert_array_equal(long_.enter_long, enter)
    np.testing.assert_array_equal(long_.exit_long, exit_)
    assert not (long_.enter_short.any() or long_.exit_short.any())
    # short: enter below sell, exit above buy
    np.testing.assert_array_equal(short.enter_short, score < -0.3)
    np.testing.assert_array_equal(short.exit_short, score > 0.4)
    assert not (short.enter_long.any() or short.exit_long.any())
    # both: the union of the two
    for name in Signals.NAMES:
        union = getattr(long_, name) | getattr(short, name)
        np.testing.assert_array_equal(getattr(both, name), union)
    assert both.enter_long.any() and both.enter_short.any()
    # a long entry is a short exit and a short entry a long exit (the seed's reversal)
    np.testing.assert_array_equal(both.enter_long, both.exit_short)
    np.testing.assert_array_equal(both.enter_short, both.exit_long)


def test_blocked_candles_lose_entries_of_both_sides_not_exits():
    score = RNG.normal(size=400)
    thr = Thresholds(0.5, -0.5)
    allowed = RNG.random(400) < 0.5
    free = direction_signals(score, thr, "both")
    gated = direction_signals(score, thr, "both", allowed)
    np.testing.assert_array_equal(gated.enter_long, free.enter_long & allowed)
    np.testing.assert_array_equal(gated.enter_short, free.enter_short & allowed)
    np.testing.assert_array_equal(gated.exit_long, free.exit_long)
    np.testing.assert_array_equal(gated.exit_short, free.exit_short)
    assert (free.enter_long & ~allowed).any() and (free.enter_short & ~allowed).any()


def test_per_candle_thresholds_with_both_directions():
    score = RNG.normal(size=200)
    buy = RNG.normal(size=200)
    sell = buy - RNG.uniform(0.0, 1.0, size=200)
    buy[:5], sell[:5] = np.nan, np.nan
    s = direction_signals(score, Thresholds(buy, sell), "both")
    assert not np.any(s.enter_long & s.enter_short)
    assert not (s.enter_long | s.enter_short | s.exit_long | s.exit_short)[:5].any()
    np.testing.assert_array_equal(s.enter_short[5:], score[5:] < sell[5:])


def test_signal_arrays_are_separate():
    """No returned array aliases another (callers write windows into them)."""
    s = direction_signals(RNG.normal(size=50), Thresholds(0.1, -0.1), "both")
    arrays = [getattr(s, n) for n in Signals.NAMES]
    assert all(not np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1 :])


def test_direction_is_validated_and_stored():
    with pytest.raises(ValueError, match=r"direction must be one of \('long', 'short', 'both'\)"):
        SignalParams(direction="sideways")
    with pytest.raises(ValueError, match="direction must be one of"):
        direction_signals(np.zeros(3), Thresholds(0.0, 0.0), "up")
    params = SignalParams("zscore", 1.0, 0.5, "both")
    assert params.to_dict()["direction"] == "both" and SignalParams(**params.to_dict()) == params
    assert (params.longs, params.shorts) == (True, True)
    assert (SignalParams().longs, SignalParams().shorts) == (True, False)
    assert SignalParams(direction="short").longs is False
