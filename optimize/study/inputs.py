"""The trial-independent inputs of a study: candles, target basis and features of every pair.

:class:`StudyData` holds everything that does not depend on the trial's parameters (candles,
target basis, LSTM features, the walk-forward plan); it is built once per worker process (features
come from the shared on-disk cache) and every trial (:func:`optimize.study.evaluate.evaluate`)
and the holdout (:mod:`optimize.study.holdout`) read it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from base.errors import DataError
from optimize.config import RunConfig
from optimize.data import load_candles
from optimize.walkforward import WalkForwardPlan, make_folds
from strategy.features import cached_features, warmup_start
from strategy.target import TargetBasis

logger = logging.getLogger(__name__)


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
            if full.empty:
                raise DataError(_no_candles_in_span(config, pair))
            first = full["date"].iloc[0]
            anchor = warmup_start(start, first, data.timeframe)
            if warmup_from is not None:
                anchor = max(anchor, pd.Timestamp(warmup_from))
            frames = {tf: f[f["date"] >= anchor].reset_index(drop=True) for tf, f in frames.items()}
            base = frames[data.timeframe]
            features = cached_features(frames, config.features, config.training.cache_dir)
            basis = TargetBasis.from_candles(base)
            if start is not None and first > start:
                raise DataError(
                    f"{pair} {data.timeframe} candles start at {first}, after data.start={start}; "
                    "move data.start later or drop the pair."
                )
            keep = (
                (full["date"] >= start).to_numpy()
                if start is not None
                else np.ones(len(full), bool)
            )
            span = full[keep].reset_index(drop=True)
            if span.empty:
                raise DataError(
                    f"{pair} has no {data.timeframe} candles in the span {data.start} .. "
                    f"{data.end or 'the end of its data'}: its last candle is "
                    f"{full['date'].iloc[-1]}, before data.start={data.start!r}; move the span "
                    "(data.start/data.end) into its history or drop the pair."
                )
            pair_dates = pd.DatetimeIndex(span["date"])
            if dates is None:
                dates = pair_dates
            elif not pair_dates.equals(dates):
                raise DataError(
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


def _no_candles_in_span(config: RunConfig, pair: str) -> str:
    """Why ``pair`` has no candle before ``data.end``: its first candle comes later."""
    data = config.data
    first = load_candles(pair, data.timeframe, datadir=data.path, exchange=data.exchange)[
        "date"
    ].iloc[0]
    return (
        f"{pair} has no {data.timeframe} candles in the span {data.start or 'its start'} .. "
        f"{data.end}: its first candle is {first}, after data.end={data.end!r}; move the span "
        "(data.start/data.end) into its history or drop the pair."
    )


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


__all__ = ["PairData", "StudyData", "with_market_precision"]
