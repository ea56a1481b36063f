"""Candle loading and validation (freqtrade's on-disk layout and gap filling).

Candles live where freqtrade keeps them: ``<datadir>/<exchange>/<BASE>_<QUOTE>-<timeframe>.feather``
with the columns ``date, open, high, low, close, volume`` (``date`` is the candle's open time, UTC).
Futures data lives where freqtrade's futures mode reads it (``data/history/datahandlers/
idatahandler.py`` ``_pair_data_filename``): ``<datadir>/<exchange>/futures/<BASE>_<QUOTE>_<SETTLE>-
<timeframe>-<candle type>.feather`` for the contract's candles (``futures``), its mark-price candles
(``mark``) and its funding rates (``funding_rate``: ``date, funding_rate``), pairs written
``BTC/USDT:USDT``. Every file is validated before use; a malformed file raises
:class:`CandleValidationError` that names the file, the row/date, the rule that failed and what was
expected. Missing candles (exchange outages) are filled exactly as freqtrade's backtesting fills
them (open = high = low = close = previous close, volume = 0), so this project and freqtrade see the
same candles; funding rates are never filled (freqtrade loads them with ``fill_up_missing=False``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from base.checks import fail
from base.errors import DataError, InputError
from base.paths import source_root

# The timeframe helpers live with the strategy (the lower layer); re-exported here for callers.
from strategy.timeframes import timeframe_to_seconds, timeframe_to_timedelta  # noqa: F401

logger = logging.getLogger(__name__)

DEFAULT_DATADIR = (source_root() or Path()) / "data"
"""The embedded dataset of a source checkout (real Binance candles, ``data/``); an installed
package ships no candles, so there it is ``data`` in the current directory (give a run config's
``data.datadir``, or ``--data-dir``)."""

COLUMNS = ("date", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
CANDLE_TYPES = ("spot", "futures", "mark")
"""freqtrade's candle types this project reads: spot candles, a perpetual's candles, its mark-price
candles (funding rates have their own loader, :func:`load_funding_rates`)."""
FUNDING_COLUMNS = ("date", "funding_rate")
"""Columns of a funding-rate file in freqtrade 2026.9's layout (one row per funding event)."""
FUNDING_TIMEFRAME = "1h"
"""Timeframe of Binance's funding-rate and mark-price files (freqtrade's ``funding_fee_timeframe``
and ``mark_ohlcv_timeframe`` for Binance)."""
DEFAULT_MAX_GAP_CANDLES = 100
GAP_WARN_SHARE = 0.01
"""Missing candles above this share of a file are logged as a warning (below: info)."""


class CandleValidationError(DataError):
    """A candle file breaks a validation rule; the message names file, row/date, rule,
    expectation."""


class PairNotFoundError(DataError, FileNotFoundError):
    """The requested pair/timeframe has no file; the message lists the pairs that are there."""


@dataclass(frozen=True)
class GapReport:
    """Missing candles found (and filled) in one file.

    Attributes:
        n_gaps: number of breaks in the candle grid.
        n_missing: number of absent candles (rows added by filling).
        largest: size of the largest gap, in candles.
        largest_at: open time of the first missing candle of the largest gap (None without gaps).
    """

    n_gaps: int
    n_missing: int
    largest: int
    largest_at: pd.Timestamp | None


def pair_to_filename(pair: str) -> str:
    """``BTC/USDT`` -> ``BTC_USDT`` (freqtrade's file naming for spot pairs)."""
    if not isinstance(pair, str) or "/" not in pair:
        raise InputError(f"pair must look like 'BTC/USDT', but got {pair=!r}.")
    return pair.replace("/", "_").replace(":", "_")


