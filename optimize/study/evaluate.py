"""One trial, end to end: T(w) -> labels -> LSTM per pair per fold -> signals -> backtest.

:class:`StudyData` holds everything that does not depend on the trial's parameters (candles,
target basis, LSTM features, the walk-forward plan); it is built once per worker process (features
come from the shared on-disk cache). :func:`evaluate` scores one
:class:`~optimize.search.space.TrialParams` on it and calls ``report(fold_index, fold_score)`` after
every fold so a pruner can stop it early.

The trial's value is the objective of one backtest over the whole out-of-sample span (the test
windows back to back, each traded by the models of its own fold — what FreqAI's sliding-window
backtest does). Each fold is also backtested on its own for the per-fold metrics and the pruner.
Baselines over the same folds: buy-and-hold (equal weight over the pairs) and "no model" (the same
thresholds applied to T itself).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstm.seeds import member_range, model_seed
from lstm.train import fit_ensemble
from optimize.backtest.engine import BacktestResult, backtest
from optimize.backtest.metrics import buy_and_hold
from optimize.config import RunConfig
from optimize.data import load_candles
from optimize.search.objectives.base import Objective
from optimize.search.space import TrialParams
from optimize.walkforward import Fold, WalkForwardPlan, make_folds
from strategy.features import cached_features, warmup_start
from strategy.signals import long_signals, resolve_thresholds
from strategy.target import TargetBasis, make_labels  # make_labels: re-exported for callers

logger = logging.getLogger(__name__)

FOLD_METRIC_KEYS = (
    "total_trades",
    "profit_total",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_account",
    "winrate",
    "profit_factor",
    "exposure",
    "cagr",
)


@dataclass(frozen=True, eq=False)
class PairData:
    """One pair, restricted to the study span.

    Features and T are computed from :func:`strategy.features.warmup_start` on (``WARMUP_CANDLES``
    base candles before the span), the same first candle the exported freqtrade strategy
    computes from, so both sides see the same values at every candle.
    """

    candles: pd.DataFrame
    basis: TargetBasis
    features: np.ndarray
    feature_names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class StudyData:
    """Trial-independent inputs of a study (built once per worker)."""

    config: RunConfig
    pairs: dict[str, PairData]
    plan: WalkForwardPlan
    dates: pd.DatetimeIndex

    @classmethod
    def load(cls, config: RunConfig, *, warmup_from: pd.Timestamp | None = None) -> StudyData:
        """Load candles, build the target basis and the (cached) features, make the folds.

        Args:
            config: the run config.
            warmup_from: compute features and T from this candle on (rows of the span before it
                hold NaN); None: :func:`strategy.features.warmup_start` of the span, the default
                every trial uses. The holdout uses its own (see :mod:`optimize.study.holdout`).

        Raises:
            ValueError: a pair does not cover the span, or the folds cannot be made (the message
                says how much data there is and how much is needed).
        """
        config = with_market_precision(config)
        data = config.data
        start = pd.Timestamp(data.start, tz="UTC") if data.start else None
        end = pd.Timestamp(data.end, tz="UTC") if data.end else None
        pairs: dict[str, PairData] = {}
        dates: pd.DatetimeIndex | None = None
        for pair in data.pairs:
            frames = {
                tf: load_candles(
                    pair,
                    tf,
                    datadir=data.path,
                    exchange=data.exchange,
                    end=end,
                    max_gap_candles=data.max_gap_candles,
                )
                for tf in config.features.include_timeframes
            }
            full = frames[data.timeframe]
            first = full["date"].iloc[0]
            anchor = warmup_start(start, first, data.timeframe)
            if warmup_from is not None:
                anchor = max(anchor, pd.Timestamp(warmup_from))
            frames = {tf: f[f["date"] >= anchor].reset_index(drop=True) for tf, f in frames.items()}
            base = frames[data.timeframe]
            features = cached_features(frames, config.features, config.training.cache_dir)
            basis = TargetBasis.from_candles(base)
            if start is not None and first > start:
                raise ValueError(
                    f"{pair} {data.timeframe} candles start at {first}, after data.start={start}; "
                    "move data.start later or drop the pair."
                )
            keep = (
                (full["date"] >= start).to_numpy()
                if start is not None
                else np.ones(len(full), bool)
            )
            span = full[keep].reset_index(drop=True)
            pair_dates = pd.DatetimeIndex(span["date"])
            if dates is None:
                dates = pair_dates
            elif not pair_dates.equals(dates):
                raise ValueError(
                    f"{pair} covers {pair_dates[0]}..{pair_dates[-1]} ({len(pair_dates)} candles) "
                    f"but {data.pairs[0]} covers {dates[0]}..{dates[-1]} ({len(dates)}); all pairs "
                    "must cover the study span (set data.start/end inside every pair's history)."
                )
            # span rows -> rows of the warmed-up frame (-1: before the warm-up start, no values)
            pos = pd.DatetimeIndex(base["date"]).get_indexer(pair_dates)
            ok = pos >= 0
            matrix = features.to_numpy(dtype=np.float32)
            feats = np.full((len(span), matrix.shape[1]), np.nan, dtype=np.float32)
            feats[ok] = matrix[pos[ok]]
            z = np.full((len(span), basis.z.shape[1]), np.nan)
            z[ok] = basis.z[pos[ok]]
            multiplier = np.full(len(span), np.nan)
            multiplier[ok] = basis.multiplier[pos[ok]]
            strong = np.zeros(len(span), dtype=bool)
            strong[ok] = basis.strong_trend[pos[ok]]
            pairs[pair] = PairData(
                candles=span,
                basis=TargetBasis(z, multiplier, strong, span.index),
                features=np.ascontiguousarray(feats),
                feature_names=tuple(features.columns),
            )
        assert dates is not None
        plan = make_folds(dates, config.walkforward, data.timeframe)
        logger.info(
            "study data: %d pairs, %d candles %s..%s, %d folds, holdout %s",
            len(pairs),
            len(dates),
            dates[0],
            dates[-1],
            len(plan.folds),
            None if plan.holdout is None else (plan.holdout.start, plan.holdout.end),
        )
        return cls(config=config, pairs=pairs, plan=plan, dates=dates)


def with_market_precision(config: RunConfig) -> RunConfig:
    """``config`` with ``backtest.amount_precision`` from the local markets file when unset.

    freqtrade rounds every order amount to the market's amount step; the study's backtest does the
    same with the steps of :data:`optimize.freqtrade.offline.MARKETS_FILE` (the markets freqtrade's
    offline runs of this project use), so trade profits in quote currency agree with freqtrade's.
    Left unset (with a warning) for an exchange or pair that file does not describe.
    """
    if config.backtest.amount_precision is not None:
        return config
    from optimize.freqtrade.offline import MARKETS_FILE, amount_precisions, load_markets

    if config.data.exchange != "binance":
        logger.warning(
            "no local markets for exchange %s: order amounts are not rounded", config.data.exchange
        )
        return config
    try:
        steps = amount_precisions(load_markets(MARKETS_FILE), list(config.data.pairs))
    except ValueError as exc:
        logger.warning("order amounts are not rounded: %s", exc)
        return config
    return dataclasses.replace(
        config, backtest=dataclasses.replace(config.backtest, amount_precision=steps)
    )


@dataclass
class PairFold:
    """Signals of one pair in one fold's test window (model and no-model baseline)."""

    enter: np.ndarray
    exit: np.ndarray
    base_enter: np.ndarray
    base_exit: np.ndarray
    info: dict[str, Any]

    @classmethod
    def flat(cls, n: int) -> PairFold:
        """``n`` candles without any signal (four separate arrays, to be filled with
        :meth:`put`)."""
        return cls(*(np.zeros(n, bool) for _ in range(4)), info={})

    def put(self, sl: slice, signals: PairFold) -> None:
        """Write ``signals`` (a window's) into ``sl`` of these arrays."""
        for name in ("enter", "exit", "base_enter", "base_exit"):
            getattr(self, name)[sl] = getattr(signals, name)

    def window(self, sl: slice) -> PairFold:
        """These signals on ``sl`` (views)."""
        return PairFold(
            self.enter[sl], self.exit[sl], self.base_enter[sl], self.base_exit[sl], self.info
        )


