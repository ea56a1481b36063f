"""Walk-forward folds with a purge gap and a final holdout, anchored at the start of the span.

Layout of one plan over the span ``[start, end)`` (sizes in days, the purge in candles)::

    start                                                        holdout_start         end
      |-- train 0 --|purge|-- test 0 --|                               |-- holdout --|
      |<- step ->|-- train 1 --|purge|-- test 1 --|                    |             |
      |<--- 2 step --->|-- train 2 --|purge|-- test 2 --|   (unused)   |             |

* Fold ``k`` trains on ``[start + k*step, start + k*step + train)``, skips ``purge_candles``
  candles, then tests on the next ``test_days``. Only folds whose test window ends at or before
  the holdout start are kept; whatever is left between the last test window and the holdout is
  not used (less than one step).
* The holdout is the final ``holdout_days`` of the span; no fold ever touches it. It is traded by
  more windows of the same schedule (:func:`holdout_windows`): back-to-back test windows of
  ``test_days`` from the holdout start (the last one ends with the span), each trained on the
  ``train_days`` that end ``purge_candles`` before it -- what FreqAI's backtest over the holdout
  does (it retrains every ``backtest_period_days``).
* Anchoring: every boundary is ``start + k * step + constant``. With ``end`` fixed, appending
  candles after ``end`` changes nothing at all; with ``end=None`` (span ends with the data) new
  candles move the holdout forward and may add folds, but every existing fold keeps its dates.
* FreqAI's backtest over ``[first test start, last test end)`` runs exactly these windows: it
  trains on the ``train_period_days`` right before each ``backtest_period_days`` window, with no
  gap; the project's FreqAI model drops the last ``purge_candles`` rows of that window and keeps
  the ``train_days`` before them (:meth:`WalkForwardPlan.to_freqai`).

Windows are positional slices into the ``dates`` given to :func:`make_folds`; the purge is
enforced on positions as well as on time, so a gap in the data can never shrink it.

FreqAI's ``buffer_train_data_candles`` (``buffer_candles`` here) cuts ``b`` candles off both ends
of FreqAI's training window (``train_period_days`` before the test window): a fold then trains on
the part of its train window inside ``[test_start - train_period_days + b, test_start - b)``
(:func:`buffered`), which is what the project's FreqAI model fits from FreqAI's buffered window.
The test windows and the holdout do not move.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from base.checks import check_int, check_number
from base.errors import DataError, InputError
from optimize.data import to_utc
from strategy.timeframes import timeframe_to_timedelta

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WalkForwardSettings:
    """Sizes of the walk-forward windows.

    Attributes:
        train_days: length of each training window, in days (FreqAI ``train_period_days``).
        test_days: length of each out-of-sample test window, in days (``backtest_period_days``).
        step_days: distance between consecutive fold starts, in days; None means ``test_days``
            (back-to-back test windows). Must be >= ``test_days`` so test windows never overlap.
        purge_candles: candles skipped between the end of training and the start of testing
            (at least the model's window size plus the label horizon).
        holdout_days: final part of the span never used by any fold, in days (0: no holdout).
        start: first instant of the span (UTC); None: the first candle. Folds are anchored here.
        end: end of the span, exclusive (UTC); None: one candle after the last candle.
    """

    train_days: float
    test_days: float
    step_days: float | None = None
    purge_candles: int = 0
    holdout_days: float = 0
    start: str | pd.Timestamp | None = None
    end: str | pd.Timestamp | None = None

    def __post_init__(self) -> None:
        check_number("train_days", self.train_days, 0.0, low_open=True)
        check_number("test_days", self.test_days, 0.0, low_open=True)
        if self.step_days is not None and (
            check_number("step_days", self.step_days, 0.0, low_open=True) < self.test_days
        ):
            raise InputError(
                "step_days must be >= test_days so test windows do not overlap, but got "
                f"step_days={self.step_days!r} with test_days={self.test_days!r}."
            )
        purge = check_int("purge_candles", self.purge_candles, 0)
        check_number("holdout_days", self.holdout_days, 0.0)
        start = None if self.start is None else to_utc(self.start, "start")
        end = None if self.end is None else to_utc(self.end, "end")
        if start is not None and end is not None and start >= end:
            raise InputError(f"start must be before end, but got start={start} and end={end}.")
        object.__setattr__(self, "purge_candles", purge)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def step(self) -> float:
        """Effective step in days (``step_days`` or ``test_days``)."""
        return self.test_days if self.step_days is None else self.step_days


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: positional slices into the dates and their boundaries (UTC).

    ``*_end`` dates are exclusive: the window holds candles with ``start <= date < end``.
    """

    index: int
    train: slice
    test: slice
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp


@dataclass(frozen=True)
class Holdout:
    """The final, never-optimised part of the span (``start <= date < end``)."""

    slice: slice
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class WalkForwardPlan:
    """Folds and holdout of one span.

    Attributes:
        folds: the folds in time order.
        holdout: the holdout window, or None when ``holdout_days == 0``.
        span_start, span_end: the span (end exclusive).
        settings: the settings the plan was made from.
        timeframe: candle timeframe string.
    """

    folds: tuple[Fold, ...]
    holdout: Holdout | None
    span_start: pd.Timestamp
    span_end: pd.Timestamp
    settings: WalkForwardSettings
    timeframe: str
    buffer_candles: int = 0

    def __len__(self) -> int:
        return len(self.folds)

    def to_freqai(self) -> dict[str, float]:
        """FreqAI's window sizes for this schedule.

        ``train_period_days`` (a whole number, FreqAI's rule) covers ``train_days`` plus the purge
        gap; the project's FreqAI model keeps only the study's ``train_days`` that end
        ``purge_candles`` before each backtest window (``train_days`` and ``purge_candles`` are
        returned too, for the model). ``backtest_period_days`` is ``test_days``. FreqAI always
        steps by the backtest period: a ``step_days`` larger than ``test_days`` has no FreqAI
        counterpart.
        """
        return {
            "train_period_days": freqai_train_period_days(self.settings, self.timeframe),
            "backtest_period_days": self.settings.test_days,
            "train_days": self.settings.train_days,
            "purge_candles": self.settings.purge_candles,
        }

    @property
    def walkforward_span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(first test start, last test end)``: the out-of-sample span the trials are scored
        on."""
        return self.folds[0].test_start, self.folds[-1].test_end


def freqai_train_period_days(settings: WalkForwardSettings, timeframe: str) -> int:
    """FreqAI's ``train_period_days`` (whole days) for the study's train window and purge gap:
    ``ceil(train_days + purge_candles * timeframe)`` in days (1e-9 days of float slack)."""
    purge = timeframe_to_timedelta(timeframe) * settings.purge_candles / pd.Timedelta(days=1)
    return math.ceil(settings.train_days + purge - 1e-9)


def buffered(
    index: pd.DatetimeIndex,
    lo: int,
    hi: int,
    test_start: pd.Timestamp,
    settings: WalkForwardSettings,
    timeframe: str,
    buffer_candles: int,
) -> tuple[int, int, pd.Timestamp, pd.Timestamp]:
    """A train window ``[lo, hi)`` cut to FreqAI's buffered training window.

    FreqAI trains on ``[test_start - train_period_days, test_start)`` less ``buffer_candles``
    candles at each end (its ``buffer_timerange``); the rows fitted are the train window's rows
    inside that.

    Returns:
        ``(lo, hi, first date, end date)`` of the rows kept (``hi <= lo`` when none is left).
    """
    tf = timeframe_to_timedelta(timeframe)
    window_start = test_start - pd.Timedelta(days=freqai_train_period_days(settings, timeframe))
    first = window_start + buffer_candles * tf
    end = test_start - buffer_candles * tf
    lo = max(lo, int(index.searchsorted(first)))
    hi = min(hi, int(index.searchsorted(end)))
    return lo, hi, first, end


def _buffer_message(window: str, buffer: int, first: pd.Timestamp, end: pd.Timestamp) -> str:
    return (
        f"{window} keeps no training candle inside FreqAI's buffered window {first} .. {end} "
        f"(features.buffer_train_data_candles={buffer} cut off both ends of train_period_days); "
        "expected a smaller buffer."
    )


def _dates_index(dates: pd.DatetimeIndex | pd.Series) -> pd.DatetimeIndex:
    if isinstance(dates, pd.Series):
        index = pd.DatetimeIndex(dates.to_numpy())
    elif isinstance(dates, pd.DatetimeIndex):
        index = dates
    else:
        raise TypeError(
            "dates must be a pandas DatetimeIndex or Series of dates, but got "
            f"{type(dates).__name__}."
        )
    if index.tz is None:
        index = index.tz_localize("UTC")
    else:
        index = index.tz_convert("UTC")
    if len(index) == 0:
        raise DataError("dates is empty: walk-forward folds need candles.")
    if index.hasnans:
        raise DataError(
            f"dates must not contain NaT, but got NaT at position {int(np.argmax(index.isna()))}."
        )
    steps = np.diff(index.asi8)
    if np.any(steps <= 0):
        bad = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise DataError(
            "dates must be strictly increasing, but got "
            f"dates[{bad - 1}]={index[bad - 1]} followed by dates[{bad}]={index[bad]}."
        )
    return index


def make_folds(
    dates: pd.DatetimeIndex | pd.Series,
    settings: WalkForwardSettings,
    timeframe: str,
    *,
    buffer_candles: int = 0,
) -> WalkForwardPlan:
    """Cut the span into anchored walk-forward folds and a final holdout.

    Args:
        dates: candle open times, strictly increasing (naive dates are taken as UTC).
        settings: window sizes and span.
        timeframe: candle timeframe (``"1h"``...), used for the span end and the purge.
        buffer_candles: FreqAI's ``buffer_train_data_candles`` (see :func:`buffered`; 0: none).

    Returns:
        The :class:`WalkForwardPlan`.

    Raises:
        ValueError: unsorted dates, a span outside the data, or too little data for one fold
            (the message says how many days the span has and how many one fold plus the holdout
            needs).
    """
    index = _dates_index(dates)
    tf = timeframe_to_timedelta(timeframe)
    first, after_last = index[0], index[-1] + tf
    span_start = settings.start if settings.start is not None else first
    span_end = settings.end if settings.end is not None else after_last
    if span_start < first:
        raise DataError(
            f"start={span_start} is before the first candle {first}; the first training window "
            "would be short. Use a later start or None."
        )
    if span_end > after_last:
        raise DataError(
            f"end={span_end} is after the last candle ({index[-1]}, timeframe {timeframe}); "
            "the holdout would reach past the data. Use an earlier end or None."
        )
    if span_start >= span_end:
        raise DataError(f"the span is empty: start={span_start} is not before end={span_end}.")

    train = pd.Timedelta(days=settings.train_days)
    test = pd.Timedelta(days=settings.test_days)
    step = pd.Timedelta(days=settings.step)
    purge = tf * settings.purge_candles
    holdout_start = span_end - pd.Timedelta(days=settings.holdout_days)
    needed = train + purge + test + pd.Timedelta(days=settings.holdout_days)
    if span_start + needed > span_end:
        have = span_end - span_start
        n_candles = int(index.searchsorted(span_end) - index.searchsorted(span_start))
        raise DataError(
            "too little data for one walk-forward fold: the span "
            f"{span_start} .. {span_end} has {have / pd.Timedelta(days=1):.2f} days "
            f"({n_candles} candles of {timeframe}), but train_days={settings.train_days} + "
            f"purge_candles={settings.purge_candles} ({purge}) + test_days={settings.test_days} + "
            f"holdout_days={settings.holdout_days} need {needed / pd.Timedelta(days=1):.2f} days."
        )

    folds: list[Fold] = []
    k = 0
    while True:
        train_start = span_start + k * step
        train_end = train_start + train
        test_start = train_end + purge
        test_end = test_start + test
        if test_end > holdout_start:
            break
        lo = int(index.searchsorted(train_start))
        hi = int(index.searchsorted(train_end))
        test_lo = max(int(index.searchsorted(test_start)), hi + settings.purge_candles)
        test_hi = int(index.searchsorted(test_end))
        fit_start, fit_end = train_start, train_end
        if buffer_candles:
            lo, hi, first, end = buffered(
                index, lo, hi, test_start, settings, timeframe, buffer_candles
            )
            fit_start, fit_end = max(train_start, first), min(train_end, end)
            if hi <= lo:
                raise DataError(_buffer_message(f"fold {k}", buffer_candles, first, end))
        if hi <= lo or test_hi <= test_lo:
            raise DataError(
                f"fold {k} has no candles in its {'train' if hi <= lo else 'test'} window "
                f"({train_start} .. {test_end}): the data has a hole there."
            )
        folds.append(
            Fold(
                k, slice(lo, hi), slice(test_lo, test_hi), fit_start, fit_end, test_start, test_end
            )
        )
        k += 1

    holdout = None
    if settings.holdout_days > 0:
        holdout = Holdout(
            slice(int(index.searchsorted(holdout_start)), int(index.searchsorted(span_end))),
            holdout_start,
            span_end,
        )
    plan = WalkForwardPlan(
        tuple(folds),
        holdout,
        span_start,
        span_end,
        settings,
        timeframe,
        check_int("buffer_train_data_candles", buffer_candles, 0),
    )
    logger.debug("walk-forward plan: %d folds over %s .. %s", len(folds), span_start, span_end)
    return plan


def holdout_windows(plan: WalkForwardPlan, dates: pd.DatetimeIndex | pd.Series) -> tuple[Fold, ...]:
    """The holdout as windows of the walk-forward schedule (what FreqAI runs over the holdout).

    Window ``k`` tests on ``[holdout.start + k*test_days, + test_days)`` (the last one ends at the
    span end) and trains on the ``train_days`` ending ``purge_candles`` candles before its test
    start; the purge is enforced on positions too, as in :func:`make_folds`. Window indices
    continue after the last fold (``len(plan.folds) + k``).

    Args:
        plan: the study's walk-forward plan (made from ``dates``).
        dates: the candle dates the plan was made from.

    Raises:
        ValueError: the plan has no holdout, or a window holds no candles.
    """
    holdout = plan.holdout
    if holdout is None:
        raise DataError(
            "the study has no holdout: walkforward.holdout_days must be > 0, but got "
            f"holdout_days={plan.settings.holdout_days!r}."
        )
    index = _dates_index(dates)
    purge = plan.settings.purge_candles
    gap = timeframe_to_timedelta(plan.timeframe) * purge
    test = pd.Timedelta(days=plan.settings.test_days)
    train = pd.Timedelta(days=plan.settings.train_days)
    windows: list[Fold] = []
    test_start = holdout.start
    while test_start < holdout.end:
        test_end = min(test_start + test, holdout.end)
        train_end = test_start - gap
        train_start = train_end - train
        test_lo = int(index.searchsorted(test_start))
        test_hi = int(index.searchsorted(test_end))
        lo = int(index.searchsorted(max(train_start, plan.span_start)))
        hi = min(int(index.searchsorted(train_end)), test_lo - purge)
        if plan.buffer_candles:
            lo, hi, first, end = buffered(
                index, lo, hi, test_start, plan.settings, plan.timeframe, plan.buffer_candles
            )
            if hi <= lo:
                raise DataError(
                    _buffer_message(
                        f"holdout window {len(windows)}", plan.buffer_candles, first, end
                    )
                )
            train_start, train_end = max(train_start, first), min(train_end, end)
        if hi <= lo or test_hi <= test_lo:
            raise DataError(
                f"holdout window {len(windows)} has no candles in its "
                f"{'train' if hi <= lo else 'test'} window ({train_start} .. {test_end})."
            )
        windows.append(
            Fold(
                len(plan.folds) + len(windows),
                slice(lo, hi),
                slice(test_lo, test_hi),
                train_start,
                train_end,
                test_start,
                test_end,
            )
        )
        test_start = test_end
    return tuple(windows)