def candle_path(
    datadir: Path | str,
    pair: str,
    timeframe: str,
    exchange: str = "binance",
    candle_type: str = "spot",
) -> Path:
    """Path of a pair's feather file in freqtrade's layout.

    Args:
        datadir: folder holding ``<exchange>/``.
        pair: ``BASE/QUOTE`` (spot) or ``BASE/QUOTE:SETTLE`` (futures).
        timeframe: freqtrade timeframe.
        exchange: exchange sub-folder.
        candle_type: ``"spot"``, or a futures type (``"futures"``, ``"mark"``,
            ``"funding_rate"``), whose files sit in ``futures/`` with the type as suffix.
    """
    folder = Path(datadir) / exchange
    if candle_type == "spot":
        return folder / f"{pair_to_filename(pair)}-{timeframe}.feather"
    return folder / "futures" / f"{pair_to_filename(pair)}-{timeframe}-{candle_type}.feather"


def available_pairs(
    datadir: Path | str = DEFAULT_DATADIR,
    timeframe: str | None = None,
    exchange: str = "binance",
    candle_type: str = "spot",
) -> list[str]:
    """List the pairs present in ``datadir`` (optionally for one timeframe).

    Spot pairs come as ``BASE/QUOTE``; futures types (files in ``futures/``) as
    ``BASE/QUOTE:SETTLE``.
    """
    if candle_type == "spot":
        folder, suffix = Path(datadir) / exchange, ""
    else:
        folder, suffix = Path(datadir) / exchange / "futures", f"-{candle_type}"
    pattern = f"*-{timeframe or '*'}{suffix}.feather"
    pairs = set()
    for path in folder.glob(pattern):
        if not path.is_file():  # a folder, a dangling or looping link: no candles there
            continue
        stem = path.name[: -len(f"{suffix}.feather")]
        parts = stem.rsplit("-", 1)[0].split("_")
        if candle_type == "spot" and len(parts) == 2 and all(parts):
            pairs.add(f"{parts[0]}/{parts[1]}")
        elif candle_type != "spot" and len(parts) == 3 and all(parts):
            pairs.add(f"{parts[0]}/{parts[1]}:{parts[2]}")
    return sorted(pairs)


def _missing_file(path: Path, what: str, pair: str, pairs: list[str], folder: Path) -> NoReturn:
    raise PairNotFoundError(
        f"No {what} for {pair!r}: {path} {_not_a_file(path)}. Pairs with {what} in {folder}: "
        f"{', '.join(pairs) if pairs else 'none'}."
    )


def _not_a_file(path: Path) -> str:
    """Why ``path`` (not a regular file) cannot be read: ``"does not exist"``, ``"is a folder"``,
    ``"is a dangling symbolic link"`` or ``"is a symbolic link loop"``."""
    if path.is_dir():
        return "is a folder, not a file"
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:
            return "is a symbolic link loop"
        except OSError as exc:
            if "loop" in str(exc).lower() or getattr(exc, "errno", None) == 40:  # ELOOP
                return "is a symbolic link loop"
            return f"is a dangling symbolic link (to {os.readlink(path)})"
        return "is not a regular file"
    return "does not exist" if not path.exists() else "is not a regular file"


