"""What a futures backtest needs per pair beyond its candles: the market's rules and the funding.

freqtrade's futures Backtesting reads, per pair, the exchange's market (amount step, price tick,
contract size, order limits: ``Exchange.markets``), its leverage tiers (``Exchange.
_leverage_tiers``: maximum leverage, maintenance margin) and, from the data folder, the funding
rates and the mark-price candles, which ``Exchange.combine_funding_and_mark`` joins into funding
events. :class:`FuturesPair` bundles the three for one pair and is what
:func:`optimize.backtest.engine.backtest` takes, one per pair, as ``futures={pair: FuturesPair}``:

.. code-block:: python

    from optimize.backtest import BacktestSettings, backtest, load_futures_pair
    from optimize.markets import perpetual_markets

    markets = perpetual_markets(["BTC/USDT:USDT"])  # the embedded futures markets + tiers
    futures = {p: load_futures_pair(p, markets[p]) for p in markets}
    candles = {p: load_candles(p, "1h", candle_type="futures") for p in markets}
    settings = BacktestSettings(trading_mode="futures", leverage=3, can_short=True)
    result = backtest(candles, el, xl, enter_short=es, exit_short=xs, settings=settings,
                      futures=futures)

Nothing here does I/O except :func:`load_futures_pair` (through :mod:`optimize.data`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from base.checks import check_number, fail
from base.errors import DataError
from optimize.backtest.settings import power_of_ten_decimals
from optimize.data import (
    DEFAULT_DATADIR,
    FUNDING_TIMEFRAME,
    load_candles,
    load_funding_rates,
)

__all__ = ["FuturesPair", "LeverageTier", "PerpetualMarket", "load_futures_pair"]


@dataclass(frozen=True)
class LeverageTier:
    """One leverage tier of a perpetual (freqtrade's ``LeverageTier``).

    Attributes:
        min_notional: lower bound of the tier (quote currency).
        max_notional: upper bound, None: no cap.
        maintenance_margin_rate: maintenance margin rate of the tier (ratio).
        max_leverage: the largest leverage allowed in the tier.
        maintenance_amount: Binance's maintenance amount ("cum"), quote currency.
    """

    min_notional: float
    max_notional: float | None
    maintenance_margin_rate: float
    max_leverage: float
    maintenance_amount: float

    def __post_init__(self) -> None:
        check_number("min_notional", self.min_notional, 0.0)
        if self.max_notional is not None:
            check_number("max_notional", self.max_notional, self.min_notional)
        check_number("maintenance_margin_rate", self.maintenance_margin_rate, 0.0, 1.0)
        check_number("max_leverage", self.max_leverage, 1.0)
        check_number("maintenance_amount", self.maintenance_amount, 0.0)


def _limit(market: Mapping[str, Any], kind: str, bound: str, symbol: str) -> float | None:
    value = (market.get("limits") or {}).get(kind, {}) or {}
    value = value.get(bound)
    if value is None:
        return None
    return check_number(f"markets[{symbol!r}].limits.{kind}.{bound}", value, 0.0)


@dataclass(frozen=True)
class PerpetualMarket:
    """The exchange's rules of one linear perpetual, as freqtrade's exchange object reads them.

    Attributes:
        symbol: ccxt symbol, e.g. ``"BTC/USDT:USDT"``.
        amount_step: amount step (``precision.amount`` in ccxt's tick-size mode), None: none.
        price_tick: price tick (``precision.price``), used where the candles give none.
        contract_size: base units per contract (1 on Binance USDT-M).
        min_amount, max_amount: order size limits in contracts (``limits.amount``), None: none.
        min_cost, max_cost: order value limits in quote currency (``limits.cost``), None: none.
        tiers: the leverage tiers sorted by notional (empty: no leverage cap, no liquidation).
    """

    symbol: str
    amount_step: float | None
    price_tick: float | None
    contract_size: float = 1.0
    min_amount: float | None = None
    max_amount: float | None = None
    min_cost: float | None = None
    max_cost: float | None = None
    tiers: tuple[LeverageTier, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        where = f"markets[{self.symbol!r}]"
        if self.amount_step is not None:
            power_of_ten_decimals(f"{where}.precision.amount", self.amount_step)
        if self.price_tick is not None:
            power_of_ten_decimals(f"{where}.precision.price", self.price_tick)
        check_number(f"{where}.contractSize", self.contract_size, 0.0, low_open=True)
        object.__setattr__(self, "tiers", tuple(self.tiers))
        for a, b in zip(self.tiers, self.tiers[1:], strict=False):
            if b.min_notional < a.min_notional:
                fail(
                    f"leverage tiers of {self.symbol!r}",
                    [t.min_notional for t in self.tiers],
                    "sorted by min_notional",
                )

    @property
    def amount_decimals(self) -> int:
        """Decimals of the amount step (-1: no truncation)."""
        if self.amount_step is None:
            return -1
        return power_of_ten_decimals("amount_step", self.amount_step)

    @property
    def price_decimals(self) -> int:
        """Decimals of the price tick (-1: none)."""
        if self.price_tick is None:
            return -1
        return power_of_ten_decimals("price_tick", self.price_tick)

    @classmethod
    def from_ccxt(
        cls, symbol: str, market: Mapping[str, Any], tiers: Sequence[Mapping[str, Any]] = ()
    ) -> PerpetualMarket:
        """Read a ccxt market (tick-size precision mode, as ccxt's Binance) and its ccxt leverage
        tiers (``fetch_leverage_tiers`` format, as freqtrade ships them for Binance).

        Raises:
            ValueError: not a linear swap market, or a value of the wrong kind (the message names
                the symbol and the key).
        """
        where = f"markets[{symbol!r}]"
        if not isinstance(market, Mapping):
            fail(where, market, "a ccxt market (a mapping)")
        if not market.get("swap") or not market.get("linear"):
            raise ValueError(
                f"{where} must be a linear perpetual swap (swap: true, linear: true), but got "
                f"swap={market.get('swap')!r}, linear={market.get('linear')!r}."
            )
        precision = market.get("precision") or {}
        contract_size = market.get("contractSize")
        return cls(
            symbol=symbol,
            amount_step=precision.get("amount"),
            price_tick=precision.get("price"),
            contract_size=1.0 if contract_size is None else float(contract_size),
            min_amount=_limit(market, "amount", "min", symbol),
            max_amount=_limit(market, "amount", "max", symbol),
            min_cost=_limit(market, "cost", "min", symbol),
            max_cost=_limit(market, "cost", "max", symbol),
            tiers=tuple(_tier(symbol, i, tier) for i, tier in enumerate(tiers)),
        )


def _tier(symbol: str, index: int, tier: Mapping[str, Any]) -> LeverageTier:
    """freqtrade's ``Exchange.parse_leverage_tier`` of a ccxt tier (maintenance amount from
    ``info.cum``, which Binance's liquidation formula needs)."""
    where = f"leverage tiers of {symbol!r}[{index}]"
    try:
        cum = (tier.get("info") or {})["cum"]
        return LeverageTier(
            min_notional=tier["minNotional"],
            max_notional=tier["maxNotional"],
            maintenance_margin_rate=tier["maintenanceMarginRate"],
            max_leverage=tier["maxLeverage"],
            maintenance_amount=float(cum),
        )
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"{where} must be a ccxt leverage tier with minNotional, maxNotional, "
            f"maintenanceMarginRate, maxLeverage and info.cum, but lacks {exc}."
        ) from None
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from None


@dataclass(frozen=True, eq=False)
class FuturesPair:
    """One perpetual's funding data and market rules, for :func:`optimize.backtest.backtest`.

    Attributes:
        funding_rates: the funding events, ``date`` (UTC) and ``funding_rate`` (one row per event;
            :func:`optimize.data.load_funding_rates`).
        mark: the mark-price candles at the funding timeframe (``date``, ``open``, ...;
            :func:`optimize.data.load_candles` with ``candle_type="mark"``); only ``open`` is used.
        market: the exchange's rules (None: no amount step, no stake limits, no leverage cap and no
            liquidation).
    """

    funding_rates: pd.DataFrame
    mark: pd.DataFrame
    market: PerpetualMarket | None = None

    def __post_init__(self) -> None:
        for name, frame, columns in (
            ("funding_rates", self.funding_rates, ("date", "funding_rate")),
            ("mark", self.mark, ("date", "open")),
        ):
            if not isinstance(frame, pd.DataFrame):
                fail(name, type(frame).__name__, "a DataFrame")
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise DataError(
                    f"FuturesPair.{name} lacks columns {missing}; expected {list(columns)}."
                )
            dates = pd.DatetimeIndex(frame["date"])
            if dates.tz is None:
                raise DataError(
                    f"FuturesPair.{name}['date'] must be timezone-aware UTC, but got naive dates."
                )
        if self.market is not None and not isinstance(self.market, PerpetualMarket):
            fail("market", type(self.market).__name__, "a PerpetualMarket or None")

    @functools.cached_property
    def funding_events(self) -> tuple[np.ndarray, np.ndarray]:
        """The funding events as freqtrade's ``Exchange.combine_funding_and_mark`` builds them
        (computed once per record).

        An inner join of the funding rates with the mark candles on ``date`` (an event without a
        mark candle is dropped, so it costs nothing), in the mark candles' order, and
        ``fee_per_unit = funding_rate * mark open`` (``_add_funding_columns``).

        Returns:
            ``(dates, fee_per_unit)``: int64 epoch nanoseconds and float64, sorted by date.
        """
        mark = pd.DataFrame(
            {
                "date": pd.DatetimeIndex(self.mark["date"]).tz_convert("UTC").as_unit("ns"),
                "open_mark": self.mark["open"].to_numpy(np.float64),
            }
        )
        fund = pd.DataFrame(
            {
                "date": pd.DatetimeIndex(self.funding_rates["date"])
                .tz_convert("UTC")
                .as_unit("ns"),
                "open_fund": self.funding_rates["funding_rate"].to_numpy(np.float64),
            }
        )
        joined = mark.merge(fund, on="date", how="inner")
        dates = joined["date"].astype("int64").to_numpy()
        if dates.size > 1 and (np.diff(dates) <= 0).any():
            raise DataError("FuturesPair: mark and funding dates must be sorted and unique.")
        fee = (joined["open_fund"] * joined["open_mark"]).to_numpy(np.float64)
        return dates, fee


def load_futures_pair(
    pair: str,
    market: PerpetualMarket | None = None,
    *,
    datadir: Path | str = DEFAULT_DATADIR,
    exchange: str = "binance",
    timeframe: str = FUNDING_TIMEFRAME,
) -> FuturesPair:
    """Load a perpetual's funding rates and mark candles from freqtrade's futures layout.

    Args:
        pair: ``BASE/QUOTE:SETTLE``, e.g. ``"SOL/USDT:USDT"``.
        market: the pair's :class:`PerpetualMarket` (e.g. from
            :func:`optimize.freqtrade.offline.perpetual_markets`).
        datadir: folder holding ``<exchange>/futures/``.
        exchange: exchange sub-folder.
        timeframe: funding and mark timeframe (``1h`` on Binance).

    Raises:
        PairNotFoundError, CandleValidationError: a file is missing or malformed (see
            :mod:`optimize.data`).
    """
    if market is not None and market.symbol != pair:
        raise ValueError(f"market is {market.symbol!r}'s, but the pair is {pair!r}.")
    return FuturesPair(
        funding_rates=load_funding_rates(
            pair, datadir=datadir, exchange=exchange, timeframe=timeframe
        ),
        mark=load_candles(pair, timeframe, datadir=datadir, exchange=exchange, candle_type="mark"),
        market=market,
    )


def max_notional(tier: LeverageTier) -> float:
    """The tier's cap (inf without one)."""
    return math.inf if tier.max_notional is None else float(tier.max_notional)
