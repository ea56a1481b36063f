"""Backtest settings: freqtrade's config keys as one frozen, validated dataclass.

Each field keeps freqtrade's name and default; a bad value raises ``ValueError`` naming the key,
the value and what was expected. :func:`optimize.backtest.engine.backtest` and
:func:`optimize.freqtrade.offline.freqtrade_config` read the same object, so both engines trade the
same rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from base.checks import WrongTypeError, check_choice, check_number, fail
from base.errors import InputError
from strategy.timeframes import timeframe_to_timedelta

__all__ = ["MARGIN_MODES", "TRADING_MODES", "BacktestSettings", "power_of_ten_decimals"]

TRADING_MODES = ("spot", "futures")
"""freqtrade's ``trading_mode`` values this project trades (freqtrade's ``margin`` mode is not
supported by freqtrade on Binance either)."""
MARGIN_MODES = ("isolated",)
"""freqtrade's ``margin_mode`` values supported in futures mode (``cross`` is refused)."""

_OFF = (("trailing_stop_positive", None), ("stake_amount", "unlimited"))  # values taken as "off"


def power_of_ten_decimals(name: str, value: object) -> int:
    """Decimals of a tick/step that must be a power of ten (0.01 -> 2)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and value > 0:
        decimals = -math.log10(value)
        rounded = round(decimals)
        if abs(decimals - rounded) < 1e-9 and 0 <= rounded <= 15:
            return int(rounded)
    raise InputError(
        f"{name} must be a power of ten such as 0.01 or 1e-05, but got {name}={value!r}."
    )


@dataclass(frozen=True)
class BacktestSettings:
    """Backtest configuration; field names and defaults follow freqtrade's config keys.

    Attributes:
        fee: fee ratio per side (entry and exit).
        stoploss: stop distance as a negative ratio of the open rate, in [-1, 0).
        minimal_roi: ``{minutes: ratio}`` (keys int or numeric str); the step in force is the one
            with the largest key <= trade age. ``{"0": 10}`` (default) is effectively off.
        trailing_stop: enable the trailing stop.
        trailing_stop_positive: stop distance (positive ratio) once the profit exceeds
            ``trailing_stop_positive_offset``; None: trail at ``stoploss`` distance.
        trailing_stop_positive_offset: profit ratio from which ``trailing_stop_positive`` applies.
        trailing_only_offset_is_reached: only trail once the offset is reached.
        stake_amount: ``"unlimited"`` or a fixed stake in quote currency.
        max_open_trades: limit on simultaneous trades (-1: unlimited, only with a fixed stake).
        dry_run_wallet: starting balance in quote currency.
        tradable_balance_ratio: share of the balance that may be staked (freqtrade default 0.99).
        can_short: allow short entries (futures only: freqtrade refuses a short strategy in
            spot mode).
        timeframe: candle timeframe; the candles must be on this grid without gaps.
        use_exit_signal, exit_profit_only, exit_profit_offset, ignore_roi_if_entry_signal:
            freqtrade's strategy flags of the same names.
        price_precision: ``"candles"`` rounds stop/exit prices to the tick freqtrade infers from
            the candles' decimals (per month); a float (power of ten) uses that fixed tick;
            None disables rounding.
        amount_precision: amount step of the market (power of ten, e.g. 1e-05 for BTC/USDT on
            Binance), or ``{pair: step}``; None: amounts are not truncated. In futures mode a
            pair's :class:`~optimize.backtest.futures.PerpetualMarket` gives the step when this
            does not name the pair.
        trading_mode: ``"spot"`` (default) or ``"futures"`` (perpetual swaps: leverage, funding
            fees, liquidation), freqtrade's key of the same name.
        margin_mode: freqtrade's ``margin_mode``: ``""`` in spot mode, ``"isolated"`` in futures
            mode (None or ``""`` pick the mode's value); ``"cross"`` is refused.
        leverage: the leverage every futures trade asks for (what the strategy's ``leverage()``
            callback returns), >= 1; freqtrade caps it by the pair's leverage tiers. Must be 1 in
            spot mode.
        liquidation_buffer: freqtrade's ``liquidation_buffer``: the liquidation price is moved
            this share of its distance to the open rate towards the open rate, in [0, 0.99].
        amount_reserve_percent: freqtrade's ``amount_reserve_percent``: headroom added to the
            exchange's minimum order when computing the minimum stake, in [0, 0.5].
    """

    fee: float = 0.001
    stoploss: float = -0.10
    minimal_roi: Mapping[Any, float] = field(default_factory=lambda: {"0": 10})
    trailing_stop: bool = False
    trailing_stop_positive: float | None = None
    trailing_stop_positive_offset: float = 0.0
    trailing_only_offset_is_reached: bool = False
    stake_amount: str | float = "unlimited"
    max_open_trades: int = 1
    dry_run_wallet: float = 1000.0
    tradable_balance_ratio: float = 0.99
    can_short: bool = False
    timeframe: str = "1h"
    use_exit_signal: bool = True
    exit_profit_only: bool = False
    exit_profit_offset: float = 0.0
    ignore_roi_if_entry_signal: bool = False
    price_precision: str | float | None = "candles"
    amount_precision: float | Mapping[str, float] | None = None
    trading_mode: str = "spot"
    margin_mode: str | None = None
    leverage: float = 1.0
    liquidation_buffer: float = 0.05
    amount_reserve_percent: float = 0.05

    def __post_init__(self) -> None:
        inf = math.inf
        for key, low, high, low_open, high_open in (
            ("fee", 0.0, 1.0, False, True),
            ("stoploss", -1.0, 0.0, False, True),
            ("trailing_stop_positive", 0.0, 1.0, True, True),
            ("trailing_stop_positive_offset", 0.0, inf, False, False),
            ("exit_profit_offset", -1.0, inf, False, False),
            ("dry_run_wallet", 0.0, inf, True, False),
            ("tradable_balance_ratio", 0.0, 1.0, True, False),
            ("stake_amount", 0.0, inf, True, False),
            ("leverage", 1.0, inf, False, False),
            ("liquidation_buffer", 0.0, 0.99, False, False),
            ("amount_reserve_percent", 0.0, 0.5, False, False),
        ):
            value = getattr(self, key)
            if (key, value) not in _OFF:
                check_number(key, value, low, high, low_open=low_open, high_open=high_open)
        for flag in (
            "trailing_stop",
            "trailing_only_offset_is_reached",
            "can_short",
            "use_exit_signal",
            "exit_profit_only",
            "ignore_roi_if_entry_signal",
        ):
            if not isinstance(getattr(self, flag), bool | np.bool_):
                fail(flag, getattr(self, flag), "a bool", WrongTypeError)
        mot = self.max_open_trades
        if (
            isinstance(mot, bool)
            or not isinstance(mot, int | np.integer)
            or not (mot >= 1 or mot == -1)
        ):
            fail("max_open_trades", mot, "an integer >= 1 or -1")
        if mot == -1 and self.stake_amount == "unlimited":
            raise InputError(
                "max_open_trades=-1 (no limit) needs a fixed stake_amount: with "
                f"stake_amount='unlimited' freqtrade would stake 0, but got {mot=}."
            )
        timeframe_to_timedelta(self.timeframe)
        object.__setattr__(self, "minimal_roi", _roi_table(self.minimal_roi))
        if self.price_precision not in ("candles", None):
            power_of_ten_decimals("price_precision", self.price_precision)
        if isinstance(self.amount_precision, Mapping):
            for pair, step in self.amount_precision.items():
                power_of_ten_decimals(f"amount_precision[{pair!r}]", step)
        elif self.amount_precision is not None:
            power_of_ten_decimals("amount_precision", self.amount_precision)
        self._check_trading_mode()

    @property
    def futures(self) -> bool:
        """True in futures mode."""
        return self.trading_mode == "futures"

    def _check_trading_mode(self) -> None:
        """freqtrade's combinations of trading mode, margin mode, leverage and shorts."""
        check_choice("trading_mode", self.trading_mode, TRADING_MODES)
        margin = self.margin_mode
        if not self.futures:
            if margin not in (None, ""):
                fail("margin_mode", margin, "'' or None in spot mode (margin is a futures setting)")
            object.__setattr__(self, "margin_mode", "")
            if self.leverage != 1.0:
                fail(
                    "leverage",
                    self.leverage,
                    "1 in spot mode (leverage needs trading_mode='futures')",
                )
            if self.can_short:
                fail(
                    "can_short",
                    self.can_short,
                    "False in spot mode (freqtrade shorts only with trading_mode='futures')",
                )
            return
        if margin in (None, ""):
            object.__setattr__(self, "margin_mode", "isolated")
        elif margin == "cross":
            raise InputError(
                "margin_mode='cross' is not supported: futures are backtested with isolated margin "
                "only (each trade's liquidation price from its own stake); expected "
                "margin_mode='isolated'."
            )
        elif margin not in MARGIN_MODES:
            fail("margin_mode", margin, "'isolated' in futures mode")

    def roi_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The ROI table as sorted ``(minutes int64, ratio float64)`` arrays."""
        keys = np.array(sorted(self.minimal_roi), dtype=np.int64)
        vals = np.array([self.minimal_roi[k] for k in keys], dtype=np.float64)
        return keys, vals


def _roi_table(table: Mapping[Any, float]) -> dict[int, float]:
    if not isinstance(table, Mapping) or not table:
        fail("minimal_roi", table, "a non-empty dict {minutes: ratio}")
    out: dict[int, float] = {}
    for key, value in table.items():
        try:
            minutes = int(key)
            if isinstance(key, float | bool) or (
                isinstance(key, str) and str(minutes) != key.strip()
            ):
                raise ValueError
        except (TypeError, ValueError):
            raise InputError(
                "minimal_roi keys must be whole minutes (int or str like '60'), but got key "
                f"{key!r}."
            ) from None
        if minutes < 0:
            raise InputError(f"minimal_roi keys must be >= 0 minutes, but got key {key!r}.")
        out[minutes] = check_number(f"minimal_roi[{key!r}]", value, -1.0)
    return out
