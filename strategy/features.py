"""The LSTM's input features: the seed's FreqAI feature set, configurable and cached.

The seed strategies define their features in FreqAI's three hooks; this module holds the same
definitions as plain functions (so the freqtrade strategy of this project calls them from its hooks)
and a builder that expands them the way FreqAI does:

* :func:`expand_all` — per ``period`` in ``indicator_periods_candles``: CCI, RSI, MOM, SMA, ROC
  (TA-Lib), Bollinger bands of the typical price (``stds=2.2``) -> width and ``close / lower``;
  MACD (the seed's ``slowperiod=12, fastperiod=26``) does not depend on the period, so it is
  computed once per timeframe (the seed repeats identical columns per period);
* :func:`expand_basic` — pct-change, raw volume, raw price;
* :func:`standard` — day of week and hour of day of the base timeframe.

Each informative timeframe in ``include_timeframes`` is computed on its own candles and merged onto
the base candles without look-ahead, as freqtrade's ``merge_informative_pair`` does: a
higher-timeframe candle becomes visible on the base candle during which it closes.
``include_shifted_candles`` adds copies shifted by 1..k candles of their own timeframe (before the
merge, as FreqAI does). Column names follow FreqAI: ``%-rsi-period_10_1h``.

Correlated pairs (FreqAI's ``include_corr_pairlist``, :func:`corr_pair_features`): the same
per-timeframe features of another pair's candles, merged onto the pair's base candles exactly as
an informative timeframe (the base timeframe by open date), after the pair's own columns, named
``%-rsi-period_10_SOL/USDT_1h``; no calendar features, as in FreqAI.

Every value at row ``t`` depends on candles whose close is at or before row ``t``'s close.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import talib
from technical import qtpylib

from base.checks import check_int, fail
from base.errors import InputError
from strategy.pipeline import PIPELINE_KEYS, DataPipeline
from strategy.timeframes import timeframe_to_seconds, timeframe_to_timedelta

logger = logging.getLogger(__name__)

FEATURES_VERSION = 2
"""Bumped whenever a feature definition changes (part of the cache key)."""

WARMUP_CANDLES = 300
"""Base candles before the study span from which every indicator (features and T) is computed.

