"""One walk over walk-forward windows: the models fitted window by window, their signals placed.

A walk (:class:`FoldWalk`) takes one parameter set over a sequence of windows (the trial's folds,
or the holdout's windows, :func:`optimize.walkforward.holdout_windows`) and a span that the
windows' test parts cover back to back. In every window each pair's ensemble trains on the
window's training rows (:func:`fit_fold`, one member per seed of :func:`fold_seeds`) and its
predictions on the test rows become the trial's signals and, with the same rules on T itself,
the no-model baseline's (:func:`fit_pair_fold`); the window is recorded
(:class:`~optimize.evaluation.records.WindowRecord`). The whole span is then backtested once
with every window's signals (:meth:`FoldWalk.score`), as FreqAI's sliding-window backtest trades
the test windows back to back with the models of their own windows. The trial
(:func:`optimize.evaluation.trial.evaluate`), the holdout (:mod:`optimize.evaluation.holdout`)
and the robustness step's fresh seed sets all walk this way.

FreqAI's data pipeline (:mod:`strategy.pipeline`: the run config's ``features`` keys with the
trial's own) is applied per window by :func:`strategy.pipeline.fit_window`, the fit the FreqAI
model runs too: recency weights and training noise in the fit, the correlated pairs' features in
the matrix, the dissimilarity index fitted on the window's training rows and applied to its test
rows (a blocked candle loses its entry, ``di_blocked`` records the share per pair and window).
Every backtest uses the trial's settings (:meth:`TrialParams.settings`: its leverage, shorts when
its direction shorts) and, in futures mode, the pairs' funding and market records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from base.errors import InputError
from lstm.fitspec import FitSpec
from lstm.seeds import member_range, model_seed
from optimize.evaluation.inputs import PairData, StudyData
from optimize.evaluation.records import WindowRecord
from optimize.evaluation.scoring import PairFold, SpanScore, score_span, span_backtest
from optimize.search.objectives.base import Objective
from optimize.search.space import TrialParams
from optimize.walkforward import Fold
from strategy.pipeline import DataPipeline, fit_window
from strategy.signals import Signals, direction_signals, resolve_thresholds
from strategy.target import make_labels

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
    spec = FitSpec(
        train=slice(0, fold.train.stop - base),
        predict=slice(fold.test.start - base, fold.test.stop - base),
        params=params.lstm,
        label_horizon=params.label_horizon,
        feature_names=names,
        accelerator=accelerator,
        pipeline=pipeline.fit,
    )
    fit = fit_window(matrix[base:], labels[base:], spec, seeds, DI_threshold=pipeline.DI_threshold)
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


@dataclass(frozen=True)
class WalkStep:
    """One window of a walk, fitted and its signals placed.

    Attributes:
        fold: the window.
        fits: every pair's signals in the window's test rows (:class:`PairFold`).
        record: the window's :class:`~optimize.evaluation.records.WindowRecord`.
    """

    fold: Fold
    fits: dict[str, PairFold]
    record: WindowRecord


class FoldWalk:
    """Walk ``windows`` with one parameter set; iterate to fit them one after another.

    Each step fits a window (:func:`fit_fold`) and writes its pairs' signals into the span's
    arrays; :meth:`value_so_far` and :meth:`score` backtest what has been placed.

    Args:
        data: the study's inputs.
        params: the trial's parameters.
        windows: the windows in time order; their test rows lie inside ``span``.
        span: the candles (rows of ``data``) the walk trades: its first window's test start to
            its last window's test end.
        start, end: the span's first candle and its exclusive end (buy-and-hold runs between).
        seed_set: which seeds the models train with (:func:`fold_seeds`; 0: the trial's own).

    Raises:
        InputError: the purge gap is shorter than ``window_size + label_horizon`` (look-ahead
            risk); ``remedy`` says what to do.
    """

    def __init__(
        self,
        data: StudyData,
        params: TrialParams,
        windows: Sequence[Fold],
        *,
        span: slice,
        start: Any,
        end: Any,
        seed_set: int = 0,
        remedy: str = "raise purge_candles in the run config",
    ) -> None:
        check_purge(data.plan.settings.purge_candles, params, remedy)
        self.data, self.params, self.windows = data, params, tuple(windows)
        self.span, self.start, self.end = span, start, end
        self.seed_set = seed_set
        self.settings = params.settings(data.config.backtest)
        self.signals = {p: PairFold.flat(span.stop - span.start) for p in data.pairs}

    def _local(self, rows: slice) -> slice:
        """``rows`` of the data as rows of the span's arrays."""
        return slice(rows.start - self.span.start, rows.stop - self.span.start)

    def __iter__(self) -> Iterator[WalkStep]:
        for fold in self.windows:
            fits = fit_fold(self.data, self.params, fold, seed_set=self.seed_set)
            local = self._local(fold.test)
            for pair, pf in fits.items():
                self.signals[pair].put(local, pf)
            infos = {pair: pf.info for pair, pf in fits.items()}
            yield WalkStep(fold, fits, WindowRecord.of(fold, infos))

    def score_window(self, objective: Objective, step: WalkStep) -> SpanScore:
        """``step``'s test window alone, backtested and scored next to the baselines."""
        fold = step.fold
        return score_span(
            self.data,
            objective,
            fold.test,
            fold.test_start,
            fold.test_end,
            step.fits,
            self.settings,
        )

    def value_so_far(self, objective: Objective, fold: Fold) -> float:
        """The objective of one backtest from the span's start to ``fold``'s test end, with the
        signals placed so far (what a pruner sees after ``fold``)."""
        rows = slice(self.span.start, fold.test.stop)
        local = self._local(rows)
        signals = {p: s.model.window(local) for p, s in self.signals.items()}
        return objective(span_backtest(self.data, rows, signals, self.settings).metrics)[0]

    def score(self, objective: Objective) -> SpanScore:
        """The whole span backtested once with every window's signals, next to the baselines."""
        return score_span(
            self.data, objective, self.span, self.start, self.end, self.signals, self.settings
        )