def load_candles(
    pair: str,
    timeframe: str,
    *,
    datadir: Path | str = DEFAULT_DATADIR,
    exchange: str = "binance",
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    fill_gaps: bool = True,
    max_gap_candles: int = DEFAULT_MAX_GAP_CANDLES,
    candle_type: str = "spot",
) -> pd.DataFrame:
    """Load, validate and gap-fill one pair's candles.

    Args:
        pair: ``BASE/QUOTE``, e.g. ``"BTC/USDT"`` (``BTC/USDT:USDT`` for a futures type).
        timeframe: freqtrade timeframe, e.g. ``"1h"``.
        datadir: folder holding ``<exchange>/`` (default: the embedded dataset).
        exchange: exchange sub-folder.
        start: first candle open time to keep (inclusive, UTC); ``None`` keeps all.
        end: candles with open time strictly before ``end`` are kept; ``None`` keeps all.
        fill_gaps: fill missing candles as freqtrade's backtesting does.
        max_gap_candles: a gap of more missing candles than this is an error (a hole in the data,
            not an outage); smaller gaps are filled and logged with counts (a warning above
            :data:`GAP_WARN_SHARE` of the candles, info below).
        candle_type: one of :data:`CANDLE_TYPES`: ``"spot"`` (default), ``"futures"`` (a
            perpetual's candles) or ``"mark"`` (its mark-price candles, whose volume is always 0,
            so the "volume all zero" rule does not apply).

    Returns:
        DataFrame with columns ``date`` (``datetime64[ns, UTC]``), ``open``, ``high``, ``low``,
        ``close``, ``volume`` (float64), a RangeIndex, one row per candle of the grid.

    Raises:
        PairNotFoundError: no file for ``pair``/``timeframe``; lists the pairs that exist.
        CandleValidationError: a rule is broken (see :func:`validate_candles`).
    """
    if candle_type not in CANDLE_TYPES:
        fail("candle_type", candle_type, f"one of {CANDLE_TYPES}")
    path = candle_path(datadir, pair, timeframe, exchange, candle_type)
    if not path.is_file():
        what = (
            f"{timeframe} candles"
            if candle_type == "spot"
            else f"{timeframe} {candle_type} candles"
        )
        present = available_pairs(datadir, timeframe, exchange, candle_type)
        _missing_file(path, what, pair, present, path.parent)
    frame = _read_feather(path)
    frame = validate_candles(
        frame, timeframe=timeframe, source=str(path), informative=candle_type != "mark"
    )
    gaps = find_gaps(frame["date"], timeframe)
    if gaps.n_missing:
        if gaps.largest > max_gap_candles:
            raise CandleValidationError(
                f"{path}: rule 'gap': {gaps.largest} missing candles in a row starting at "
                f"{gaps.largest_at}; expected at most max_gap_candles={max_gap_candles} "
                "(raise max_gap_candles to accept it)."
            )
        # Like freqtrade's fill-up message, but louder: rare outages (<= 1 % of the candles, the
        # exchange's maintenance windows) are routine, more than that deserves attention.
        share = gaps.n_missing / (len(frame) + gaps.n_missing)
        logger.log(
            logging.WARNING if share > GAP_WARN_SHARE else logging.INFO,
            "%s: %d gaps, %d missing candles (largest %d at %s)%s",
            path,
            gaps.n_gaps,
            gaps.n_missing,
            gaps.largest,
            gaps.largest_at,
            ", filled as freqtrade does" if fill_gaps else "",
        )
        if fill_gaps:
            frame = fill_missing_candles(frame, timeframe)
    if start is not None:
        frame = frame[frame["date"] >= to_utc(start)]
    if end is not None:
        frame = frame[frame["date"] < to_utc(end)]
    return frame.reset_index(drop=True)


