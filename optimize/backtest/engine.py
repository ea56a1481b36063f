"""Vectorised backtest engine that trades exactly like freqtrade's backtesting.

:func:`backtest` takes candles and boolean signals (computed on each candle's close) and returns
the trades, freqtrade-style metrics, a per-candle mark-to-market equity curve and the positions.
The trade loop is an O(n) numba kernel (:mod:`optimize.backtest._kernel`); this module validates
input, lines pairs up on one candle grid and turns the kernel's arrays into DataFrames.

freqtrade semantics reproduced (freqtrade 2026.9, spot and futures):

* A signal on candle ``t`` (at its close) fills at the open of candle ``t + 1``; an entry signal
  together with an exit signal (or the opposite entry) on the same candle is ignored; no entry
  on the last candle; one open trade per pair.
* Fees on entry and exit; ``profit_ratio`` and ``profit_abs`` are computed like freqtrade's trade
  model (net of both fees, ``profit_abs`` rounded to 8 decimals).
* Exit checks on every candle a trade is open, the opening candle included, in freqtrade's order:
  exit signal (filled at the open), stoploss (against the low; filled at the stop price, or at
  the open when the candle opens beyond the stop), ROI (trade age in minutes against
  ``minimal_roi``, profit measured at the high; filled at the ROI price clipped to the candle, or
  at the open when a new ROI step starts on this candle below the open), trailing stop (raised
  from the candle's high before the low is checked; worst-case fill inside the opening candle).
* Stop and exit prices rounded to the tick size freqtrade infers from the candles (the maximum
  number of decimals per calendar month), amounts truncated to the market's amount step when
  one is given. The inferred tick stands in for a static market property (the exchange's tick
  size) but is, like in freqtrade, taken over the whole calendar month; it moves prices by less
  than one tick and is kept for exact parity. ``price_precision=0.01`` (a fixed tick) or None
  uses no candle at all.
* Several pairs: pairs with open trades are processed first each candle (in opening order), then
  the others in the given order; ``max_open_trades`` and freqtrade's wallet: with
  ``stake_amount="unlimited"`` each entry stakes ``available / (max_open_trades - open trades)``
  where ``available = (free + staked) * tradable_balance_ratio - staked``.
* Trades open at the end are closed at the open of the last candle with reason ``force_exit``.
* Futures (``settings.trading_mode="futures"``; ``docs/futures.md``): longs and shorts at the
  settings' leverage capped by the pair's leverage tiers, amounts and stake with leverage, the
  market's amount step and minimum/maximum stake, stoploss, trailing stop and ROI on the leveraged
  return, funding fees from each pair's :class:`~optimize.backtest.futures.FuturesPair` (funding
  rates joined with mark candles) booked on every candle, the isolated-margin liquidation price
  of Binance and the ``liquidation`` exit, and freqtrade's reversal (an exit against the signal's
  direction lets the opposite entry open on the same candle).

Not modelled (freqtrade features this project does not use): custom callbacks (custom stoploss,
exit price, stake), position adjustment, protections, order timeouts, ``timeframe_detail``, cross
margin, and in spot mode the exchange's minimum stake.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from optimize.backtest import _kernel as kernel
from optimize.backtest import _precision as precision
from optimize.backtest import _records as records
from optimize.backtest import metrics as _metrics
from optimize.backtest.futures import FuturesPair, max_notional
from optimize.backtest.settings import BacktestSettings, power_of_ten_decimals
from optimize.data import PRICE_COLUMNS
from strategy.timeframes import timeframe_to_timedelta

logger = logging.getLogger(__name__)

TRADE_COLUMNS = (
    "pair",
    "open_date",
    "close_date",
    "open_rate",
    "close_rate",
    "amount",
    "stake_amount",
    "profit_ratio",
    "profit_abs",
    "exit_reason",
    "is_short",
    "trade_duration",
)
"""The trades frame's columns of every run (what the spot engine has always returned)."""
FUTURES_TRADE_COLUMNS = ("leverage", "funding_fees")
"""Columns the trades frame has after :data:`TRADE_COLUMNS`: the trade's leverage (1.0 in spot
mode) and its funding fees in stake currency with freqtrade's sign (> 0 received, < 0 paid; 0.0 in
spot mode), which ``profit_abs`` and ``profit_ratio`` include."""
_REASON_DTYPE = pd.CategoricalDtype(list(records.EXIT_REASONS))
DEFAULT_PAIR = "PAIR"
"""Name given to a single DataFrame passed without a pair name."""


