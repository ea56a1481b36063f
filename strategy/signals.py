"""Entry/exit signals from a score (the model's prediction of T, or T itself) and two thresholds.

The seed trades both directions (``direction``, :data:`DIRECTIONS`):

* long: enter when the predicted target is above ``threshold_buy``, exit when it falls below
  ``threshold_sell``;
* short: enter when it is below ``threshold_sell``, exit when it rises above ``threshold_buy``;
* both: the two sets of rules at once (the seed's futures strategy).

Here the pair of thresholds is parametrised so that they can never conflict:
``threshold_sell = threshold_buy - exit_gap`` with ``exit_gap >= 0``. Hence ``score > buy`` and
``score < sell <= buy`` exclude each other: a candle never carries an entry and an exit of the same
side at once, and never asks to enter both ways (a long entry is a short exit and a short entry a
long exit, which is the seed's reversal: freqtrade closes the open trade and opens the other side
on the same candle). NaN scores and NaN thresholds give no signal at all.

Three threshold modes, all fitted on the training window only (no look-ahead):

``quantile``
    ``threshold_buy`` is the ``entry`` quantile of the model's in-sample predictions on its
    training window, ``threshold_sell`` the ``entry - exit_gap`` quantile (clipped at 0). Scale-free
    and pair-free: T's scale differs between pairs by orders of magnitude (it carries ``1/ATR``).
``zscore``
    ``threshold_buy = mean + entry * std`` of the training labels, ``threshold_sell =
    threshold_buy - exit_gap * std``. The same statistic FreqAI exposes to a strategy as
    ``&-target_mean`` / ``&-target_std``, so exported parameters mean the same in freqtrade.
``absolute``
    ``threshold_buy = entry``, ``threshold_sell = entry - exit_gap`` in units of T, as the seed
    does; only meaningful for one pair at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from base.checks import check_choice, check_number

THRESHOLD_MODES = ("quantile", "zscore", "absolute")
DIRECTIONS = ("long", "short", "both")
"""Which sides a strategy trades; ``short`` and ``both`` need futures (freqtrade shorts only
there)."""


@dataclass(frozen=True)
class SignalParams:
    """Threshold parameters of one trial.

    Attributes:
        mode: one of :data:`THRESHOLD_MODES`.
        entry: quantile in (0, 1) for ``quantile``; number of standard deviations for ``zscore``;
            a value of T for ``absolute``.
        exit_gap: distance between the entry and the exit threshold, >= 0, in the mode's unit
            (quantile points, standard deviations, T units).
        direction: one of :data:`DIRECTIONS` (``long``: the project's spot strategy).
    """

    mode: str = "quantile"
    entry: float = 0.9
    exit_gap: float = 0.3
    direction: str = "long"

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, THRESHOLD_MODES)
        check_choice("direction", self.direction, DIRECTIONS)
        quantile = (0.0, 1.0) if self.mode == "quantile" else ()  # a quantile lies in (0, 1)
        entry = check_number("entry", self.entry, *quantile, low_open=True, high_open=True)
        object.__setattr__(self, "entry", entry)
        object.__setattr__(self, "exit_gap", check_number("exit_gap", self.exit_gap, 0.0))

    @property
    def shorts(self) -> bool:
        """True when the direction includes shorts (``short`` or ``both``)."""
        return self.direction != "long"

    @property
    def longs(self) -> bool:
        """True when the direction includes longs (``long`` or ``both``)."""
        return self.direction != "short"

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "entry": self.entry,
            "exit_gap": self.exit_gap,
            "direction": self.direction,
        }


@dataclass(frozen=True, eq=False)
class Signals:
    """One pair's four signal arrays (bool, one value per candle), as the backtest and freqtrade
    take them. A direction without shorts (``long``) has all-False short arrays, and vice versa."""

    enter_long: np.ndarray
    exit_long: np.ndarray
    enter_short: np.ndarray
    exit_short: np.ndarray

    NAMES = ("enter_long", "exit_long", "enter_short", "exit_short")

    @classmethod
    def flat(cls, n: int) -> Signals:
        """``n`` candles without any signal (four separate arrays)."""
        return cls(*(np.zeros(n, dtype=bool) for _ in cls.NAMES))

    def put(self, sl: slice, other: Signals) -> None:
        """Write ``other`` (a window's signals) into ``sl`` of these arrays."""
        for name in self.NAMES:
            getattr(self, name)[sl] = getattr(other, name)

    def window(self, sl: slice) -> Signals:
        """These signals on ``sl`` (views)."""
        return Signals(*(getattr(self, name)[sl] for name in self.NAMES))


@dataclass(frozen=True)
class Thresholds:
    """Resolved thresholds in units of the score. ``sell <= buy`` always."""

    buy: float
    sell: float


def label_stats(labels: np.ndarray) -> tuple[float, float]:
    """Mean and population std of the finite training labels: the statistic ``zscore`` mode uses.

    Returns:
        ``(mean, std)``; ``(nan, nan)`` with fewer than two finite labels (no thresholds then).
    """
    y = np.asarray(labels, dtype=np.float64)
    y = y[np.isfinite(y)]
    if y.size < 2:
        return math.nan, math.nan
    return float(y.mean()), float(y.std())


def resolve_thresholds(
    params: SignalParams, *, train_predictions: np.ndarray, train_labels: np.ndarray
) -> Thresholds:
    """Turn :class:`SignalParams` into absolute thresholds using training-window data only.

    Args:
        params: the trial's threshold parameters.
        train_predictions: the score on the training window (model's in-sample predictions, or T
            itself for the no-model baseline); NaN ignored. Used by ``quantile``.
        train_labels: the training labels; NaN ignored. Used by ``zscore``.

    Returns:
        :class:`Thresholds`; NaN thresholds (no finite reference values) produce no signals.
    """
    if params.mode == "absolute":
        return Thresholds(params.entry, params.entry - params.exit_gap)
    if params.mode == "quantile":
        ref = np.asarray(train_predictions, dtype=np.float64)
        ref = ref[np.isfinite(ref)]
        if ref.size == 0:
            return Thresholds(math.nan, math.nan)
        buy, sell = np.quantile(ref, [params.entry, max(params.entry - params.exit_gap, 0.0)])
        return Thresholds(float(buy), float(min(sell, buy)))
    mean, std = label_stats(train_labels)
    buy = mean + params.entry * std
    return Thresholds(buy, buy - params.exit_gap * std)


def long_signals(score: np.ndarray, thresholds: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """Entry/exit booleans: ``enter = score > buy``, ``exit = score < sell``; NaN gives neither.

    Args:
        score: (n,) the score on the candles to trade.
        thresholds: resolved thresholds; ``buy`` and ``sell`` may also be (n,) arrays, one
            threshold per candle (compared element-wise).

    Returns:
        ``(enter_long, exit_long)``, two (n,) bool arrays that are never both True.
    """
    s = np.asarray(score, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        enter = s > thresholds.buy
        exit_ = s < thresholds.sell
    return enter, exit_


def gated_signals(
    score: np.ndarray, thresholds: Thresholds, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`long_signals` with entries only where ``allowed`` (exits everywhere).

    The dissimilarity index (FreqAI's ``DI_threshold``) blocks entries on candles unlike the
    training data; an open trade still exits on its signal, as in the seed's conditions.

    Args:
        score, thresholds: as for :func:`long_signals`.
        allowed: (n,) bool, or None for every candle.
    """
    enter, exit_ = long_signals(score, thresholds)
    if allowed is not None:
        enter = enter & np.asarray(allowed, dtype=bool)
    return enter, exit_


def direction_signals(
    score: np.ndarray,
    thresholds: Thresholds,
    direction: str = "long",
    allowed: np.ndarray | None = None,
) -> Signals:
    """The seed's rules for ``direction`` (see the module doc), entries only where ``allowed``.

    * long: ``enter_long = score > buy``, ``exit_long = score < sell``;
    * short: ``enter_short = score < sell``, ``exit_short = score > buy``;
    * both: all four.

    Because ``sell <= buy``, ``enter_long`` and ``enter_short`` are never both True, nor an entry
    and the exit of its own side. The dissimilarity index (``allowed`` False) blocks entries of
    both sides; exits apply everywhere. NaN scores or thresholds give no signal.

    Args:
        score: (n,) the score on the candles to trade.
        thresholds: resolved thresholds (floats or (n,) arrays, one per candle).
        direction: one of :data:`DIRECTIONS`.
        allowed: (n,) bool, or None for every candle.

    Returns:
        :class:`Signals`; the sides ``direction`` does not trade are all False.
    """
    check_choice("direction", direction, DIRECTIONS)
    above, below = long_signals(score, thresholds)
    if allowed is not None:
        allowed = np.asarray(allowed, dtype=bool)
    none = np.zeros(above.shape, dtype=bool)

    def entry(values: np.ndarray) -> np.ndarray:
        return values.copy() if allowed is None else values & allowed

    longs, shorts = direction != "short", direction != "long"
    return Signals(  # four separate arrays (none aliases another)
        enter_long=entry(above) if longs else none.copy(),
        exit_long=below.copy() if longs else none.copy(),
        enter_short=entry(below) if shorts else none.copy(),
        exit_short=above.copy() if shorts else none.copy(),
    )
