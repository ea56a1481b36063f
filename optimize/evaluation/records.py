"""What an evaluation records: each window of the walk, a trial's folds and the holdout.

One walk (:class:`optimize.evaluation.walk.FoldWalk`) serves the trial's folds and the holdout's
windows, and one record type describes each window: :class:`WindowRecord` (its dates, its
training rows, every pair's fit: thresholds, seeds, epochs, device, and with the dissimilarity
index on the share of predicted candles it blocked). A trial's fold adds its scores
(:class:`FoldRecord`); the holdout's record (:class:`HoldoutRecord`) holds its windows and the
scores of the whole holdout. The stored layouts (a trial's ``folds`` user attr, a holdout record)
are those the study wrote before these types existed: a trial's fold names its window ``fold``
and does not store the training rows, a holdout window names it ``window``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from base.errors import StudyError
from optimize.walkforward import Fold

__all__ = [
    "HOLDOUT_FORMAT",
    "FoldRecord",
    "HoldoutRecord",
    "WindowRecord",
    "fold_blocked",
]

HOLDOUT_FORMAT = 2
"""Version of :class:`HoldoutRecord`'s stored layout (``format``; 1: one model for the whole
holdout, no trades; 2: windows of the walk-forward schedule, trades)."""


def fold_blocked(pairs: Mapping[str, Mapping[str, Any]]) -> float | None:
    """The share of a window's predicted candles (all pairs) the dissimilarity index blocked, from
    the pairs' fit info; None when the index is off (NaN when no candle had a prediction)."""
    counted = [i for i in pairs.values() if "di_predicted_candles" in i]
    if not counted:
        return None
    n = sum(i["di_predicted_candles"] for i in counted)
    return sum(i["di_blocked_candles"] for i in counted) / n if n else float("nan")


@dataclass(frozen=True)
class WindowRecord:
    """One window of a walk: a fold of the trial or a window of the holdout.

    Attributes:
        index: the fold's number (holdout windows continue after the last fold).
        train_start, train_end, test_start, test_end: the window's dates (ISO, UTC; ends
            exclusive).
        train_candles: the training rows.
        pairs: each pair's fit info (thresholds, seeds, best epochs, epochs run, validation
            losses, device; with the dissimilarity index on its blocked and predicted candles;
            ``skipped`` with the reason when too few training labels).
        di_blocked: the share of the window's predicted candles (all pairs) the dissimilarity
            index blocked; None when it is off.
    """

    index: int
    train_start: str
    train_end: str
    train_candles: int
    test_start: str
    test_end: str
    pairs: dict[str, dict[str, Any]]
    di_blocked: float | None = None

    @classmethod
    def of(cls, fold: Fold, pairs: Mapping[str, Mapping[str, Any]]) -> WindowRecord:
        """The record of ``fold`` whose pairs' fits gave ``pairs`` (their info dicts)."""
        return cls(
            index=fold.index,
            train_start=str(fold.train_start),
            train_end=str(fold.train_end),
            train_candles=fold.train.stop - fold.train.start,
            test_start=str(fold.test_start),
            test_end=str(fold.test_end),
            pairs={p: dict(info) for p, info in pairs.items()},
            di_blocked=fold_blocked(pairs),
        )

    def to_dict(self) -> dict[str, Any]:
        """As a holdout record stores a window (key ``window``)."""
        out: dict[str, Any] = {
            "window": self.index,
            "train_start": self.train_start,
            "train_end": self.train_end,
            "train_candles": self.train_candles,
            "test_start": self.test_start,
            "test_end": self.test_end,
            "pairs": self.pairs,
        }
        if self.di_blocked is not None:
            out["di_blocked"] = self.di_blocked
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> WindowRecord:
        """Read a stored holdout window (:meth:`to_dict`)."""
        return cls(
            index=int(raw["window"]),
            train_start=str(raw["train_start"]),
            train_end=str(raw["train_end"]),
            train_candles=int(raw["train_candles"]),
            test_start=str(raw["test_start"]),
            test_end=str(raw["test_end"]),
            pairs=dict(raw["pairs"]),
            di_blocked=raw.get("di_blocked"),
        )