@dataclass(frozen=True)
class BacktestResult:
    """Outcome of :func:`backtest`.

    Attributes:
        trades: one row per trade, columns :data:`TRADE_COLUMNS` then
            :data:`FUTURES_TRADE_COLUMNS` (dates UTC, ``trade_duration`` in minutes), ordered by
            close (force exits last).
        metrics: :func:`optimize.backtest.metrics.summarize` of the run.
        equity: mark-to-market balance after each candle's close (open trades valued at the close
            net of the exit fee, with their leverage and the funding fees booked so far), indexed
            by candle date; the last value is the final balance after force exits.
        positions: +1 long / -1 short / 0 flat per candle (rows) and pair (columns).
        settings: the settings used.
    """

    trades: pd.DataFrame
    metrics: dict[str, float]
    equity: pd.Series
    positions: pd.DataFrame
    settings: BacktestSettings

    @property
    def returns(self) -> pd.Series:
        """Per-candle simple returns of the equity curve (first candle against the start wallet)."""
        curve = np.concatenate(([self.settings.dry_run_wallet], self.equity.to_numpy()))
        return pd.Series(_metrics.period_returns(curve), index=self.equity.index, name="returns")

    @property
    def daily_returns(self) -> pd.Series:
        """Day-over-day returns of the equity curve (see
        :func:`optimize.backtest.metrics.daily_returns`)."""
        return _metrics.daily_returns(self.equity)


def _as_frames(candles: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    if isinstance(candles, pd.DataFrame):
        return {DEFAULT_PAIR: candles}
    if isinstance(candles, Mapping) and candles:
        for pair, frame in candles.items():
            if not isinstance(frame, pd.DataFrame):
                raise TypeError(
                    f"candles[{pair!r}] must be a DataFrame, but got {type(frame).__name__}."
                )
        return dict(candles)
    raise ValueError(
        "candles must be a DataFrame or a non-empty dict pair -> DataFrame, but got "
        f"{type(candles).__name__}."
    )


def _check_candles(
    pair: str, frame: pd.DataFrame, tf: pd.Timedelta
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Validate one pair's candles; return its UTC dates (ns) and prices as ``(4, n)`` float64."""
    missing = [c for c in ("date", *PRICE_COLUMNS) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"candles[{pair!r}] lacks columns {missing}; expected date, open, high, low, close."
        )
    if len(frame) < 2:
        raise ValueError(f"candles[{pair!r}] needs at least 2 candles, but got {len(frame)}.")
    dates = pd.DatetimeIndex(frame["date"])
    if dates.tz is None:
        raise ValueError(
            f"candles[{pair!r}]['date'] must be timezone-aware UTC, but got naive dates."
        )
    dates = dates.as_unit("ns")
    steps = np.diff(dates.asi8)
    bad = np.flatnonzero(steps != tf.value)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"candles[{pair!r}] must be on a gapless {tf} grid (load them with "
            f"optimize.data.load_candles, which fills gaps as freqtrade does), but got "
            f"date[{i}]={dates[i]} followed by date[{i + 1}]={dates[i + 1]}."
        )
    prices = np.stack([frame[col].to_numpy(dtype=np.float64) for col in PRICE_COLUMNS])
    finite = np.isfinite(prices) & (prices > 0)
    if not finite.all():
        col, row = np.argwhere(~finite)[0]
        raise ValueError(
            f"candles[{pair!r}] prices must be finite and > 0, but got "
            f"{PRICE_COLUMNS[col]}={prices[row, col]!r} at row {row} ({dates[row]})."
        )
    o, h, lo, c = prices
    broken = (h < lo) | (o > h) | (o < lo) | (c > h) | (c < lo)
    if broken.any():
        row = int(np.argmax(broken))
        raise ValueError(
            f"candles[{pair!r}] must satisfy low <= open, close <= high, but got row {row} "
            f"({dates[row]}): open={o[row]}, high={h[row]}, low={lo[row]}, close={c[row]}."
        )
    return dates.tz_convert("UTC"), prices


def _signal(name: str, pair: str, value: Any, dates: pd.DatetimeIndex) -> np.ndarray:
    indexed = isinstance(value, pd.Series) and isinstance(value.index, pd.DatetimeIndex)
    if indexed and not value.index.equals(dates):
        raise ValueError(
            f"{name}[{pair!r}] is indexed by dates that differ from the candles' dates; "
            "align it to the candles (or pass a plain array)."
        )
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.shape[0] != len(dates):
        raise ValueError(
            f"{name}[{pair!r}] must be a 1-D array aligned with the {len(dates)} candles, but got "
            f"shape {arr.shape}."
        )
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name}[{pair!r}] must be bool or 0/1 numbers, but got dtype {arr.dtype}."
        )
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0)  # freqtrade treats NaN as "no signal"
    odd = (arr != 0) & (arr != 1)
    if odd.any():
        i = int(np.argmax(odd))
        raise ValueError(
            f"{name}[{pair!r}] must hold only 0/1 (or bool), but got {arr[i]!r} at row {i}."
        )
    return arr == 1


