"""The holdout: one final, never-optimised score of one parameter set.

The walk-forward plan keeps the last ``holdout_days`` of the span away from every fold
(:mod:`optimize.walkforward`). :func:`score_holdout` trades the holdout with more windows of the
walk-forward schedule (:func:`optimize.walkforward.holdout_windows`): every ``test_days`` window
of the holdout is traded by models retrained on the ``train_days`` that end ``purge_candles``
before it, exactly as FreqAI's backtest of the export over the holdout retrains every
``backtest_period_days``; the signals are backtested once over the whole holdout, with the
study's own backtest settings, next to the same two baselines the trials carry: buy-and-hold and
"no model" (the trial's thresholds applied to T). It walks the windows as a trial walks its folds
(:class:`~optimize.evaluation.walk.FoldWalk`), so the numbers are comparable to the per-fold
ones, and returns a typed :class:`~optimize.evaluation.records.HoldoutRecord` that keeps the
trades (what ``python -m optimize verify`` compares with freqtrade's).

Seeds: the rule of every model (:func:`optimize.evaluation.walk.fold_seeds`, seed set 0): the
study's seed, the pair, each window's last training candle and the member index (the rule of the
folds and of the FreqAI model), so a rerun anywhere reproduces the record (CPU). Features and T
start at :func:`holdout_warmup_start`, the candle a FreqAI backtest of the holdout loads from.

Storing the record in a study, and evaluating a study's trial once, is
:mod:`optimize.study.holdout`.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pandas as pd

from optimize._version import __version__
from optimize.config import RunConfig
from optimize.data import load_candles
from optimize.evaluation.inputs import StudyData
from optimize.evaluation.records import HoldoutRecord
from optimize.evaluation.scoring import daily_equity, trade_records
from optimize.evaluation.walk import FoldWalk, check_purge
from optimize.search.space import TrialParams
from optimize.walkforward import Fold, WalkForwardPlan, holdout_windows, make_folds
from strategy.features import warmup_start

logger = logging.getLogger(__name__)

__all__ = ["first_pair_candles", "holdout_fold", "holdout_warmup_start", "score_holdout"]


def holdout_fold(plan: WalkForwardPlan, dates: pd.DatetimeIndex) -> Fold:
    """The first holdout window (see :func:`optimize.walkforward.holdout_windows`).

    Raises:
        DataError: the plan has no holdout, or the window holds no candles.
    """
    return holdout_windows(plan, dates)[0]


def first_pair_candles(config: RunConfig, *, from_span_start: bool = False) -> pd.DataFrame:
    """The first pair's base candles up to ``data.end``, from the file's first candle (the
    warm-up history included) or, with ``from_span_start``, from ``data.start``."""
    data = config.data
    return load_candles(
        data.pairs[0],
        data.timeframe,
        datadir=data.path,
        exchange=data.exchange,
        start=(data.start or None) if from_span_start else None,
        end=data.end or None,
        max_gap_candles=data.max_gap_candles,
        candle_type=config.candle_type,
    )


def holdout_warmup_start(config: RunConfig) -> pd.Timestamp:
    """The candle the holdout's features and T are computed from.

    ``WARMUP_CANDLES`` base candles before the first holdout window's training start (never before
    the first candle of the data): what a FreqAI backtest of the holdout loads (the export's
    ``startup_candle_count`` makes freqtrade load from exactly this candle, and the strategy
    computes from it), as the walk-forward span's indicators start ``WARMUP_CANDLES`` before the
    first fold's training start. (freqtrade caps the startup candles, so one start for both spans
    cannot be loaded for a long study.)

    Raises:
        DataError: the study has no holdout (see :func:`optimize.walkforward.holdout_windows`).
    """
    data = config.data
    dates = pd.DatetimeIndex(first_pair_candles(config)["date"])
    start = pd.Timestamp(data.start, tz="UTC") if data.start else None
    span = dates[dates >= start] if start is not None else dates
    plan = make_folds(span, config.walkforward, data.timeframe)
    first = holdout_windows(plan, span)[0]
    return warmup_start(first.train_start, dates[0], data.timeframe)


def score_holdout(
    config: RunConfig, params: TrialParams, *, trial: int, trial_values: list[float]
) -> HoldoutRecord:
    """Score ``params`` on the holdout of ``config``'s span.

    Args:
        config: the study's run config.
        params: the trial's parameters.
        trial, trial_values: the trial's number and walk-forward values (recorded).

    Raises:
        InputError: the purge gap is shorter than the trial's ``window_size + label_horizon``
            (checked before any data is loaded).
        DataError: the study has no holdout, or a window holds no candles.
    """
    remedy = f"trial {trial}'s holdout fit would see the holdout"
    check_purge(config.walkforward.purge_candles, params, remedy)
    anchor = holdout_warmup_start(config)
    corr = params.pipeline(config.features.pipeline).include_corr_pairlist
    data = StudyData.load(config, warmup_from=anchor, corr_pairs=corr)
    windows = holdout_windows(data.plan, data.dates)
    holdout = data.plan.holdout
    assert holdout is not None  # holdout_windows raised otherwise
    started = time.perf_counter()
    logger.info(
        "holdout of trial %d: %d windows over %s..%s",
        trial,
        len(windows),
        holdout.start,
        holdout.end,
    )
    # seed set 0: the seeds the trial itself trained with
    walk = FoldWalk(
        data,
        params,
        windows,
        span=holdout.slice,
        start=holdout.start,
        end=holdout.end,
        remedy=remedy,
    )
    records = [step.record for step in walk]
    objective = config.study.resolved_objective
    span = walk.score(objective)
    rows = holdout.slice
    first = windows[0]
    record = HoldoutRecord(
        trial=trial,
        objective=objective.name,
        values=list(span.values),
        trial_values=list(trial_values),
        holdout={
            "start": str(holdout.start),
            "end": str(holdout.end),
            "candles": rows.stop - rows.start,
        },
        train={
            "start": str(first.train_start),
            "end": str(first.train_end),
            "candles": first.train.stop - first.train.start,
        },
        windows=records,
        metrics=span.metrics,
        baselines=span.baselines,
        pairs=records[-1].pairs,
        daily_equity=daily_equity(data, rows, span),
        daily_returns=span.daily_returns,
        trades=trade_records(span.model),
        warmup_start=anchor.isoformat(),
        study_seed=config.study.seed,
        ensemble_size=config.training.ensemble_size,
        duration_s=time.perf_counter() - started,
        computed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        version=__version__,
    )
    logger.info(
        "holdout of trial %d: profit %.4f, buy-and-hold %.4f, no-model %.4f",
        trial,
        record.metrics.get("profit_total", float("nan")),
        record.baselines["buy_and_hold"]["profit_total"],
        record.baselines["no_model"].get("profit_total", float("nan")),
    )
    return record