Indicators with memory (RSI, MACD, ATR: exponential smoothing seeded at their first candle) depend
on where the computation starts. The study and the freqtrade strategy therefore both compute from
the same first candle, the *warm-up start* ``data.start - WARMUP_CANDLES`` base candles (see
:func:`warmup_start`); freqtrade's strategy trims what freqtrade loads before it
(:func:`from_warmup`), and the export makes freqtrade load at least that far back. T needs 100
candles (its SMA 100 regime term, the longest window), the rest is settling time.
"""

PERIOD_FEATURES = ("cci", "rsi", "momentum", "ma", "roc", "bb_width", "close-bb_lower")
TIMEFRAME_FEATURES = ("macd", "macdsignal", "macdhist")
BASIC_FEATURES = ("pct-change", "raw_volume", "raw_price")
STANDARD_FEATURES = ("day_of_week", "hour_of_day")
ALL_FEATURES = PERIOD_FEATURES + TIMEFRAME_FEATURES + BASIC_FEATURES + STANDARD_FEATURES


def feature_subset(features: Iterable[str], name: str = "features") -> tuple[str, ...]:
    """``features`` as a tuple, checked to be a non-empty subset of :data:`ALL_FEATURES`.

    Args:
        features: feature names.
        name: the setting the error message names (e.g. ``lstm_optuna.features``).

    Raises:
        ValueError: no feature, or an unknown one (named).
    """
    wanted = tuple(features)
    unknown = [f for f in wanted if f not in ALL_FEATURES]
    if unknown or not wanted:
        raise InputError(
            f"{name} must be a non-empty subset of {list(ALL_FEATURES)}, but got unknown "
            f"{unknown} in {name}={list(wanted)}."
        )
    return wanted


@dataclass(frozen=True)
class FeatureConfig:
    """Which features the LSTM sees (FreqAI's ``feature_parameters``, same names).

    Attributes:
        include_timeframes: base timeframe first, then informative timeframes (each a multiple of
            the base).
        indicator_periods_candles: periods of the per-period indicators, in candles of each
            timeframe.
        include_shifted_candles: add copies shifted by 1..k candles of each timeframe's own
            timeframe, as FreqAI does (0 = none; the LSTM window
            already sees the past, so the default adds none).
        features: the subset of :data:`ALL_FEATURES` to build.
        DI_threshold, weight_factor, noise_standard_deviation, include_corr_pairlist,
            buffer_train_data_candles: FreqAI's data pipeline (:class:`strategy.pipeline.
            DataPipeline`, same names and meaning; all off by default). A search space's
            ``features`` section overrides the first four per trial.
    """

    include_timeframes: tuple[str, ...] = ("1h", "2h", "4h")
    indicator_periods_candles: tuple[int, ...] = (10, 20)
    include_shifted_candles: int = 0
    features: tuple[str, ...] = field(default=ALL_FEATURES)
    DI_threshold: float = 0.0
    weight_factor: float = 0.0
    noise_standard_deviation: float = 0.0
    include_corr_pairlist: tuple[str, ...] = ()
    buffer_train_data_candles: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "include_timeframes", tuple(self.include_timeframes))
        object.__setattr__(self, "indicator_periods_candles", tuple(self.indicator_periods_candles))
        object.__setattr__(self, "features", tuple(self.features))
        if not self.include_timeframes:
            raise InputError(
                "include_timeframes must name at least the base timeframe, but got ()."
            )
        seconds = [timeframe_to_seconds(tf) for tf in self.include_timeframes]
        base = seconds[0]
        for tf, sec in zip(self.include_timeframes[1:], seconds[1:], strict=True):
            if sec <= base or sec % base:
                raise InputError(
                    "each informative timeframe must be a multiple of the base timeframe "
                    f"{self.include_timeframes[0]!r}, but got {tf!r} in include_timeframes="
                    f"{self.include_timeframes}."
                )
        if len(set(self.include_timeframes)) != len(self.include_timeframes):
            raise InputError(f"include_timeframes has duplicates: {self.include_timeframes}.")
        bad = [p for p in self.indicator_periods_candles if not isinstance(p, int) or p < 2]
        if bad or not self.indicator_periods_candles:
            fail("indicator_periods_candles", self.indicator_periods_candles, "integers >= 2")
        check_int("include_shifted_candles", self.include_shifted_candles, 0)
        feature_subset(self.features)
        pipeline = DataPipeline(**{k: getattr(self, k) for k in PIPELINE_KEYS})
        for key in PIPELINE_KEYS:  # validated and normalised by the pipeline's own checks
            object.__setattr__(self, key, getattr(pipeline, key))

    @property
    def base_timeframe(self) -> str:
        return self.include_timeframes[0]

    @property
    def pipeline(self) -> DataPipeline:
        """FreqAI's data-pipeline settings of the run config."""
        return DataPipeline(**{k: getattr(self, k) for k in PIPELINE_KEYS})

    def to_dict(self) -> dict:
        """The feature set (what :func:`build_features` builds, the cache key); the pipeline's
        keys are in :attr:`pipeline`."""
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in asdict(self).items()
            if k not in PIPELINE_KEYS
        }


def warmup_start(
    span_start: pd.Timestamp | None, first_candle: pd.Timestamp, base_timeframe: str
) -> pd.Timestamp:
    """First candle date every indicator is computed from.

    Args:
        span_start: first instant of the study span (``data.start``), None: the first candle.
        first_candle: open time of the first base candle of the data file.
        base_timeframe: the base timeframe (``"1h"``...).

    Returns:
        ``max(first_candle, span_start - WARMUP_CANDLES * timeframe)`` (UTC): never before the data.
    """
    first = pd.Timestamp(first_candle)
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    if span_start is None:
        return first
    start = pd.Timestamp(span_start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    return max(first, start - WARMUP_CANDLES * timeframe_to_timedelta(base_timeframe))


def from_warmup(candles: pd.DataFrame, anchor: pd.Timestamp | None, compute, *args) -> dict:
    """``compute(candles, *args)`` on the rows with ``date >= anchor`` only, NaN on the rows before.

    What the freqtrade strategy's hooks use so that an indicator at a candle has exactly the value
    the study computes from the same warm-up start, however far back freqtrade loaded data.
    ``anchor=None`` computes on all rows.
    """
    if anchor is None:
        return compute(candles, *args)
    keep = np.asarray(pd.DatetimeIndex(candles["date"]) >= pd.Timestamp(anchor))
    first = int(np.argmax(keep)) if keep.any() else len(candles)
    out = compute(candles.iloc[first:], *args)
    padded = {}
    for name, values in out.items():
        full = np.full(len(candles), np.nan)
        full[first:] = np.asarray(values, dtype=np.float64)
        padded[name] = full
    return padded


def _arrays(candles: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(
        np.ascontiguousarray(candles[c].to_numpy(dtype=np.float64))
        for c in ("open", "high", "low", "close", "volume")
    )


def expand_all(candles: pd.DataFrame, period: int, wanted: tuple[str, ...] = ALL_FEATURES) -> dict:
    """Per-period features of one timeframe's candles, keyed ``%-<name>-period``."""
    _, high, low, close, _ = _arrays(candles)
    out: dict[str, np.ndarray] = {}
    if "cci" in wanted:
        out["%-cci-period"] = talib.CCI(high, low, close, timeperiod=period)
    if "rsi" in wanted:
        out["%-rsi-period"] = talib.RSI(close, timeperiod=period)
    if "momentum" in wanted:
        out["%-momentum-period"] = talib.MOM(close, timeperiod=period)
    if "ma" in wanted:
        out["%-ma-period"] = talib.SMA(close, timeperiod=period)
    if "roc" in wanted:
        out["%-roc-period"] = talib.ROC(close, timeperiod=period)
    if "bb_width" in wanted or "close-bb_lower" in wanted:
        bands = qtpylib.bollinger_bands(qtpylib.typical_price(candles), window=period, stds=2.2)
        lower = bands["lower"].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if "bb_width" in wanted:
                out["%-bb_width-period"] = (bands["upper"].to_numpy() - lower) / bands[
                    "mid"
                ].to_numpy()
            if "close-bb_lower" in wanted:
                out["%-close-bb_lower-period"] = close / lower
    return out


def expand_timeframe(candles: pd.DataFrame, wanted: tuple[str, ...] = ALL_FEATURES) -> dict:
    """Period-independent indicators of one timeframe (the seed's MACD)."""
    _, _, _, close, _ = _arrays(candles)
    out: dict[str, np.ndarray] = {}
    if any(f in wanted for f in TIMEFRAME_FEATURES):
        macd, signal, hist = talib.MACD(close, slowperiod=12, fastperiod=26)
        for name, values in (("macd", macd), ("macdsignal", signal), ("macdhist", hist)):
            if name in wanted:
                out[f"%-{name}"] = values
    return out


def expand_basic(candles: pd.DataFrame, wanted: tuple[str, ...] = ALL_FEATURES) -> dict:
    """pct-change, raw volume and raw price of one timeframe's candles."""
    _, _, _, close, volume = _arrays(candles)
    out: dict[str, np.ndarray] = {}
    if "pct-change" in wanted:
        pct = np.full_like(close, np.nan)
        pct[1:] = close[1:] / close[:-1] - 1.0
        out["%-pct-change"] = pct
    if "raw_volume" in wanted:
        out["%-raw_volume"] = volume
    if "raw_price" in wanted:
        out["%-raw_price"] = close
    return out


def standard(candles: pd.DataFrame, wanted: tuple[str, ...] = ALL_FEATURES) -> dict:
    """Calendar features of the base timeframe (from the candle's open time, UTC)."""
    date = pd.DatetimeIndex(candles["date"])
    out: dict[str, np.ndarray] = {}
    if "day_of_week" in wanted:
        out["%-day_of_week"] = date.day_of_week.to_numpy(dtype=np.float64)
    if "hour_of_day" in wanted:
        out["%-hour_of_day"] = date.hour.to_numpy(dtype=np.float64)
    return out


def timeframe_features(
    candles: pd.DataFrame, config: FeatureConfig, timeframe: str
) -> pd.DataFrame:
    """All per-timeframe features of one timeframe's candles, FreqAI names with ``_<tf>`` suffix."""
    cols: dict[str, np.ndarray] = {}
    for period in config.indicator_periods_candles:
        for name, values in expand_all(candles, period, config.features).items():
            cols[f"{name}_{period}_{timeframe}"] = values
    for part in (
        expand_timeframe(candles, config.features),
        expand_basic(candles, config.features),
    ):
        for name, values in part.items():
            cols[f"{name}_{timeframe}"] = values
    return pd.DataFrame(cols, index=candles.index)


def merge_informative(
    base_dates: pd.Series,
    informative_dates: pd.Series,
    informative: pd.DataFrame,
    base_timeframe: str,
    informative_timeframe: str,
) -> pd.DataFrame:
    """Align an informative timeframe's rows onto base candles without look-ahead.

    The informative candle opening at ``d`` closes at ``d + tf_inf``; it is attached to every base
    candle whose close ``date + tf_base`` is at or after that moment (forward-filled), which is what
    freqtrade's ``merge_informative_pair`` does.
    """
    avail = (
        pd.DatetimeIndex(informative_dates) + timeframe_to_timedelta(informative_timeframe)
    ).asi8
    close = (pd.DatetimeIndex(base_dates) + timeframe_to_timedelta(base_timeframe)).asi8
    pos = np.searchsorted(avail, close, side="right") - 1
    values = informative.to_numpy(dtype=np.float64)
    out = np.full((len(pos), values.shape[1]), np.nan)
    ok = pos >= 0
    out[ok] = values[pos[ok]]
    return pd.DataFrame(out, columns=informative.columns, index=base_dates.index)


def build_features(candles: Mapping[str, pd.DataFrame], config: FeatureConfig) -> pd.DataFrame:
    """Build the LSTM's input features for one pair.

    Args:
        candles: timeframe -> that timeframe's candles of the pair; must hold every timeframe of
            ``config.include_timeframes`` (the base one defines the rows).
        config: the feature set.

    Returns:
        float32 DataFrame, index aligned with the base candles, one column per feature; NaN in the
        warm-up of each indicator.

    Raises:
        KeyError: a timeframe of the config is missing from ``candles``.
    """
    missing = [tf for tf in config.include_timeframes if tf not in candles]
    if missing:
        raise KeyError(
            f"build_features needs candles for timeframes {missing} (include_timeframes="
            f"{config.include_timeframes}); got {sorted(candles)}."
        )
    base_tf = config.base_timeframe
    base = candles[base_tf]
    frames = [
        _with_shifts(timeframe_features(base, config, base_tf), config.include_shifted_candles)
    ]
    for tf in config.include_timeframes[1:]:
        inf = candles[tf]
        own = _with_shifts(timeframe_features(inf, config, tf), config.include_shifted_candles)
        frames.append(merge_informative(base["date"], inf["date"], own, base_tf, tf))
    frames.append(pd.DataFrame(standard(base, config.features), index=base.index))
    return pd.concat(frames, axis=1).astype(np.float32)


def corr_pair_features(
    base_dates: pd.Series,
    candles: Mapping[str, pd.DataFrame],
    config: FeatureConfig,
    pair: str,
) -> pd.DataFrame:
    """A correlated pair's features on another pair's base candles (FreqAI's
    ``include_corr_pairlist``).

    Every timeframe of ``config.include_timeframes`` (the base one too) is computed on the
    correlated pair's own candles, shifted like the pair's own features, and merged onto
    ``base_dates`` with :func:`merge_informative` (a candle is used from its close on; the base
    timeframe matches by open date): what FreqAI does with a corr pair. No calendar features.

    Args:
        base_dates: the open dates of the pair's base candles (the rows of the result).
        candles: timeframe -> the correlated pair's candles.
        config: the feature set.
        pair: the correlated pair (names the columns: ``%-rsi-period_10_SOL/USDT_1h``; a ``:`` is
            dropped from the name, as FreqAI drops it).

    Returns:
        float32 DataFrame indexed like ``base_dates``.
    """
    missing = [tf for tf in config.include_timeframes if tf not in candles]
    if missing:
        raise KeyError(f"corr_pair_features needs {pair} candles for timeframes {missing}.")
    tag = pair.replace(":", "")
    frames = []
    for tf in config.include_timeframes:
        own = candles[tf]
        block = _with_shifts(timeframe_features(own, config, tf), config.include_shifted_candles)
        block.columns = [_corr_name(c, tag, tf) for c in block.columns]
        frames.append(merge_informative(base_dates, own["date"], block, config.base_timeframe, tf))
    return pd.concat(frames, axis=1).astype(np.float32)


def _corr_name(column: str, pair: str, timeframe: str) -> str:
    """A correlated pair's column: ``%-rsi-period_10_1h_shift-1`` ->
    ``%-rsi-period_10_SOL/USDT_1h_shift-1``."""
    head, sep, tail = column.rpartition(f"_{timeframe}")
    return f"{head}_{pair}{sep}{tail}"


def _with_shifts(features: pd.DataFrame, shifts: int) -> pd.DataFrame:
    """``features`` followed by copies shifted by 1..``shifts`` candles of their own timeframe.

    FreqAI shifts each timeframe's indicators by that timeframe's candles before merging them onto
    the base candles (calendar features are never shifted); so does the study.
    """
    if not shifts:
        return features
    parts = [features.shift(k).add_suffix(f"_shift-{k}") for k in range(1, shifts + 1)]
    return pd.concat([features, *parts], axis=1)


def feature_cache_key(candles: Mapping[str, pd.DataFrame], config: FeatureConfig) -> str:
    """Hash of the candles (all timeframes used) and the config: the on-disk cache key."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps({"v": FEATURES_VERSION, "config": config.to_dict()}, sort_keys=True).encode()
    )
    for tf in config.include_timeframes:
        frame = candles[tf]
        digest.update(tf.encode())
        digest.update(frame["date"].astype("int64").to_numpy().tobytes())
        for col in ("open", "high", "low", "close", "volume"):
            digest.update(np.ascontiguousarray(frame[col].to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()[:32]


CHECKSUM_KEY = b"lstm_optuna.features.sha256"
"""Schema metadata key of a cache entry's content checksum (:func:`content_digest`)."""

_UNWRITABLE_CACHES: set[Path] = set()
"""Cache folders this process could not write to (warned about once)."""


def content_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a feature frame's column names and float32 values (a cache entry's checksum)."""
    digest = hashlib.sha256(json.dumps([str(c) for c in frame.columns]).encode())
    digest.update(np.ascontiguousarray(frame.to_numpy(dtype=np.float32)).tobytes())
    return digest.hexdigest()


def _read_entry(path: Path) -> pd.DataFrame | None:
    """A cache entry whose content matches its checksum, or None (with a warning) when it cannot
    be read, has no checksum or does not match it: a damaged entry is rebuilt, never trusted."""
    import pyarrow as pa
    import pyarrow.feather as feather

    try:
        table = feather.read_table(path)
        stored = (table.schema.metadata or {}).get(CHECKSUM_KEY)
        frame = table.to_pandas()
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        logger.warning("feature cache entry %s unreadable (%s); rebuilding it", path, exc)
        return None
    if stored is None or stored.decode() != content_digest(frame):
        logger.warning(
            "feature cache entry %s does not match its checksum (damaged, or written by an older "
            "version); rebuilding it",
            path,
        )
        return None
    return frame


def _write_entry(path: Path, features: pd.DataFrame) -> None:
    """Store ``features`` with their checksum under ``path``; a folder that cannot be written
    leaves the features uncached (warned about once per folder)."""
    import pyarrow as pa
    import pyarrow.feather as feather

    frame = features.reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = {**(table.schema.metadata or {}), CHECKSUM_KEY: content_digest(frame).encode()}
    tmp = path.with_suffix(f".tmp-{np.random.default_rng().integers(1 << 62)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        feather.write_feather(table.replace_schema_metadata(metadata), tmp)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if path.parent not in _UNWRITABLE_CACHES:
            _UNWRITABLE_CACHES.add(path.parent)
            logger.warning(
                "feature cache folder %s cannot be written (%s): features are computed without "
                "the cache (training.cache_dir)",
                path.parent,
                exc.strerror or exc,
            )


def cached_features(
    candles: Mapping[str, pd.DataFrame], config: FeatureConfig, cache_dir: Path | str | None
) -> pd.DataFrame:
    """:func:`build_features`, memoised on disk under ``cache_dir`` (``None`` disables the cache).

    The file is written to a temporary name and renamed, so concurrent workers never read a
    half-written file; whichever finishes first wins, the result is identical. Each entry carries
    a checksum of its content (:data:`CHECKSUM_KEY`): an entry that is damaged (or lacks one) is
    rebuilt with a warning. A cache folder that cannot be written leaves the features uncached,
    with a warning.
    """
    if cache_dir is None:
        return build_features(candles, config)
    path = Path(cache_dir) / f"features-{feature_cache_key(candles, config)}.feather"
    if path.is_file():
        frame = _read_entry(path)
        if frame is not None:
            frame.index = candles[config.base_timeframe].index
            return frame
    features = build_features(candles, config)
    _write_entry(path, features)
    return features