def _signals_for(
    name: str, signals: Any, frames: dict[str, pd.DataFrame], dates: dict[str, pd.DatetimeIndex]
) -> dict[str, np.ndarray] | None:
    if signals is None:
        return None
    if isinstance(signals, Mapping):
        extra = set(signals) - set(frames)
        lacking = set(frames) - set(signals)
        if extra or lacking:
            raise ValueError(
                f"{name} must have exactly the candles' pairs {sorted(frames)}, but got "
                f"{sorted(signals)}."
            )
        return {p: _signal(name, p, signals[p], dates[p]) for p in frames}
    if len(frames) != 1:
        raise ValueError(
            f"{name} must be a dict pair -> signals when several pairs are backtested."
        )
    pair = next(iter(frames))
    return {pair: _signal(name, pair, signals, dates[pair])}


def candle_price_decimals(frame: pd.DataFrame) -> np.ndarray:
    """Tick decimals freqtrade uses for each candle's trades (``get_tick_size_over_time``).

    freqtrade counts the decimals of open/high/low/close (14 significant digits), takes the
    maximum per calendar month and uses the month's value for trades opened in it; a month
    without any decimal digit takes the previous month's value. -1 where none is known.

    Args:
        frame: one pair's candles (``date``, ``open``, ``high``, ``low``, ``close``).

    Returns:
        int64 array, one entry per candle.
    """
    dates = pd.DatetimeIndex(frame["date"])
    prices = np.stack([frame[col].to_numpy(dtype=np.float64) for col in PRICE_COLUMNS])
    return _tick_decimals(dates, prices)