@dataclass(frozen=True)
class FoldRecord:
    """One fold of a trial: its window and its scores.

    Attributes:
        window: the fold's :class:`WindowRecord`.
        score: the objective of the fold's test window alone.
        value_so_far: the objective of one backtest over folds ``0..index`` back to back (what
            the pruner saw; the last fold's is the trial's value).
        metrics: the model's metrics on the fold's test window.
        no_model: the no-model baseline's metrics there.
        buy_and_hold: buy-and-hold over the fold's test window (and each pair's profit).
    """

    window: WindowRecord
    score: float
    value_so_far: float
    metrics: dict[str, float]
    no_model: dict[str, float]
    buy_and_hold: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """As a trial stores a fold (user attr ``folds``: key ``fold``, no training rows)."""
        w = self.window
        out: dict[str, Any] = {
            "fold": w.index,
            "train_start": w.train_start,
            "train_end": w.train_end,
            "test_start": w.test_start,
            "test_end": w.test_end,
            "score": self.score,
            "value_so_far": self.value_so_far,
            "metrics": self.metrics,
            "no_model": self.no_model,
            "buy_and_hold": self.buy_and_hold,
            "pairs": w.pairs,
        }
        if w.di_blocked is not None:
            out["di_blocked"] = w.di_blocked
        return out


@dataclass(frozen=True)
class HoldoutRecord:
    """One trial scored on the holdout (:func:`optimize.evaluation.holdout.score_holdout`).

    Attributes:
        trial: the trial's number.
        objective: the objective's name.
        values: the objective on the holdout.
        trial_values: the trial's walk-forward values.
        holdout: the holdout span: ``start``, ``end`` (ISO, UTC) and ``candles``.
        train: the first window's training span: ``start``, ``end`` and ``candles``.
        windows: each window's :class:`WindowRecord`.
        metrics: the model's metrics over the holdout (the keys of a fold's).
        baselines: ``buy_and_hold`` and ``no_model`` over the holdout.
        pairs: the last window's pair info.
        daily_equity: end-of-day equity of the model and both baselines
            (:func:`optimize.evaluation.scoring.daily_equity`).
        daily_returns: the model's daily returns.
        trades: the model's trades (:func:`optimize.evaluation.scoring.trade_records`; what
            ``verify`` compares with freqtrade's).
        warmup_start: the candle the holdout's indicators start from (ISO).
        study_seed, ensemble_size: the seeds' rule and the members per pair and window.
        duration_s: seconds the evaluation took.
        computed_at: when (ISO, UTC).
        version: the lstm-optuna version that computed it.
        format: :data:`HOLDOUT_FORMAT` of the writer.
    """

    trial: int
    objective: str
    values: list[float]
    trial_values: list[float]
    holdout: dict[str, Any]
    train: dict[str, Any]
    windows: list[WindowRecord]
    metrics: dict[str, float]
    baselines: dict[str, Any]
    pairs: dict[str, dict[str, Any]]
    daily_equity: dict[str, Any]
    daily_returns: list[float]
    trades: list[dict[str, Any]]
    warmup_start: str
    study_seed: int
    ensemble_size: int
    duration_s: float
    computed_at: str
    version: str
    format: int = HOLDOUT_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """The stored, JSON-able layout (``format`` first, windows as :meth:`WindowRecord.
        to_dict`)."""
        out: dict[str, Any] = {"format": self.format}
        for f in dataclasses.fields(self):
            if f.name != "format":
                out[f.name] = getattr(self, f.name)
        out["windows"] = [w.to_dict() for w in self.windows]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "holdout record") -> HoldoutRecord:
        """Read a stored record of this version's :data:`HOLDOUT_FORMAT`.

        Raises:
            StudyError: another format, or a field missing (``where`` names the record).
        """
        if raw.get("format") != HOLDOUT_FORMAT:
            raise StudyError(
                f"{where} has format {raw.get('format')!r}; this version reads format "
                f"{HOLDOUT_FORMAT}."
            )
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in raw]
        if missing:
            raise StudyError(f"{where} lacks field {missing[0]!r}.")
        values = {n: raw[n] for n in names}
        values["windows"] = [WindowRecord.from_dict(w) for w in raw["windows"]]
        return cls(**values)
