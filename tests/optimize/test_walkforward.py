"""Walk-forward folds: holdout never touched, purge respected, anchored boundaries, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from optimize.data import load_candles
from optimize.walkforward import WalkForwardPlan, WalkForwardSettings, make_folds

TF = "1h"
HOUR = pd.Timedelta(hours=1)


@pytest.fixture(scope="module")
def btc_dates(datadir) -> pd.Series:
    """Real BTC/USDT 1h candle dates, 2021-01-01 .. 2023-01-01 (gaps filled)."""
    candles = load_candles("BTC/USDT", TF, datadir=datadir, start="2021-01-01", end="2023-01-01")
    return candles["date"]


SETTINGS = [
    WalkForwardSettings(train_days=120, test_days=30, purge_candles=48, holdout_days=60),
    WalkForwardSettings(train_days=90, test_days=20, step_days=45, purge_candles=0, holdout_days=0),
    WalkForwardSettings(train_days=200, test_days=14, purge_candles=300, holdout_days=31),
    WalkForwardSettings(train_days=60.5, test_days=7.25, purge_candles=5, holdout_days=10),
]


def _check_plan(
    plan: WalkForwardPlan, dates: pd.DatetimeIndex, settings: WalkForwardSettings
) -> None:
    assert len(plan.folds) >= 1
    holdout_start = plan.holdout.start if plan.holdout else plan.span_end
    for k, fold in enumerate(plan.folds):
        assert fold.index == k
        # windows are where the dates say they are
        assert dates[fold.train.start] >= fold.train_start
        assert dates[fold.train.stop - 1] < fold.train_end
        assert dates[fold.test.start] >= fold.test_start
        assert dates[fold.test.stop - 1] < fold.test_end
        # purge gap, in candles and in time
        assert fold.test.start - fold.train.stop >= settings.purge_candles
        assert fold.test_start - fold.train_end >= settings.purge_candles * HOUR
        # no fold reaches into the holdout
        assert fold.test_end <= holdout_start
        assert fold.test.stop <= (plan.holdout.slice.start if plan.holdout else len(dates))
        # anchored at the start of the span
        assert fold.train_start == plan.span_start + k * pd.Timedelta(days=settings.step)
        assert fold.train_end - fold.train_start == pd.Timedelta(days=settings.train_days)
        assert fold.test_end - fold.test_start == pd.Timedelta(days=settings.test_days)
    # test windows never overlap each other
    for a, b in zip(plan.folds, plan.folds[1:], strict=False):
        assert a.test.stop <= b.test.start
        assert a.test_end <= b.test_start
    # the folds stop only when the next one would not fit before the holdout
    nxt = plan.span_start + len(plan.folds) * pd.Timedelta(days=settings.step)
    next_test_end = (
        nxt
        + pd.Timedelta(days=settings.train_days)
        + settings.purge_candles * HOUR
        + pd.Timedelta(days=settings.test_days)
    )
    assert next_test_end > holdout_start


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: f"{s.train_days}-{s.test_days}")
def test_plan_invariants_on_real_dates(btc_dates, settings):
    plan = make_folds(btc_dates, settings, TF)
    dates = pd.DatetimeIndex(btc_dates)
    _check_plan(plan, dates, settings)
    if settings.holdout_days:
        hold = plan.holdout
        assert hold.end == dates[-1] + HOUR
        assert hold.end - hold.start == pd.Timedelta(days=settings.holdout_days)
        assert dates[hold.slice.start] == hold.start  # gapless grid: starts on a candle
        assert hold.slice.stop == len(dates)
    else:
        assert plan.holdout is None


def test_holdout_is_the_final_span_and_never_in_a_fold(btc_dates):
    settings = WalkForwardSettings(train_days=100, test_days=25, purge_candles=24, holdout_days=45)
    plan = make_folds(btc_dates, settings, TF)
    hold = set(range(plan.holdout.slice.start, plan.holdout.slice.stop))
    for fold in plan.folds:
        assert hold.isdisjoint(range(fold.train.start, fold.train.stop))
        assert hold.isdisjoint(range(fold.test.start, fold.test.stop))


def test_fixed_end_makes_appended_data_irrelevant(btc_dates, datadir):
    settings = WalkForwardSettings(
        train_days=120, test_days=30, purge_candles=48, holdout_days=60, end="2023-01-01"
    )
    plan = make_folds(btc_dates, settings, TF)
    longer = load_candles("BTC/USDT", TF, datadir=datadir, start="2021-01-01", end="2023-09-01")
    plan_longer = make_folds(longer["date"], settings, TF)
    assert plan_longer.folds == plan.folds
    assert plan_longer.holdout == plan.holdout


def test_open_end_keeps_existing_folds_when_data_is_appended(btc_dates, datadir):
    settings = WalkForwardSettings(train_days=120, test_days=30, purge_candles=48, holdout_days=60)
    plan = make_folds(btc_dates, settings, TF)
    longer = load_candles("BTC/USDT", TF, datadir=datadir, start="2021-01-01", end="2023-09-01")
    plan_longer = make_folds(longer["date"], settings, TF)
    assert len(plan_longer.folds) > len(plan.folds)
    assert plan_longer.folds[: len(plan.folds)] == plan.folds
    assert plan_longer.holdout.start > plan.holdout.start


def test_start_anchors_folds(btc_dates):
    settings = WalkForwardSettings(train_days=30, test_days=10, start="2021-03-05 07:00")
    plan = make_folds(btc_dates, settings, TF)
    assert plan.folds[0].train_start == pd.Timestamp("2021-03-05 07:00", tz="UTC")
    assert pd.DatetimeIndex(btc_dates)[plan.folds[0].train.start] == plan.folds[0].train_start


def test_purge_is_enforced_in_candles_across_a_data_hole():
    dates = pd.date_range("2024-01-01", periods=24 * 40, freq="1h", tz="UTC")
    holed = dates.delete(range(24 * 10 + 1, 24 * 10 + 6))  # 5 candles missing right after train
    settings = WalkForwardSettings(train_days=10, test_days=5, purge_candles=4)
    plan = make_folds(holed, settings, TF)
    first = plan.folds[0]
    assert first.test.start - first.train.stop >= 4
    assert holed[first.test.start] >= first.test_start


def test_to_freqai_maps_window_sizes(btc_dates):
    plan = make_folds(btc_dates, WalkForwardSettings(train_days=120, test_days=30), TF)
    assert plan.to_freqai() == {
        "train_period_days": 120,
        "backtest_period_days": 30,
        "train_days": 120,
        "purge_candles": 0,
    }
    # FreqAI's window (whole days) covers the study's train window and the purge gap
    purged = make_folds(
        btc_dates, WalkForwardSettings(train_days=120, test_days=30, purge_candles=30), TF
    )
    assert purged.to_freqai()["train_period_days"] == 122  # 120 days + 30 h, rounded up
    assert purged.walkforward_span == (purged.folds[0].test_start, purged.folds[-1].test_end)


def test_too_little_data_says_what_is_there_and_what_is_needed():
    dates = pd.date_range("2024-01-01", periods=24 * 50, freq="1h", tz="UTC")
    settings = WalkForwardSettings(train_days=40, test_days=10, purge_candles=24, holdout_days=5)
    with pytest.raises(ValueError, match=r"has 50\.00 days .*need 56\.00 days"):
        make_folds(dates, settings, TF)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train_days": 0, "test_days": 5}, "train_days"),
        ({"train_days": 10, "test_days": -1}, "test_days"),
        ({"train_days": 10, "test_days": 5, "step_days": 3}, "overlap"),
        ({"train_days": 10, "test_days": 5, "purge_candles": -1}, "purge_candles"),
        ({"train_days": 10, "test_days": 5, "purge_candles": 1.5}, "purge_candles"),
        ({"train_days": 10, "test_days": 5, "holdout_days": -2}, "holdout_days"),
        ({"train_days": True, "test_days": 5}, "train_days"),
        ({"train_days": 10, "test_days": 5, "start": "2024-02-01", "end": "2024-01-01"}, "before"),
        ({"train_days": 10, "test_days": 5, "start": "not a date"}, "start"),
    ],
)
def test_invalid_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WalkForwardSettings(**kwargs)


def test_bad_dates_are_rejected():
    dates = pd.date_range("2024-01-01", periods=100, freq="1h", tz="UTC")
    settings = WalkForwardSettings(train_days=1, test_days=1)
    with pytest.raises(ValueError, match="strictly increasing"):
        make_folds(dates[::-1], settings, TF)
    with pytest.raises(ValueError, match="before the first candle"):
        make_folds(dates, WalkForwardSettings(train_days=1, test_days=1, start="2023-12-31"), TF)
    with pytest.raises(ValueError, match="after the last candle"):
        make_folds(dates, WalkForwardSettings(train_days=1, test_days=1, end="2024-02-01"), TF)
    with pytest.raises(TypeError, match="DatetimeIndex"):
        make_folds(list(dates), settings, TF)


def test_a_buffer_that_leaves_no_training_candle_is_named():
    dates = pd.date_range("2025-01-01", periods=24 * 60, freq="1h", tz="UTC")
    settings = WalkForwardSettings(train_days=2, test_days=5, purge_candles=6, holdout_days=10)
    make_folds(dates, settings, "1h", buffer_candles=12)  # 3 days - 2 x 12 h: some left
    with pytest.raises(
        ValueError, match=r"fold 0 keeps no training candle .*buffer_train_data_candles=40"
    ):
        make_folds(dates, settings, "1h", buffer_candles=40)