def _read_feather(path: Path) -> pd.DataFrame:
    try:
        return pd.read_feather(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise CandleValidationError(f"{path}: cannot be read as a feather file ({exc}).") from exc


def load_funding_rates(
    pair: str,
    *,
    datadir: Path | str = DEFAULT_DATADIR,
    exchange: str = "binance",
    timeframe: str = FUNDING_TIMEFRAME,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Load and validate one perpetual's funding rates, as freqtrade's futures backtesting reads
    them.

    The file is ``<datadir>/<exchange>/futures/<BASE>_<QUOTE>_<SETTLE>-<timeframe>-funding_rate
    .feather`` with one row per funding event: freqtrade 2026.9's layout ``date, funding_rate``, or
    its older OHLCV layout with the rate in ``open`` (which freqtrade still reads). Like freqtrade
    (``IDataHandler.ohlcv_load``) the dates are floored to the second; hours without an event have
    no row and nothing is filled.

    Args:
        pair: ``BASE/QUOTE:SETTLE``, e.g. ``"BTC/USDT:USDT"``.
        datadir: folder holding ``<exchange>/`` (default: the embedded dataset).
        exchange: exchange sub-folder.
        timeframe: the funding timeframe (:data:`FUNDING_TIMEFRAME` for Binance).
        start: first event time to keep (inclusive, UTC); None keeps all.
        end: events strictly before ``end`` are kept; None keeps all.

    Returns:
        DataFrame ``date`` (``datetime64[ns, UTC]``), ``funding_rate`` (float64, the rate per event,
        0.0001 = 0.01 %), sorted, a RangeIndex.

    Raises:
        PairNotFoundError: no file; lists the pairs that have one.
        CandleValidationError: naming the file, the row/date, the rule and what was expected.
    """
    path = candle_path(datadir, pair, timeframe, exchange, "funding_rate")
    if not path.is_file():
        present = available_pairs(datadir, timeframe, exchange, "funding_rate")
        _missing_file(path, f"{timeframe} funding rates", pair, present, path.parent)
    frame = validate_funding_rates(_read_feather(path), source=str(path))
    if start is not None:
        frame = frame[frame["date"] >= to_utc(start)]
    if end is not None:
        frame = frame[frame["date"] < to_utc(end)]
    return frame.reset_index(drop=True)


def validate_funding_rates(frame: pd.DataFrame, *, source: str = "<funding rates>") -> pd.DataFrame:
    """Check a funding-rate frame; return ``date, funding_rate`` with canonical dtypes.

    Rules: columns exactly :data:`FUNDING_COLUMNS` or freqtrade's older OHLCV layout (rate in
    ``open``); at least one event; ``date`` a UTC datetime, floored to the second as freqtrade does,
    strictly increasing; rates finite.

    Raises:
        CandleValidationError: at the first broken rule, naming ``source``, the row, its date and
            what was expected.
    """
    columns = list(frame.columns)
    if columns == list(FUNDING_COLUMNS):
        rate_column = "funding_rate"
    elif columns == list(COLUMNS):
        rate_column = "open"  # freqtrade's legacy layout: the rate in "open"
    else:
        raise CandleValidationError(
            f"{source}: rule 'columns': got {columns}; expected exactly {list(FUNDING_COLUMNS)} "
            f"(or freqtrade's older layout {list(COLUMNS)} with the rate in 'open')."
        )
    if len(frame) == 0:
        raise CandleValidationError(f"{source}: rule 'rows': the file has no funding events.")
    date = _utc_dates(frame, source).dt.floor("s")
    ns = date.astype("int64").to_numpy()
    bad = np.flatnonzero(np.diff(ns) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise _fail(
            source,
            i,
            date.iloc[i],
            "sorted dates",
            f"does not come after {date.iloc[i - 1]}; expected one event per date, in increasing "
            "order.",
        )
    rate = _finite_column(frame, rate_column, date, source, "a finite funding rate")
    return pd.DataFrame({"date": date.reset_index(drop=True), "funding_rate": rate})


def to_utc(value: object, name: str = "date") -> pd.Timestamp:
    """``value`` as a UTC timestamp: a naive date is taken as UTC, an aware one is converted.

    Raises:
        ValueError: ``value`` is not a date (the message names ``name`` and the value).
    """
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        fail(name, value, "a date (e.g. '2024-01-01')")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _fail(source: str, row: int, date: object, rule: str, detail: str) -> CandleValidationError:
    return CandleValidationError(f"{source}: row {row} (date {date}): rule '{rule}': {detail}")


def validate_candles(
    frame: pd.DataFrame, *, timeframe: str, source: str = "<candles>", informative: bool = True
) -> pd.DataFrame:
    """Check a candle frame against every rule; return it with canonical dtypes and column order.

    Rules: exact columns ``date, open, high, low, close, volume``; ``date`` is a UTC datetime;
    dates strictly increasing (no unsorted rows, no duplicates) and on the timeframe grid; no NaN or
    inf; prices > 0 and volume >= 0; ``low <= min(open, close)`` and ``high >= max(open, close)``
    (which implies ``high >= low``); with ``informative`` (all but mark candles), the rules of
    :func:`check_informative`.

    Raises:
        CandleValidationError: at the first broken rule, naming ``source``, the row, its date and
            what was expected.
    """
    _check_columns(frame, source)
    date = _utc_dates(frame, source)
    _check_dates(date, timeframe, source)
    values = _finite_values(frame, date, source)
    _check_prices(values, date, source)
    out = pd.DataFrame({"date": date.reset_index(drop=True)})
    for col in COLUMNS[1:]:
        out[col] = values[col]
    if informative:
        check_informative(out, source=source)
    return out


def _check_columns(frame: pd.DataFrame, source: str) -> None:
    """Rules 'columns' and 'rows': exactly ``COLUMNS``, at least one candle."""
    columns = list(frame.columns)
    missing = [c for c in COLUMNS if c not in columns]
    extra = [c for c in columns if c not in COLUMNS]
    if missing or extra:
        raise CandleValidationError(
            f"{source}: rule 'columns': missing {missing}, unexpected {extra}; "
            f"expected exactly {list(COLUMNS)}."
        )
    if len(frame) == 0:
        raise CandleValidationError(f"{source}: rule 'rows': the file has no candles.")


def _utc_dates(frame: pd.DataFrame, source: str) -> pd.Series:
    """Rule 'date dtype': the ``date`` column as ``datetime64[ns, UTC]``."""
    date = frame["date"]
    if not isinstance(date.dtype, pd.DatetimeTZDtype):
        raise CandleValidationError(
            f"{source}: rule 'date dtype': column 'date' has dtype {date.dtype}; "
            "expected a timezone-aware UTC datetime (datetime64[ns, UTC])."
        )
    return date.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")


def _check_dates(date: pd.Series, timeframe: str, source: str) -> None:
    """Rules 'sorted dates', 'unique dates' and 'timeframe grid'."""
    ns = date.astype("int64").to_numpy()
    step = np.diff(ns)
    bad = np.flatnonzero(step < 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise _fail(
            source,
            i,
            date.iloc[i],
            "sorted dates",
            f"comes after {date.iloc[i - 1]}; expected dates in increasing order.",
        )
    bad = np.flatnonzero(step == 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise _fail(
            source,
            i,
            date.iloc[i],
            "unique dates",
            f"duplicates row {i - 1}; expected one candle per date.",
        )
    tf_ns = timeframe_to_seconds(timeframe) * 1_000_000_000
    bad = np.flatnonzero(ns % tf_ns != 0)
    if bad.size:
        i = int(bad[0])
        raise _fail(
            source,
            i,
            date.iloc[i],
            "timeframe grid",
            f"is not a multiple of {timeframe} since the epoch; expected candle open times "
            f"on the {timeframe} grid.",
        )


def _finite_column(
    frame: pd.DataFrame, col: str, date: pd.Series, source: str, expected: str
) -> np.ndarray:
    """Rules 'numeric' and 'finite' for one column: its values as a float64 array."""
    try:
        values = frame[col].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CandleValidationError(
            f"{source}: rule 'numeric': column {col!r} is not numeric ({exc})."
        ) from exc
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise _fail(
            source, i, date.iloc[i], "finite", f"{col}={float(values[i])!r}; expected {expected}."
        )
    return values


def _finite_values(frame: pd.DataFrame, date: pd.Series, source: str) -> dict[str, np.ndarray]:
    """Rules 'numeric' and 'finite': the price and volume columns as float64 arrays."""
    return {
        col: _finite_column(frame, col, date, source, "a finite number (no NaN/inf)")
        for col in COLUMNS[1:]
    }


def _check_prices(values: dict[str, np.ndarray], date: pd.Series, source: str) -> None:
    """Rules 'positive price', 'volume', 'high >= low' and 'OHLC consistency'."""
    for col in PRICE_COLUMNS:
        bad = np.flatnonzero(values[col] <= 0)
        if bad.size:
            i = int(bad[0])
            raise _fail(
                source,
                i,
                date.iloc[i],
                "positive price",
                f"{col}={float(values[col][i])!r}; expected a price > 0.",
            )
    bad = np.flatnonzero(values["volume"] < 0)
    if bad.size:
        i = int(bad[0])
        raise _fail(
            source,
            i,
            date.iloc[i],
            "volume",
            f"volume={float(values['volume'][i])!r}; expected volume >= 0.",
        )
    o, h, lo, c = (values[k] for k in PRICE_COLUMNS)
    bad = np.flatnonzero(h < lo)
    if bad.size:
        i = int(bad[0])
        raise _fail(
            source,
            i,
            date.iloc[i],
            "high >= low",
            f"high={float(h[i])!r} < low={float(lo[i])!r}; expected high >= low.",
        )
    bad = np.flatnonzero((h < np.maximum(o, c)) | (lo > np.minimum(o, c)))
    if bad.size:
        i = int(bad[0])
        raise _fail(
            source,
            i,
            date.iloc[i],
            "OHLC consistency",
            f"open={float(o[i])!r} high={float(h[i])!r} low={float(lo[i])!r} "
            f"close={float(c[i])!r}; expected "
            "low <= min(open, close) and high >= max(open, close).",
        )


def check_informative(frame: pd.DataFrame, *, source: str = "<candles>", span: str = "") -> None:
    """Refuse candles no model can learn from: all volume zero, or one flat price throughout.

    Such a pair passes every row rule but has no usable feature, so it would be skipped in every
    fold without a word.

    Args:
        frame: validated candles.
        source: named in the message (the file).
        span: appended to the message when ``frame`` is a slice of the file (e.g. the study span).

    Raises:
        CandleValidationError: naming ``source`` and the rule.
    """
    if len(frame) == 0:
        return
    where = f" {span}" if span else ""
    if not np.any(frame["volume"].to_numpy() > 0):
        raise CandleValidationError(
            f"{source}: rule 'volume all zero': every candle{where} has volume 0; expected traded "
            "candles (volume > 0 somewhere)."
        )
    prices = frame[list(PRICE_COLUMNS)].to_numpy()
    if np.all(prices == prices[0, 0]):
        raise CandleValidationError(
            f"{source}: rule 'flat prices': every candle{where} has open = high = low = close = "
            f"{float(prices[0, 0])!r}; expected prices that move."
        )


def find_gaps(dates: pd.Series, timeframe: str) -> GapReport:
    """Count the breaks in a sorted, on-grid date column.

    Args:
        dates: candle open times, validated (sorted, unique, on the grid).
        timeframe: freqtrade timeframe.
    """
    ns = dates.astype("int64").to_numpy()
    tf_ns = timeframe_to_seconds(timeframe) * 1_000_000_000
    missing = np.diff(ns) // tf_ns - 1
    where = np.flatnonzero(missing > 0)
    if where.size == 0:
        return GapReport(0, 0, 0, None)
    k = int(where[np.argmax(missing[where])])
    return GapReport(
        n_gaps=int(where.size),
        n_missing=int(missing[where].sum()),
        largest=int(missing[k]),
        largest_at=dates.iloc[k] + pd.Timedelta(tf_ns, unit="ns"),
    )


def fill_missing_candles(frame: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Fill missing candles the way freqtrade's ``ohlcv_fill_up_missing_data`` does.

    Every absent candle of the grid between the first and last date gets open = high = low = close
    = the previous candle's close and volume = 0.
    """
    tf_ns = timeframe_to_seconds(timeframe) * 1_000_000_000
    ns = frame["date"].astype("int64").to_numpy()
    grid = ns[0] + tf_ns * np.arange((ns[-1] - ns[0]) // tf_ns + 1, dtype=np.int64)
    if grid.size == ns.size:
        return frame.reset_index(drop=True)
    pos = np.searchsorted(grid, ns)
    present = np.zeros(grid.size, dtype=bool)
    present[pos] = True
    # index of the last present candle at or before each grid slot
    last = np.maximum.accumulate(np.where(present, np.arange(grid.size), 0))
    src = np.empty(grid.size, dtype=np.int64)
    src[pos] = np.arange(ns.size)
    prev_row = src[last]
    close = frame["close"].to_numpy()[prev_row]
    out = pd.DataFrame({"date": pd.to_datetime(grid, utc=True).astype("datetime64[ns, UTC]")})
    for col in PRICE_COLUMNS:
        filled = close.copy()
        filled[pos] = frame[col].to_numpy()
        out[col] = filled
    volume = np.zeros(grid.size)
    volume[pos] = frame["volume"].to_numpy()
    out["volume"] = volume
    return out
