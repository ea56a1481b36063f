"""One trial, end to end: T(w) -> labels -> LSTM per pair per fold -> signals -> backtest.

:func:`evaluate` scores one :class:`~optimize.search.space.TrialParams` on the study's
trial-independent inputs (:class:`~optimize.study.inputs.StudyData`) and calls
``report(fold_index, value_so_far)`` after every fold so a pruner can stop it early. Each fold
trains every pair's ensemble on its train window (:func:`fit_fold`) and turns the predictions on
its test window into signals; the spans are scored by :mod:`optimize.study.scoring`.

FreqAI's data pipeline (:mod:`strategy.pipeline`: the run config's ``features`` keys with the
trial's own) is applied per fold by :func:`strategy.pipeline.fit_window`, the fit the FreqAI model
runs too: recency weights and training noise in the fit, the correlated pairs' features in the
matrix, the dissimilarity index fitted on the fold's training rows and applied to its test window
(a blocked candle loses its entry, ``di_blocked`` records the share per pair and fold).

The trial's value is the objective of one backtest over the whole out-of-sample span (the test
windows back to back, each traded by the models of its own fold — what FreqAI's sliding-window
backtest does). Each fold is also backtested on its own for the per-fold metrics and the pruner.
Baselines over the same folds: buy-and-hold (equal weight over the pairs; in futures mode held long
at the trial's leverage, with funding) and "no model" (the same thresholds and direction applied to
T itself). Every backtest uses the trial's settings (:meth:`TrialParams.settings`: its leverage,
shorts when its direction shorts) and, in futures mode, the pairs' funding and market records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from base.errors import InputError
from lstm.seeds import member_range, model_seed
from optimize.search.objectives.base import Objective
from optimize.search.space import TrialParams
from optimize.study.inputs import PairData, StudyData
from optimize.study.scoring import (
    PairFold,
    SpanScore,
    daily_equity,
    score_span,
    span_backtest,
    trade_records,
)
from optimize.walkforward import Fold
from strategy.pipeline import DataPipeline, fit_window
from strategy.signals import Signals, direction_signals, resolve_thresholds
from strategy.target import make_labels  # make_labels: re-exported for callers

logger = logging.getLogger(__name__)


def check_purge(purge_candles: int, params: TrialParams, remedy: str) -> None:
    """Refuse a purge gap shorter than the trial's ``window_size + label_horizon`` (look-ahead
    risk).

    Raises:
        InputError: naming ``walkforward.purge_candles``, the gap needed and ``remedy``.
    """
    needed = params.lstm.window_size + params.label_horizon
    if purge_candles < needed:
        raise InputError(
            f"walkforward.purge_candles={purge_candles} is shorter than "
            f"window_size + label_horizon = {needed}; {remedy}."
        )


def fit_pair_fold(
    pd_: PairData,
    params: TrialParams,
    fold: Fold,
    *,
    seeds: tuple[int, ...],
    accelerator: str,
    min_train_samples: int,
    pipeline: DataPipeline | None = None,
    features: tuple[np.ndarray, tuple[str, ...]] | None = None,
) -> tuple[PairFold, Any]:
    """Train the pair's ensemble (one member per seed) on the fold's train window and produce
    test-window signals of the trial's direction from the members' mean prediction (thresholds
    from the mean's in-sample predictions; entries only where the dissimilarity index allows, with
    ``DI_threshold``), and the no-model baseline's: the same rules on T itself.

    Args:
        pipeline: the trial's FreqAI pipeline (default: off).
        features: the pair's feature matrix and names for the trial (with its correlated pairs'
            columns, :meth:`StudyData.features_of`); None: the pair's own features.
    """
    matrix, names = (pd_.features, pd_.feature_names) if features is None else features
    pipeline = DataPipeline() if pipeline is None else pipeline
    target = pd_.basis.score(params.weights)
    labels = make_labels(target, params.label_horizon)
    test_len = fold.test.stop - fold.test.start
    direction = params.signal.direction
    base_thr = resolve_thresholds(
        params.signal, train_predictions=target[fold.train], train_labels=labels[fold.train]
    )
    no_model = direction_signals(target[fold.test], base_thr, direction)
    usable = int(np.isfinite(labels[fold.train]).sum())
    if usable < min_train_samples:
        info = {
            "skipped": f"only {usable} finite labels in the train window (< {min_train_samples})"
        }
        return PairFold(Signals.flat(test_len), no_model, info), None
    # The model sees its train window and what follows it, nothing before (as in FreqAI, whose
    # training frame starts there): no training window reaches back before the fold's train start.
    base = fold.train.start
    fit = fit_window(
        matrix[base:],
        labels[base:],
        train=slice(0, fold.train.stop - base),
        predict=slice(fold.test.start - base, fold.test.stop - base),
        params=params.lstm,
        seeds=seeds,
        pipeline=pipeline,
        accelerator=accelerator,
        feature_names=names,
        label_horizon=params.label_horizon,
    )
    result = fit.ensemble
    thr = resolve_thresholds(
        params.signal, train_predictions=result.train_predictions, train_labels=labels[fold.train]
    )
    allowed = None if fit.dissimilarity is None else fit.allowed(matrix[fold.test])
    model = direction_signals(result.predictions, thr, direction, allowed)
    info = {
        "threshold_buy": thr.buy,
        "threshold_sell": thr.sell,
        "seeds": list(result.seeds),
        "best_epoch": [m.best_epoch for m in result.members],
        "epochs_run": [len(m.history) for m in result.members],
        "val_loss": [
            float(min((h["val_loss"] for h in m.history), default=float("nan")))
            for m in result.members
        ],
        "device": result.device,
    }
    if allowed is not None:  # the candles with a prediction, and those of them the index blocked
        predicted = np.isfinite(result.predictions)
        n, blocked = int(predicted.sum()), int((predicted & ~allowed).sum())
        info.update(
            di_blocked=blocked / n if n else float("nan"),
            di_blocked_candles=blocked,
            di_predicted_candles=n,
        )
    return PairFold(model, no_model, info), result


def fold_seeds(data: StudyData, pair: str, fold: Fold, seed_set: int = 0) -> tuple[int, ...]:
    """The seeds of ``pair``'s ensemble members in ``fold`` for seed set ``seed_set``.

    :func:`lstm.seeds.model_seed` of the study's seed, the pair, the open time of the fold's last
    training candle and the member index (set ``m`` of ``K`` members: members ``m*K .. m*K+K-1``):
    nothing about the trial or the worker, so identical parameters score identically anywhere.
    """
    train_end = data.dates[fold.train.stop - 1]
    members = member_range(data.config.training.ensemble_size, seed_set)
    return tuple(model_seed(data.config.study.seed, pair, train_end, k) for k in members)


def fit_fold(
    data: StudyData, params: TrialParams, fold: Fold, *, seed_set: int = 0
) -> dict[str, PairFold]:
    """Every pair's signals in ``fold``'s test window (see :func:`fit_pair_fold`,
    :func:`fold_seeds`), with the trial's FreqAI pipeline (:meth:`TrialParams.pipeline` of the
    run config's)."""
    training = data.config.training
    pipeline = params.pipeline(data.config.features.pipeline)
    return {
        pair: fit_pair_fold(
            pd_,
            params,
            fold,
            seeds=fold_seeds(data, pair, fold, seed_set),
            accelerator=training.accelerator,
            min_train_samples=training.min_train_samples,
            pipeline=pipeline,
            features=data.features_of(pair, pipeline.include_corr_pairlist),
        )[0]
        for pair, pd_ in data.pairs.items()
    }


