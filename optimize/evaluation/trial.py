"""One trial, end to end: T(w) -> labels -> LSTM per pair per fold -> signals -> backtest.

:func:`evaluate` scores one :class:`~optimize.search.space.TrialParams` on the study's
trial-independent inputs (:class:`~optimize.evaluation.inputs.StudyData`): it walks the plan's
folds (:class:`~optimize.evaluation.walk.FoldWalk`) and calls ``report(fold_index,
value_so_far)`` after every fold so a pruner can stop it early.

The trial's value is the objective of one backtest over the whole out-of-sample span (the test
windows back to back, each traded by the models of its own fold — what FreqAI's sliding-window
backtest does). Each fold is also backtested on its own for the per-fold metrics
(:class:`~optimize.evaluation.records.FoldRecord`). Baselines over the same folds: buy-and-hold
(equal weight over the pairs; in futures mode held long at the trial's leverage, with funding)
and "no model" (the same thresholds and direction applied to T itself).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from optimize.evaluation.inputs import StudyData
from optimize.evaluation.records import FoldRecord
from optimize.evaluation.scoring import SpanScore, daily_equity, trade_records
from optimize.evaluation.walk import FoldWalk
from optimize.search.objectives.base import Objective
from optimize.search.space import TrialParams

logger = logging.getLogger(__name__)

__all__ = ["TrialOutcome", "evaluate"]


@dataclass
class TrialOutcome:
    """What :func:`evaluate` returns: the objective values and everything stored with the trial.

    Attributes:
        values: the objective over the whole out-of-sample span.
        folds: each fold's :class:`FoldRecord`.
        oos_metrics: the model's metrics over the span.
        baselines: ``buy_and_hold`` and ``no_model`` over the span.
        daily_returns: the model's daily returns over the span.
        daily_equity: end-of-day equity of the model and both baselines.
        trades: the model's trades over the span.
    """

    values: tuple[float, ...]
    folds: list[FoldRecord]
    oos_metrics: dict[str, float]
    baselines: dict[str, Any]
    daily_returns: list[float]
    daily_equity: dict[str, Any] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)


def evaluate(
    data: StudyData,
    params: TrialParams,
    objective: Objective,
    *,
    seed_set: int = 0,
    report: Callable[[int, float], None] | None = None,
) -> TrialOutcome:
    """Score one trial's parameters with the walk-forward backtest.

    Args:
        data: the study's precomputed inputs.
        params: the trial's parameters.
        objective: scores metrics dicts (the out-of-sample span so far for ``report``, the whole
            span for the value).
        seed_set: which seeds the models train with
            (:func:`~optimize.evaluation.walk.fold_seeds`): 0 for the trial itself, 1, 2, ... for
            the fresh seed sets of the robustness step.
        report: called as ``report(fold_index, value)`` after each fold, where ``value`` is the
            objective of one backtest over the test windows of folds ``0..fold_index`` back to
            back, on the scale of the trial's final value (may raise to prune).

    Raises:
        InputError: the purge gap is shorter than window_size + label_horizon (look-ahead risk).
    """
    folds = data.plan.folds
    walk = FoldWalk(
        data,
        params,
        folds,
        span=slice(folds[0].test.start, folds[-1].test.stop),
        start=folds[0].test_start,
        end=folds[-1].test_end,
        seed_set=seed_set,
    )
    whole: SpanScore | None = None
    records: list[FoldRecord] = []
    for step in walk:
        fold = step.fold
        window = walk.score_window(objective, step)
        if fold is folds[-1]:  # the span so far is the whole out-of-sample span: one backtest
            whole = walk.score(objective)
            value_so_far = whole.values[0]
        else:
            value_so_far = walk.value_so_far(objective, fold)
        records.append(
            FoldRecord(
                step.record,
                score=window.values[0],
                value_so_far=value_so_far,
                metrics=window.metrics,
                no_model=window.baselines["no_model"],
                buy_and_hold=window.buy_and_hold,
            )
        )
        logger.debug(
            "fold %d score %.4f, value so far %.4f, trades %d",
            fold.index,
            window.values[0],
            value_so_far,
            window.model.metrics["total_trades"],
        )
        if report is not None:
            report(fold.index, value_so_far)
    assert whole is not None  # a plan has at least one fold
    return TrialOutcome(
        values=whole.values,
        folds=records,
        oos_metrics=whole.metrics,
        baselines=whole.baselines,
        daily_returns=whole.daily_returns,
        daily_equity=daily_equity(data, walk.span, whole),
        trades=trade_records(whole.model),
    )
