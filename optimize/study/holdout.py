"""The holdout: one final, never-optimised score for one trial of a finished study.

The walk-forward plan keeps the last ``holdout_days`` of the span away from every fold
(:mod:`optimize.walkforward`). :func:`evaluate_holdout` trades the holdout with more windows of the
walk-forward schedule (:func:`optimize.walkforward.holdout_windows`): every ``test_days`` window
of the holdout is traded by models retrained on the ``train_days`` that end ``purge_candles``
before it, exactly as FreqAI's backtest of the export over the holdout retrains every
``backtest_period_days``; the signals are backtested once over the whole holdout, with the
study's own backtest settings, next to the same two baselines the trials carry: buy-and-hold and
"no model" (the trial's thresholds applied to T). It reuses the trial code path of
:mod:`optimize.study.evaluate` (:func:`~optimize.study.evaluate.fit_fold`,
:func:`~optimize.study.scoring.score_span`), so the numbers are comparable to the per-fold ones.
The record keeps the trades (what ``python -m optimize verify`` compares with freqtrade's).

Rules:

* The result is stored in the study (user attr ``"holdout"``: ``{str(trial_number): record}``)
  and the study is marked as touched (user attr ``"holdout_touched"``: when, and for which trials).
  A second call for the same trial returns the stored record; nothing is retrained (a record of
  an older :data:`RECORD_FORMAT` is recomputed and replaced).
* The holdout is never used to select: nothing here changes a trial's value or user attrs, and
  the trial is chosen from the walk-forward results only (``trial_number=None``: the best trial).
  Every extra trial whose holdout is looked at weakens it as an untouched estimate; the study
  records which trials were evaluated so the report can say so.
* Multi-objective studies: ``trial_number=None`` picks, among the Pareto-optimal trials, the one
  with the best first objective (ties: the lowest trial number); pass an explicit trial number to
  evaluate another member of the front.
* Seeds: the rule of every model (:func:`optimize.study.evaluate.fold_seeds`, seed set 0): the
  study's seed, the pair, each window's last training candle and the member index (the rule of the
  folds and of the FreqAI model), so a rerun anywhere reproduces the record (CPU).
* Two processes evaluating the same trial at the same moment both train; the last write wins
  (on CPU the records are identical).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial

from optimize._version import __version__
from optimize.config import RunConfig
from optimize.data import load_candles
from optimize.search.space import TrialParams
from optimize.study.evaluate import check_purge, fit_fold, fold_blocked
from optimize.study.inputs import StudyData
from optimize.study.records import (
    HOLDOUT_ATTR,
    TOUCHED_ATTR,
    HoldoutTouched,
    TrialRecord,
    stored_holdouts,
    study_config,
)
from optimize.study.scoring import PairFold, daily_equity, score_span, trade_records
from optimize.study.selection import select_trial
from optimize.walkforward import Fold, WalkForwardPlan, holdout_windows, make_folds
from strategy.features import warmup_start

logger = logging.getLogger(__name__)

RECORD_FORMAT = 2
"""Version of the stored record's layout (``record["format"]``)."""


def holdout_fold(plan: WalkForwardPlan, dates: pd.DatetimeIndex) -> Fold:
    """The first holdout window (see :func:`optimize.walkforward.holdout_windows`).

    Raises:
        ValueError: the plan has no holdout, or the window holds no candles.
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
    the first candle of the data): what a
    FreqAI backtest of the holdout loads (the export's ``startup_candle_count`` makes freqtrade load
    from exactly this candle, and the strategy computes from it), as the walk-forward span's
    indicators start ``WARMUP_CANDLES`` before the first fold's training start. (freqtrade caps
    the startup candles, so one start for both spans cannot be loaded for a long study.)

    Raises:
        ValueError: the study has no holdout (see :func:`optimize.walkforward.holdout_windows`).
    """
    data = config.data
    dates = pd.DatetimeIndex(first_pair_candles(config)["date"])
    start = pd.Timestamp(data.start, tz="UTC") if data.start else None
    span = dates[dates >= start] if start is not None else dates
    plan = make_folds(span, config.walkforward, data.timeframe)
    first = holdout_windows(plan, span)[0]
    return warmup_start(first.train_start, dates[0], data.timeframe)


def stored_holdout(study: optuna.Study, trial_number: int) -> dict[str, Any] | None:
    """The stored holdout record of a trial, or None when it was never evaluated."""
    return stored_holdouts(study).get(str(int(trial_number)))


def evaluate_holdout(study: optuna.Study, trial_number: int | None = None) -> dict[str, Any]:
    """Score one trial on the holdout, once; later calls return the stored record.

    Args:
        study: a study made by :func:`optimize.study.runner.run_worker` (its run config is read from
        it).
        trial_number: the trial; None: the best trial (multi-objective: see :func:`select_trial`).

    Returns:
        The JSON-able record: ``trial``, ``objective``, ``values`` (the objective on the holdout),
        ``trial_values`` (the trial's walk-forward values), ``holdout`` span, ``train`` (the
        first window's training span), ``windows`` (each window's train/test span and per-pair
        thresholds and training info; ``di_blocked`` with the dissimilarity index on),
        ``metrics`` (same keys as a fold's), ``baselines`` (``buy_and_hold``, ``no_model``),
        ``pairs`` (the last window's per-pair info),
        ``daily_equity`` (see :func:`optimize.study.scoring.daily_equity`), ``daily_returns``,
        ``trades`` (:func:`optimize.study.scoring.trade_records`), ``warmup_start`` (the candle its
        indicators start from, :func:`holdout_warmup_start`), ``study_seed``, ``ensemble_size``,
        ``duration_s``,
        ``computed_at`` (ISO UTC), ``version`` (lstm-optuna) and ``format``.

    Raises:
        ValueError: see :func:`select_trial` and :func:`~optimize.walkforward.holdout_windows`;
            the purge gap is shorter
            than the trial's ``window_size + label_horizon``.
    """
    return evaluate_trial_holdout(study, select_trial(study, trial_number))