def check_purge(purge_candles: int, params: TrialParams, remedy: str) -> None:
    """Refuse a purge gap shorter than the trial's ``window_size + label_horizon`` (look-ahead
    risk).

    Raises:
        ValueError: naming ``walkforward.purge_candles``, the gap needed and ``remedy``.
    """
    needed = params.lstm.window_size + params.label_horizon
    if purge_candles < needed:
        raise ValueError(
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
) -> tuple[PairFold, Any]:
    """Train the pair's ensemble (one member per seed) on the fold's train window and produce
    test-window signals from the members' mean prediction (thresholds from the mean's in-sample
    predictions)."""
    target = pd_.basis.score(params.weights)
    labels = make_labels(target, params.label_horizon)
    test_len = fold.test.stop - fold.test.start
    base_thr = resolve_thresholds(
        params.signal, train_predictions=target[fold.train], train_labels=labels[fold.train]
    )
    base_enter, base_exit = long_signals(target[fold.test], base_thr)
    usable = int(np.isfinite(labels[fold.train]).sum())
    if usable < min_train_samples:
        flat = np.zeros(test_len, dtype=bool)
        info = {
            "skipped": f"only {usable} finite labels in the train window (< {min_train_samples})"
        }
        return PairFold(flat, flat, base_enter, base_exit, info), None
    # The model sees its train window and what follows it, nothing before (as in FreqAI, whose
    # training frame starts there): no training window reaches back before the fold's train start.
    base = fold.train.start
    result = fit_ensemble(
        pd_.features[base:],
        labels[base:],
        train=slice(0, fold.train.stop - base),
        predict=slice(fold.test.start - base, fold.test.stop - base),
        params=params.lstm,
        seeds=seeds,
        accelerator=accelerator,
        feature_names=pd_.feature_names,
        label_horizon=params.label_horizon,
    )
    thr = resolve_thresholds(
        params.signal, train_predictions=result.train_predictions, train_labels=labels[fold.train]
    )
    enter, exit_ = long_signals(result.predictions, thr)
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
    return PairFold(enter, exit_, base_enter, base_exit, info), result


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
    :func:`fold_seeds`)."""
    training = data.config.training
    return {
        pair: fit_pair_fold(
            pd_,
            params,
            fold,
            seeds=fold_seeds(data, pair, fold, seed_set),
            accelerator=training.accelerator,
            min_train_samples=training.min_train_samples,
        )[0]
        for pair, pd_ in data.pairs.items()
    }


def _span_backtest(data: StudyData, sl: slice, enter: dict, exit_: dict) -> BacktestResult:
    candles = {p: d.candles.iloc[sl] for p, d in data.pairs.items()}
    return backtest(candles, enter, exit_, settings=data.config.backtest)


def _subset(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(metrics[k]) for k in FOLD_METRIC_KEYS if k in metrics}


def _buy_and_hold(data: StudyData, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, float]:
    per_pair = {
        p: buy_and_hold(d.candles, start, end, fee=data.config.backtest.fee)
        for p, d in data.pairs.items()
    }
    return {
        "profit_total": float(np.mean([m["profit_total"] for m in per_pair.values()])),
        "max_drawdown_equity": float(
            np.mean([m["max_drawdown_equity"] for m in per_pair.values()])
        ),
        "per_pair": {p: m["profit_total"] for p, m in per_pair.items()},
    }


@dataclass(frozen=True)
class SpanScore:
    """One span backtested with the model's signals, next to the two baselines.

    Attributes:
        values: the objective of the model's backtest.
        model, no_model: the backtests of the model's and of the no-model signals.
        buy_and_hold: equal-weight buy-and-hold of the pairs over the span (and each pair's profit).
    """

    values: tuple[float, ...]
    model: BacktestResult
    no_model: BacktestResult
    buy_and_hold: dict[str, Any]

    @property
    def metrics(self) -> dict[str, float]:
        """The model's metrics (:data:`FOLD_METRIC_KEYS`)."""
        return _subset(self.model.metrics)

    @property
    def baselines(self) -> dict[str, Any]:
        """``buy_and_hold`` and ``no_model`` (its metrics), as stored with trials and holdouts."""
        return {"buy_and_hold": self.buy_and_hold, "no_model": _subset(self.no_model.metrics)}

    @property
    def daily_returns(self) -> list[float]:
        """The model's daily returns (a day without any, NaN, counts as 0)."""
        return [float(x) for x in np.nan_to_num(self.model.daily_returns.to_numpy(), nan=0.0)]


def score_span(
    data: StudyData,
    objective: Objective,
    sl: slice,
    start: pd.Timestamp,
    end: pd.Timestamp,
    signals: Mapping[str, PairFold],
) -> SpanScore:
    """Backtest the candles ``sl`` with every pair's model and no-model ``signals`` (arrays of the
    span's length) and score the model's; buy-and-hold runs from ``start`` to ``end``."""
    model = _span_backtest(
        data, sl, {p: s.enter for p, s in signals.items()}, {p: s.exit for p, s in signals.items()}
    )
    no_model = _span_backtest(
        data,
        sl,
        {p: s.base_enter for p, s in signals.items()},
        {p: s.base_exit for p, s in signals.items()},
    )
    return SpanScore(objective(model.metrics), model, no_model, _buy_and_hold(data, start, end))


def daily_equity(
    data: StudyData, sl: slice, model: BacktestResult, no_model: BacktestResult
) -> dict[str, Any]:
    """End-of-day equity over ``sl`` of the model, the no-model baseline and buy-and-hold.

    Values are ratios to the starting wallet (1.0 = unchanged), one per calendar day (UTC) from
    ``start``, rounded to 6 decimals. Buy-and-hold is the equal-weight mean over the pairs of
    ``close_t / close_0 * (1 - fee) / (1 + fee)`` (bought at the first close, as in
    :func:`optimize.backtest.metrics.buy_and_hold`), so its last value is ``1 + profit_total``.
    """
    fee = data.config.backtest.fee
    growth = (
        np.mean(
            [
                d.candles["close"].to_numpy(np.float64)[sl]
                / float(d.candles["close"].iloc[sl.start])
                for d in data.pairs.values()
            ],
            axis=0,
        )
        * (1.0 - fee)
        / (1.0 + fee)
    )
    curves = pd.DataFrame(
        {
            "model": model.equity.to_numpy() / model.settings.dry_run_wallet,
            "no_model": no_model.equity.to_numpy() / no_model.settings.dry_run_wallet,
            "buy_and_hold": growth,
        },
        index=model.equity.index,
    )
    days = curves.resample("1D").last().dropna()
    out: dict[str, Any] = {"start": days.index[0].strftime("%Y-%m-%d") if len(days) else None}
    out.update({k: [round(float(x), 6) for x in days[k]] for k in curves.columns})
    return out


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


TRADE_RECORD_KEYS = ("pair", "open_date", "close_date", "exit_reason", "profit_ratio", "profit_abs")
"""What is stored of each trade (with the trial, the holdout record and the export)."""


def trade_records(result: BacktestResult) -> list[dict[str, Any]]:
    """The trades of a backtest as JSON-able dicts (:data:`TRADE_RECORD_KEYS`; dates ISO UTC).

    These are what ``python -m optimize verify`` matches against freqtrade's trades (pair, open
    and close date, exit reason).
    """
    out = []
    for row in result.trades.itertuples(index=False):
        out.append(
            {
                "pair": str(row.pair),
                "open_date": pd.Timestamp(row.open_date).isoformat(),
                "close_date": pd.Timestamp(row.close_date).isoformat(),
                "exit_reason": str(row.exit_reason),
                "profit_ratio": float(row.profit_ratio),
                "profit_abs": float(row.profit_abs),
            }
        )
    return out


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
    folds = data.plan.folds
    start = folds[0].test.start
    signals = {
        p: PairFold.flat(len(data.dates)) for p in data.pairs
    }  # each fold fills its test window
    fold_rows: list[dict[str, Any]] = []
    for fold in folds:
        fits = fit_fold(data, params, fold, seed_set=seed_set)
        for pair, pf in fits.items():
            signals[pair].put(fold.test, pf)
        span = score_span(data, objective, fold.test, fold.test_start, fold.test_end, fits)
        so_far = slice(start, fold.test.stop)
        value_so_far = objective(
            _span_backtest(
                data,
                so_far,
                {p: s.enter[so_far] for p, s in signals.items()},
                {p: s.exit[so_far] for p, s in signals.items()},
            ).metrics
        )[0]
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
    oos = slice(start, folds[-1].test.stop)
    span = score_span(
        data,
        objective,
        oos,
        folds[0].test_start,
        folds[-1].test_end,
        {p: s.window(oos) for p, s in signals.items()},
    )
    return TrialOutcome(
        values=span.values,
        folds=fold_rows,
        oos_metrics=span.metrics,
        baselines=span.baselines,
        daily_returns=span.daily_returns,
        daily_equity=daily_equity(data, oos, span.model, span.no_model),
        trades=trade_records(span.model),
    )
