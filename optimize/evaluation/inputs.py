"""The trial-independent inputs of a study: candles, target basis and features of every pair.

:class:`StudyData` holds everything that does not depend on the trial's parameters (candles,
target basis, LSTM features, the walk-forward plan, the markets and in futures mode each
perpetual's funding rates and mark candles); it is built once per worker process (features come
from the shared on-disk cache) and every trial (:func:`optimize.evaluation.trial.evaluate`) and the
holdout (:mod:`optimize.evaluation.holdout`) read it.

In futures mode (``backtest.trading_mode: futures``) the pairs are perpetuals (``BTC/USDT:USDT``):
their candles, and so their features and T, are the futures candles of ``<datadir>/<exchange>/
futures/`` (as the seed's FreqAI computes them), and every backtest takes the pairs'
:class:`~optimize.backtest.futures.FuturesPair` records (funding rates, 1h mark candles, the
market's rules and leverage tiers), loaded once here.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from base.errors import DataError
from optimize.backtest.futures import FuturesPair, load_futures_pair
from optimize.config import RunConfig
from optimize.data import load_candles
from optimize.markets import (
    amount_precisions,
    load_leverage_tiers,
    markets_file_of,
    perpetual_markets,
    read_markets,
)
from optimize.walkforward import WalkForwardPlan, make_folds
from strategy.features import cached_features, corr_pair_features, warmup_start
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
class CorrPair:
    """A correlated pair (FreqAI's ``include_corr_pairlist``) on the study span.

    Attributes:
        candles: its base candles over the span (validated like a traded pair's).
        features: (span rows, F) float32, its features merged onto the span's base candles
            (:func:`strategy.features.corr_pair_features`).
        feature_names: their names (``%-rsi-period_10_SOL/USDT_1h``...).
    """

    candles: pd.DataFrame
    features: np.ndarray
    feature_names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class _Frames:
    """One pair's candles: every timeframe from its warm-up start, and the span's base candles."""

    frames: dict[str, pd.DataFrame]
    span: pd.DataFrame


def _pair_frames(
    config: RunConfig, pair: str, warmup_from: pd.Timestamp | None, role: str = ""
) -> _Frames:
    """Load, validate and warm-up-trim ``pair``'s candles of every feature timeframe.

    Raises:
        DataError: the pair's candles start after ``data.start`` (``role`` says why the pair is
            loaded, e.g. for a correlated pair).
    """
    data = config.data
    start = pd.Timestamp(data.start, tz="UTC") if data.start else None
    end = pd.Timestamp(data.end, tz="UTC") if data.end else None
    frames = {
        tf: load_candles(
            pair,
            tf,
            datadir=data.path,
            exchange=data.exchange,
            end=end,
            max_gap_candles=data.max_gap_candles,
            candle_type=config.candle_type,
        )
        for tf in config.features.include_timeframes
    }
    full = frames[data.timeframe]
    if full.empty:
        raise DataError(_no_candles_in_span(config, pair, role))
    first = full["date"].iloc[0]
    anchor = warmup_start(start, first, data.timeframe)
    if warmup_from is not None:
        anchor = max(anchor, pd.Timestamp(warmup_from))
    frames = {tf: f[f["date"] >= anchor].reset_index(drop=True) for tf, f in frames.items()}
    if start is not None and first > start:
        raise DataError(
            f"{pair}{role} {data.timeframe} candles start at {first}, after data.start={start}; "
            "move data.start later or drop the pair."
        )
    keep = (full["date"] >= start).to_numpy() if start is not None else np.ones(len(full), bool)
    span = full[keep].reset_index(drop=True)
    if span.empty:
        raise DataError(
            f"{pair}{role} has no {data.timeframe} candles in the span {data.start} .. "
            f"{data.end or 'the end of its data'}: its last candle is "
            f"{full['date'].iloc[-1]}, before data.start={data.start!r}; move the span "
            "(data.start/data.end) into its history or drop the pair."
        )
    return _Frames(frames, span)


def _same_dates(pair: str, span: pd.DataFrame, dates: pd.DatetimeIndex, first_pair: str) -> None:
    pair_dates = pd.DatetimeIndex(span["date"])
    if not pair_dates.equals(dates):
        raise DataError(
            f"{pair} covers {pair_dates[0]}..{pair_dates[-1]} ({len(pair_dates)} candles) "
            f"but {first_pair} covers {dates[0]}..{dates[-1]} ({len(dates)}); all pairs "
            "must cover the study span (set data.start/end inside every pair's history)."
        )


@dataclass(frozen=True, eq=False)
class StudyData:
    """Trial-independent inputs of a study (built once per worker).

    Correlated pairs (FreqAI's ``include_corr_pairlist``) of the run config are loaded with the
    pairs; others a trial chooses (a search space's ``features.include_corr_pairlist``) on first
    use (:meth:`corr`), with the same checks.

    Attributes:
        config: the run config, with ``backtest.amount_precision`` from the markets file in spot
            mode (:func:`with_markets`).
        futures: futures mode: each pair's :class:`FuturesPair` (what every backtest passes);
            None in spot mode.
        markets_file: the markets file the pairs' rules came from
            (:func:`optimize.markets.markets_file_of`).
    """

    config: RunConfig
    pairs: dict[str, PairData]
    plan: WalkForwardPlan
    dates: pd.DatetimeIndex
    warmup_from: pd.Timestamp | None = None
    corr_pairs: dict[str, CorrPair] = dataclasses.field(default_factory=dict)
    futures: dict[str, FuturesPair] | None = None
    markets_file: str | None = None
    _matrices: dict[tuple[str, tuple[str, ...]], tuple[np.ndarray, tuple[str, ...]]] = (
        dataclasses.field(default_factory=dict)
    )

    @classmethod
    def load(
        cls,
        config: RunConfig,
        *,
        warmup_from: pd.Timestamp | None = None,
        corr_pairs: tuple[str, ...] = (),
    ) -> StudyData:
        """Load candles, build the target basis and the (cached) features, make the folds.

        Args:
            config: the run config.
            warmup_from: compute features and T from this candle on (rows of the span before it
                hold NaN); None: :func:`strategy.features.warmup_start` of the span, the default
                every trial uses. The holdout uses its own (see :mod:`optimize.evaluation.holdout`).
            corr_pairs: correlated pairs to load besides the run config's
                ``features.include_corr_pairlist`` (a search space's choices).

        Raises:
            ValueError: a pair does not cover the span, the folds cannot be made (the message
                says how much data there is and how much is needed), or the markets file lacks a
                pair (:class:`optimize.markets.MarketsError`).
        """
        data = config.data
        pairs: dict[str, PairData] = {}
        dates: pd.DatetimeIndex | None = None
        for pair in data.pairs:
            loaded = _pair_frames(config, pair, warmup_from)
            frames, span = loaded.frames, loaded.span
            base = frames[data.timeframe]
            features = cached_features(frames, config.features, config.training.cache_dir)
            basis = TargetBasis.from_candles(base)
            pair_dates = pd.DatetimeIndex(span["date"])
            if dates is None:
                dates = pair_dates
            else:
                _same_dates(pair, span, dates, data.pairs[0])
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
        config, futures, markets = with_markets(config)
        plan = make_folds(
            dates,
            config.walkforward,
            data.timeframe,
            buffer_candles=config.features.buffer_train_data_candles,
        )
        logger.info(
            "study data: %d pairs, %d candles %s..%s, %d folds, holdout %s",
            len(pairs),
            len(dates),
            dates[0],
            dates[-1],
            len(plan.folds),
            None if plan.holdout is None else (plan.holdout.start, plan.holdout.end),
        )
        study = cls(
            config=config,
            pairs=pairs,
            plan=plan,
            dates=dates,
            warmup_from=warmup_from,
            futures=futures,
            markets_file=str(markets),
        )
        for corr in dict.fromkeys((*config.features.include_corr_pairlist, *corr_pairs)):
            study.corr(corr)
        return study

    def corr(self, pair: str) -> CorrPair:
        """The correlated pair ``pair`` (loaded, validated and merged on first use).

        Raises:
            ValueError / PairNotFoundError / CandleValidationError: its candles are missing, bad,
                or do not cover the study span (the message names the pair as a correlated pair).
        """
        if pair not in self.corr_pairs:
            role = " (features.include_corr_pairlist)"
            try:
                loaded = _pair_frames(self.config, pair, self.warmup_from, role)
            except (FileNotFoundError, ValueError) as exc:
                if role in str(exc):
                    raise
                raise type(exc)(f"correlated pair {pair}{role}: {exc}") from None
            _same_dates(pair + role, loaded.span, self.dates, self.config.data.pairs[0])
            base_dates = pd.Series(self.dates, index=pd.RangeIndex(len(self.dates)))
            frame = corr_pair_features(base_dates, loaded.frames, self.config.features, pair)
            self.corr_pairs[pair] = CorrPair(
                loaded.span,
                np.ascontiguousarray(frame.to_numpy(dtype=np.float32)),
                tuple(frame.columns),
            )
        return self.corr_pairs[pair]

    def features_of(
        self, pair: str, corr_pairs: tuple[str, ...]
    ) -> tuple[np.ndarray, tuple[str, ...]]:
        """``pair``'s feature matrix and names with the features of ``corr_pairs`` appended (in
        that order; the pair itself skipped, as FreqAI does). Without correlated pairs: the
        pair's own matrix, unchanged."""
        own = self.pairs[pair]
        others = tuple(p for p in corr_pairs if p != pair)
        if not others:
            return own.features, own.feature_names
        key = (pair, others)
        if key not in self._matrices:
            corr = [self.corr(p) for p in others]
            matrix = np.hstack([own.features, *(c.features for c in corr)])
            names = own.feature_names + tuple(n for c in corr for n in c.feature_names)
            self._matrices[key] = (np.ascontiguousarray(matrix), names)
        return self._matrices[key]


def _no_candles_in_span(config: RunConfig, pair: str, role: str = "") -> str:
    """Why ``pair`` has no candle before ``data.end``: its first candle comes later."""
    data = config.data
    first = load_candles(pair, data.timeframe, datadir=data.path, exchange=data.exchange)[
        "date"
    ].iloc[0]
    return (
        f"{pair}{role} has no {data.timeframe} candles in the span {data.start or 'its start'} .. "
        f"{data.end}: its first candle is {first}, after data.end={data.end!r}; move the span "
        "(data.start/data.end) into its history or drop the pair."
    )


def with_markets(
    config: RunConfig,
) -> tuple[RunConfig, dict[str, FuturesPair] | None, Path]:
    """The pairs' markets from the run config's markets file, as the backtest takes them.

    freqtrade rounds every order amount to the market's amount step and, in futures mode, applies
    the market's stake limits and leverage tiers; the study's backtest does the same with the
    markets file freqtrade's offline runs of the export read (``data.markets``, default the
    embedded Binance file of the trading mode; :func:`optimize.markets.markets_file_of`).

    Returns:
        ``(config, futures, file)``: spot mode: the config with ``backtest.amount_precision`` set
        from the file (unless the config sets it) and None; futures mode: the config unchanged and
        each pair's :class:`FuturesPair` (its funding rates and mark candles from ``<datadir>/
        <exchange>/futures/``, its market and freqtrade's leverage tiers).

    Raises:
        MarketsError: the file is missing or lacks a pair (one line naming the pair, the file and
            the command that saves a file for it).
        ValueError / PairNotFoundError / CandleValidationError: a perpetual without leverage tiers,
            funding rates or mark candles.
    """

    data, mode = config.data, config.backtest.trading_mode
    path = markets_file_of(config)
    pairs = list(data.pairs)
    markets = read_markets(path, pairs, trading_mode=mode, exchange=data.exchange)
    if config.backtest.futures:
        perpetuals = perpetual_markets(pairs, markets, load_leverage_tiers(data.exchange))
        futures = {
            p: load_futures_pair(p, perpetuals[p], datadir=data.path, exchange=data.exchange)
            for p in pairs
        }
        return config, futures, path
    if config.backtest.amount_precision is not None:
        return config, None, path
    steps = amount_precisions(markets, pairs)
    backtest = dataclasses.replace(config.backtest, amount_precision=steps)
    return dataclasses.replace(config, backtest=backtest), None, path


__all__ = ["CorrPair", "PairData", "StudyData", "with_markets"]