def fold_blocked(pairs: dict[str, dict[str, Any]]) -> float | None:
    """The share of a fold's predicted candles (all pairs) the dissimilarity index blocked, from
    the pairs' info; None when the index is off."""
    counted = [i for i in pairs.values() if "di_predicted_candles" in i]
    if not counted:
        return None
    n = sum(i["di_predicted_candles"] for i in counted)
    return sum(i["di_blocked_candles"] for i in counted) / n if n else float("nan")


@dataclass
class TrialOutcome:
    """What :func:`evaluate` returns: the objective values and everything stored with the trial."""

    values: tuple[float, ...]
    folds: list[dict[str, Any]]
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
        seed_set: which seeds the models train with (:func:`fold_seeds`): 0 for the trial itself,
            1, 2, ... for the fresh seed sets of the robustness step.
        report: called as ``report(fold_index, value)`` after each fold, where ``value`` is the
            objective of one backtest over the test windows of folds ``0..fold_index`` back to
            back, on the scale of the trial's final value (may raise to prune).

    Raises:
        ValueError: the purge gap is shorter than window_size + label_horizon (look-ahead risk).
    """
    check_purge(data.plan.settings.purge_candles, params, "raise purge_candles in the run config")
    settings = params.settings(data.config.backtest)
    folds = data.plan.folds
    start = folds[0].test.start
    signals = {
        p: PairFold.flat(len(data.dates)) for p in data.pairs
    }  # each fold fills its test window
    oos = slice(start, folds[-1].test.stop)
    whole: SpanScore | None = None
    fold_rows: list[dict[str, Any]] = []
    for fold in folds:
        fits = fit_fold(data, params, fold, seed_set=seed_set)
        for pair, pf in fits.items():
            signals[pair].put(fold.test, pf)
        span = score_span(
            data, objective, fold.test, fold.test_start, fold.test_end, fits, settings
        )
        if fold is folds[-1]:  # the span so far is the whole out-of-sample span: one backtest
            whole = score_span(
                data,
                objective,
                oos,
                folds[0].test_start,
                folds[-1].test_end,
                {p: s.window(oos) for p, s in signals.items()},
                settings,
            )
            value_so_far = whole.values[0]
        else:
            so_far = slice(start, fold.test.stop)
            value_so_far = objective(
                span_backtest(
                    data, so_far, {p: s.model.window(so_far) for p, s in signals.items()}, settings
                ).metrics
            )[0]
        blocked = fold_blocked({p: pf.info for p, pf in fits.items()})
        fold_rows.append(
            {
                "fold": fold.index,
                "train_start": str(fold.train_start),
                "train_end": str(fold.train_end),
                "test_start": str(fold.test_start),
                "test_end": str(fold.test_end),
                "score": span.values[0],
                "value_so_far": value_so_far,
                "metrics": span.metrics,
                "no_model": span.baselines["no_model"],
                "buy_and_hold": span.buy_and_hold,
                "pairs": {p: pf.info for p, pf in fits.items()},
                **({} if blocked is None else {"di_blocked": blocked}),
            }
        )
        logger.debug(
            "fold %d score %.4f, value so far %.4f, trades %d",
            fold.index,
            span.values[0],
            value_so_far,
            span.model.metrics["total_trades"],
        )
        if report is not None:
            report(fold.index, value_so_far)
    assert whole is not None  # a plan has at least one fold
    return TrialOutcome(
        values=whole.values,
        folds=fold_rows,
        oos_metrics=whole.metrics,
        baselines=whole.baselines,
        daily_returns=whole.daily_returns,
        daily_equity=daily_equity(data, oos, whole),
        trades=trade_records(whole.model),
    )