def _tick_decimals(dates: pd.DatetimeIndex, prices: np.ndarray) -> np.ndarray:
    utc = dates.tz_convert("UTC") if dates.tz is not None else dates
    month = utc.as_unit("ns").asi8.view("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    return precision.monthly_tick_decimals(np.ascontiguousarray(prices), month)


def backtest(
    candles: pd.DataFrame | Mapping[str, pd.DataFrame],
    enter_long: Any,
    exit_long: Any,
    *,
    enter_short: Any = None,
    exit_short: Any = None,
    settings: BacktestSettings | None = None,
    futures: Mapping[str, FuturesPair] | None = None,
) -> BacktestResult:
    """Backtest signals on candles with freqtrade's trading rules (see the module docstring).

    Args:
        candles: one pair's candles (DataFrame with ``date`` UTC, ``open``, ``high``, ``low``,
            ``close``) or a dict ``pair -> DataFrame`` (pairs may start and end at different
            candles but must share the timeframe grid). Each pair's candles must be gapless.
        enter_long, exit_long: bool (or 0/1) arrays aligned with the candles, or dicts
            ``pair -> array``; the value at candle ``t`` is the signal computed at its close.
        enter_short, exit_short: same for shorts; only with ``settings.can_short``.
        settings: :class:`BacktestSettings` (default: freqtrade's defaults, see there).
        futures: futures mode only: ``pair -> FuturesPair`` (funding rates, mark candles, market
            rules; :func:`optimize.backtest.futures.load_futures_pair`) for exactly the candles'
            pairs. None trades the futures arithmetic (leverage, stoploss and ROI on the leveraged
            return) without funding, market limits, leverage cap or liquidation.

    Returns:
        :class:`BacktestResult`.

    Raises:
        ValueError: malformed candles or signals (the message names pair, field and row), or
            ``futures`` given in spot mode or not for exactly the candles' pairs.
    """
    settings = _check_settings(settings, enter_short, exit_short)
    tf = timeframe_to_timedelta(settings.timeframe)
    frames = _as_frames(candles)
    futures = _check_futures(futures, frames, settings)
    checked = {p: _check_candles(p, f, tf) for p, f in frames.items()}
    dates = {p: d for p, (d, _) in checked.items()}
    signals = {
        name: _signals_for(name, value, frames, dates)
        for name, value in zip(
            SIGNAL_NAMES, (enter_long, exit_long, enter_short, exit_short), strict=True
        )
    }
    if signals["enter_long"] is None or signals["exit_long"] is None:
        raise ValueError("enter_long and exit_long are required (use all-False arrays for none).")
    grid = _common_grid(dates, tf)
    market = _market(grid, tf, checked, signals, settings, futures)
    tf_min = int(tf / pd.Timedelta(minutes=1))
    outcome = kernel.simulate(market, kernel_rules(settings, tf_min), roi_table(settings))
    return _result(outcome, list(frames), grid, tf_min, settings)


SIGNAL_NAMES = ("enter_long", "exit_long", "enter_short", "exit_short")
"""The four signal inputs of :func:`backtest` (fields of the kernel's candle records)."""


def _check_settings(
    settings: BacktestSettings | None, enter_short: Any, exit_short: Any
) -> BacktestSettings:
    """The settings to use (freqtrade's defaults for None); shorts only with ``can_short``."""
    settings = BacktestSettings() if settings is None else settings
    if not isinstance(settings, BacktestSettings):
        raise TypeError(f"settings must be a BacktestSettings, but got {type(settings).__name__}.")
    if not settings.can_short and (enter_short is not None or exit_short is not None):
        raise ValueError(
            "enter_short/exit_short were given but settings.can_short is False; enable "
            "can_short or pass None."
        )
    return settings


def _check_futures(
    futures: Mapping[str, FuturesPair] | None,
    frames: dict[str, pd.DataFrame],
    settings: BacktestSettings,
) -> dict[str, FuturesPair] | None:
    """The per-pair futures records: only in futures mode, for exactly the candles' pairs."""
    if futures is None:
        return None
    if not settings.futures:
        raise ValueError(
            "futures data was given but settings.trading_mode is 'spot'; set "
            "trading_mode='futures' or pass futures=None."
        )
    if not isinstance(futures, Mapping) or set(futures) != set(frames):
        got = sorted(futures) if isinstance(futures, Mapping) else type(futures).__name__
        raise ValueError(
            f"futures must map exactly the candles' pairs {sorted(frames)} to a FuturesPair, but "
            f"got {got}."
        )
    for pair, record in futures.items():
        if not isinstance(record, FuturesPair):
            raise TypeError(
                f"futures[{pair!r}] must be a FuturesPair, but got {type(record).__name__}."
            )
    return dict(futures)


def _common_grid(dates: dict[str, pd.DatetimeIndex], tf: pd.Timedelta) -> pd.DatetimeIndex:
    """The candle grid spanning all pairs; every pair's dates must lie on it."""
    pairs = list(dates)
    if len(pairs) == 1:
        return dates[pairs[0]]
    start = min(d[0] for d in dates.values())
    end = max(d[-1] for d in dates.values())
    off_grid = [p for p in pairs if dates[p][0] != start + ((dates[p][0] - start) // tf) * tf]
    if off_grid:
        raise ValueError(f"candles of {off_grid} are not on the same {tf} grid as the other pairs.")
    return pd.date_range(start, end, freq=tf)


def _market(
    grid: pd.DatetimeIndex,
    tf: pd.Timedelta,
    checked: dict[str, tuple[pd.DatetimeIndex, np.ndarray]],
    signals: dict[str, dict[str, np.ndarray] | None],
    settings: BacktestSettings,
    futures: dict[str, FuturesPair] | None = None,
) -> records.Market:
    """Prices, signals, precisions and (futures mode) market rules and funding events of all pairs
    laid out on ``grid`` for the kernel."""
    pairs = list(checked)
    candles = np.zeros((len(grid), len(pairs)), dtype=records.CANDLE_DTYPE)
    for name in PRICE_COLUMNS:
        candles[name] = 1.0
    candles["price_dec"] = -1
    first = np.empty(len(pairs), dtype=np.int64)
    last = np.empty(len(pairs), dtype=np.int64)
    fixed_dec = (
        None
        if settings.price_precision in ("candles", None)
        else power_of_ten_decimals("price_precision", settings.price_precision)
    )
    for j, pair in enumerate(pairs):
        pair_dates, pair_prices = checked[pair]
        lo_i = int((pair_dates[0] - grid[0]) // tf)
        hi_i = lo_i + len(pair_dates)
        first[j], last[j] = lo_i, hi_i - 1
        rows = candles[lo_i:hi_i, j]
        for k, name in enumerate(PRICE_COLUMNS):
            rows[name] = pair_prices[k]
        for name in SIGNAL_NAMES:
            if signals[name] is not None:
                rows[name] = signals[name][pair]
        if settings.price_precision == "candles":
            rows["price_dec"] = _tick_decimals(pair_dates, pair_prices)
            market = futures[pair].market if futures else None
            if market is not None and market.price_tick is not None:
                # freqtrade's get_pair_precision: the market's tick where the candles give none
                unknown = rows["price_dec"] < 0
                rows["price_dec"][unknown] = market.price_decimals
        elif fixed_dec is not None:
            rows["price_dec"] = fixed_dec
    amount_dec = np.array(
        [_amount_decimals(settings.amount_precision, p, futures) for p in pairs], dtype=np.int64
    )
    if not settings.futures:
        return records.Market(candles, first, last, amount_dec)
    perps, tiers, events = _perpetuals(pairs, grid, futures)
    return records.Market(candles, first, last, amount_dec, perps, tiers, events)


def _perpetuals(
    pairs: list[str], grid: pd.DatetimeIndex, futures: dict[str, FuturesPair] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's futures records: per pair its market limits and where its leverage tiers and
    funding events are in the shared arrays.

    Each funding event sits at ``2 * row`` when it falls on candle ``row``'s open and at
    ``2 * row - 1`` when it falls inside candle ``row - 1``; a trade opened on row ``o`` books the
    events from ``2 * o`` to ``2 * t`` on row ``t``, i.e. those between its open and the current
    candle, both included (``Exchange.calculate_funding_fees``).
    """
    perps = np.zeros(len(pairs), records.PERP_DTYPE)
    for name in ("min_amount", "min_cost", "max_amount", "max_cost"):
        perps[name] = np.nan
    perps["contract_size"] = 1.0
    tier_rows: list[tuple[float, float, float, float, float]] = []
    event_parts: list[np.ndarray] = []
    grid_ns = grid.as_unit("ns").asi8
    n_events = 0
    for j, pair in enumerate(pairs):
        record = futures[pair] if futures else None
        perps[j]["event_lo"] = perps[j]["event_hi"] = n_events
        perps[j]["tier_lo"] = perps[j]["tier_hi"] = len(tier_rows)
        if record is None:
            continue
        dates, fee = record.funding_events
        pos = np.searchsorted(grid_ns, dates, side="left")
        on_grid = (pos < len(grid_ns)) & (grid_ns[np.minimum(pos, len(grid_ns) - 1)] == dates)
        part = np.zeros(len(dates), records.EVENT_DTYPE)
        part["pos"] = np.where(on_grid, 2 * pos, 2 * pos - 1)
        part["fee_per_unit"] = fee
        event_parts.append(part)
        n_events += len(part)
        perps[j]["event_hi"] = n_events
        market = record.market
        if market is None:
            continue
        perps[j]["contract_size"] = market.contract_size
        for name in ("min_amount", "min_cost", "max_amount", "max_cost"):
            value = getattr(market, name)
            perps[j][name] = np.nan if value is None else value
        for tier in market.tiers:
            tier_rows.append(
                (
                    tier.min_notional,
                    max_notional(tier),
                    tier.maintenance_margin_rate,
                    tier.max_leverage,
                    tier.maintenance_amount,
                )
            )
        perps[j]["tier_hi"] = len(tier_rows)
    tiers = np.array(tier_rows, dtype=records.TIER_DTYPE) if tier_rows else records.NO_TIERS
    events = np.concatenate(event_parts) if event_parts else records.NO_EVENTS
    return perps, tiers, np.ascontiguousarray(events)


def kernel_rules(settings: BacktestSettings, tf_min: int) -> records.Rules:
    """The settings as the kernel's :class:`~optimize.backtest._records.Rules` (exact scalar types).

    Args:
        settings: the backtest settings.
        tf_min: candle length in minutes (of ``settings.timeframe``).

    Returns:
        The rules the kernel trades by.
    """
    tsp = settings.trailing_stop_positive
    unlimited = settings.stake_amount == "unlimited"
    fee_dec = 0 if settings.fee == 0 else int(precision.price_decimals(np.array([settings.fee]))[0])
    fee_units = round(settings.fee * 10**fee_dec) if fee_dec >= 0 else 0
    return records.Rules(
        tf_min=int(tf_min),
        fee=float(settings.fee),
        stoploss=float(settings.stoploss),
        trailing=bool(settings.trailing_stop),
        tsp=np.nan if tsp is None else float(tsp),
        tsp_offset=float(settings.trailing_stop_positive_offset),
        only_offset=bool(settings.trailing_only_offset_is_reached),
        unlimited=unlimited,
        stake_amount=0.0 if unlimited else float(settings.stake_amount),
        max_open=int(settings.max_open_trades),
        wallet=float(settings.dry_run_wallet),
        balance_ratio=float(settings.tradable_balance_ratio),
        can_short=bool(settings.can_short),
        use_exit_signal=bool(settings.use_exit_signal),
        exit_profit_only=bool(settings.exit_profit_only),
        exit_profit_offset=float(settings.exit_profit_offset),
        ignore_roi_if_entry=bool(settings.ignore_roi_if_entry_signal),
        futures=bool(settings.futures),
        leverage=float(settings.leverage),
        liq_buffer=float(settings.liquidation_buffer),
        amount_reserve=float(settings.amount_reserve_percent),
        fee_units=fee_units,
        fee_dec=fee_dec,
    )


def roi_table(settings: BacktestSettings) -> np.ndarray:
    """``settings.minimal_roi`` as the kernel's :data:`~optimize.backtest._records.ROI_DTYPE`
    records, sorted by minutes."""
    keys, vals = settings.roi_arrays()
    table = np.empty(len(keys), dtype=records.ROI_DTYPE)
    table["minutes"] = keys
    table["ratio"] = vals
    return table


def _result(
    outcome: records.Outcome,
    pairs: list[str],
    grid: pd.DatetimeIndex,
    tf_min: int,
    settings: BacktestSettings,
) -> BacktestResult:
    """The kernel's outcome as DataFrames, with the run's metrics."""
    trades = outcome.trades
    by_close = np.argsort(trades["close_idx"], kind="stable")
    metrics = _metrics.summarize(
        trades["profit_abs"][by_close],
        starting_balance=settings.dry_run_wallet,
        start=grid[0],
        end=grid[-1],
        equity=outcome.equity,
        positions=outcome.positions,
    )
    logger.debug("backtest: %d pairs, %d candles, %d trades", len(pairs), len(grid), len(trades))
    return BacktestResult(
        trades=_trades_frame(pairs, grid, tf_min, trades),
        metrics=metrics,
        equity=pd.Series(outcome.equity, index=grid, name="equity"),
        positions=pd.DataFrame(outcome.positions, index=grid, columns=pairs),
        settings=settings,
    )


def _amount_decimals(
    precision: float | Mapping[str, float] | None,
    pair: str,
    futures: dict[str, FuturesPair] | None = None,
) -> int:
    """Amount step decimals of ``pair``: the settings' step, else (futures) the market's."""
    if isinstance(precision, Mapping) and pair in precision:
        return power_of_ten_decimals(f"amount_precision[{pair!r}]", precision[pair])
    if precision is not None and not isinstance(precision, Mapping):
        return power_of_ten_decimals("amount_precision", precision)
    market = futures[pair].market if futures else None
    return -1 if market is None else market.amount_decimals


def _trades_frame(
    pairs: list[str], grid: pd.DatetimeIndex, tf_min: int, trades: np.ndarray
) -> pd.DataFrame:
    """Trades DataFrame from the kernel's :data:`~optimize.backtest._records.TRADE_DTYPE`."""
    t_open = trades["open_idx"]
    t_close = trades["close_idx"]
    minutes = (t_close - t_open) * tf_min
    return pd.DataFrame(
        {
            "pair": pd.Categorical.from_codes(trades["pair"], categories=pairs),
            "open_date": grid[t_open],
            "close_date": grid[t_close],
            "open_rate": trades["open_rate"],
            "close_rate": trades["close_rate"],
            "amount": trades["amount"],
            "stake_amount": trades["stake_amount"],
            "profit_ratio": trades["profit_ratio"],
            "profit_abs": trades["profit_abs"],
            "exit_reason": pd.Categorical.from_codes(trades["exit_reason"], dtype=_REASON_DTYPE),
            "is_short": trades["is_short"].astype(bool),
            "trade_duration": minutes.astype(np.int64),
            "leverage": trades["leverage"],
            "funding_fees": trades["funding_fees"],
        },
        columns=[*TRADE_COLUMNS, *FUTURES_TRADE_COLUMNS],
    )