def evaluate_trial_holdout(study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
    """:func:`evaluate_holdout` of a trial the caller has already chosen with
    :func:`select_trial`."""
    stored = stored_holdout(study, trial.number)
    if stored is not None and stored.get("format") == RECORD_FORMAT:
        logger.info(
            "holdout of trial %d reused (computed %s)", trial.number, stored.get("computed_at")
        )
        return stored
    if stored is not None:  # an older layout: one model for the whole holdout, no trades
        logger.warning(
            "holdout record of trial %d has format %s, this version writes %d (windows of the "
            "walk-forward schedule, trades); recomputing it",
            trial.number,
            stored.get("format"),
            RECORD_FORMAT,
        )
    config = study_config(study)
    params = TrialParams.from_dict(TrialRecord.of(trial, complete=False).params)
    check_purge(
        config.walkforward.purge_candles,
        params,
        f"trial {trial.number}'s holdout fit would see the holdout",
    )
    anchor = holdout_warmup_start(config)
    corr = params.pipeline(config.features.pipeline).include_corr_pairlist
    data = StudyData.load(config, warmup_from=anchor, corr_pairs=corr)
    windows = holdout_windows(data.plan, data.dates)
    holdout = data.plan.holdout
    assert holdout is not None  # holdout_windows raised otherwise
    settings = params.settings(data.config.backtest)
    started = time.perf_counter()
    logger.info(
        "holdout of trial %d: %d windows over %s..%s",
        trial.number,
        len(windows),
        holdout.start,
        holdout.end,
    )
    span_rows = holdout.slice
    signals = {p: PairFold.flat(span_rows.stop - span_rows.start) for p in data.pairs}
    window_rows: list[dict[str, Any]] = []
    for fold in windows:
        fits = fit_fold(data, params, fold)  # seed set 0: the seeds the trial itself trained with
        local = slice(fold.test.start - span_rows.start, fold.test.stop - span_rows.start)
        for pair, pf in fits.items():
            signals[pair].put(local, pf)
        blocked = fold_blocked({pair: pf.info for pair, pf in fits.items()})
        window_rows.append(
            {
                "window": fold.index,
                "train_start": str(fold.train_start),
                "train_end": str(fold.train_end),
                "train_candles": fold.train.stop - fold.train.start,
                "test_start": str(fold.test_start),
                "test_end": str(fold.test_end),
                "pairs": {pair: pf.info for pair, pf in fits.items()},
                **({} if blocked is None else {"di_blocked": blocked}),
            }
        )
    objective = config.study.resolved_objective
    span = score_span(data, objective, span_rows, holdout.start, holdout.end, signals, settings)
    first = windows[0]
    record = {
        "format": RECORD_FORMAT,
        "trial": trial.number,
        "objective": objective.name,
        "values": list(span.values),
        "trial_values": list(trial.values),
        "holdout": {
            "start": str(holdout.start),
            "end": str(holdout.end),
            "candles": span_rows.stop - span_rows.start,
        },
        "train": {
            "start": str(first.train_start),
            "end": str(first.train_end),
            "candles": first.train.stop - first.train.start,
        },
        "windows": window_rows,
        "metrics": span.metrics,
        "baselines": span.baselines,
        "pairs": window_rows[-1]["pairs"],
        "daily_equity": daily_equity(data, span_rows, span),
        "daily_returns": span.daily_returns,
        "trades": trade_records(span.model),
        "warmup_start": anchor.isoformat(),
        "study_seed": config.study.seed,
        "ensemble_size": config.training.ensemble_size,
        "duration_s": time.perf_counter() - started,
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
    }
    _store(study, trial.number, record)
    logger.info(
        "holdout of trial %d: profit %.4f, buy-and-hold %.4f, no-model %.4f",
        trial.number,
        record["metrics"].get("profit_total", float("nan")),
        record["baselines"]["buy_and_hold"]["profit_total"],
        record["baselines"]["no_model"].get("profit_total", float("nan")),
    )
    return record


def _store(study: optuna.Study, number: int, record: dict[str, Any]) -> None:
    """Merge the record into the study's attrs (re-read first: other processes may have written)."""
    records = stored_holdouts(study)
    records[str(number)] = record
    study.set_user_attr(HOLDOUT_ATTR, records)
    at = record["computed_at"]
    touched = HoldoutTouched.of(study) or HoldoutTouched(at, at, ())
    study.set_user_attr(TOUCHED_ATTR, touched.adding(number, at).to_user_attr())
