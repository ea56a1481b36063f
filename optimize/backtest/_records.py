"""The record layouts of the backtest kernel: what goes into the trade loop and what comes out.

The engine (:mod:`optimize.backtest.engine`) fills these records and :func:`simulate
<optimize.backtest._kernel.simulate>` reads and writes them: the candles of all pairs
(:data:`CANDLE_DTYPE` in a :class:`Market`), the scalar trading rules (:class:`Rules`), the ROI
table (:data:`ROI_DTYPE`), the closed trades (:data:`TRADE_DTYPE` in an :class:`Outcome`) with
their exit reason codes (:data:`EXIT_REASONS`), the futures rules of each pair (:data:`PERP_DTYPE`,
its leverage tiers :data:`TIER_DTYPE` and funding events :data:`EVENT_DTYPE`), and the loop's own
state: one record per pair (``PAIR_DTYPE``) and the shared wallet (``LEDGER_DTYPE``).

All dtypes are ``align=True`` records of fixed-width scalars, so numba compiles one signature
for every run.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

EXIT_NONE = 0
EXIT_SIGNAL = 1
STOP_LOSS = 2
ROI = 3
TRAILING_STOP_LOSS = 4
FORCE_EXIT = 5
LIQUIDATION = 6
EXIT_REASONS = (
    "",
    "exit_signal",
    "stop_loss",
    "roi",
    "trailing_stop_loss",
    "force_exit",
    "liquidation",
)
"""Exit reason strings (freqtrade's ``ExitType`` values), indexed by the codes above."""

CANDLE_DTYPE = np.dtype(
    [
        ("open", np.float64),
        ("high", np.float64),
        ("low", np.float64),
        ("close", np.float64),
        ("price_dec", np.int64),  # tick decimals in force at this row (-1: no rounding)
        ("enter_long", np.bool_),  # signals computed at this candle's close
        ("exit_long", np.bool_),
        ("enter_short", np.bool_),
        ("exit_short", np.bool_),
    ],
    align=True,
)
"""One pair's candle: prices, tick decimals and the signals computed at its close."""

ROI_DTYPE = np.dtype([("minutes", np.int64), ("ratio", np.float64)], align=True)
"""One step of the minimal_roi table: in force from a trade age of ``minutes`` on."""

TRADE_DTYPE = np.dtype(
    [
        ("pair", np.int64),  # column of the pair
        ("open_idx", np.int64),  # row of the entry
        ("close_idx", np.int64),  # row of the exit
        ("open_rate", np.float64),
        ("close_rate", np.float64),
        ("amount", np.float64),
        ("stake_amount", np.float64),
        ("profit_ratio", np.float64),
        ("profit_abs", np.float64),
        ("exit_reason", np.int64),  # index into EXIT_REASONS
        ("is_short", np.bool_),
        ("leverage", np.float64),
        ("funding_fees", np.float64),  # freqtrade's sign: > 0 received, < 0 paid
    ],
    align=True,
)
"""One closed trade."""

PERP_DTYPE = np.dtype(
    [
        ("contract_size", np.float64),
        ("min_amount", np.float64),  # NaN: no limit (ccxt None)
        ("min_cost", np.float64),
        ("max_amount", np.float64),
        ("max_cost", np.float64),
        ("tier_lo", np.int64),  # the pair's leverage tiers: tiers[tier_lo:tier_hi]
        ("tier_hi", np.int64),
        ("event_lo", np.int64),  # the pair's funding events: events[event_lo:event_hi]
        ("event_hi", np.int64),
    ],
    align=True,
)
"""One pair's futures rules: the market's limits and where its tiers and funding events are."""

TIER_DTYPE = np.dtype(
    [
        ("min_notional", np.float64),
        ("max_notional", np.float64),  # inf: no cap (ccxt None)
        ("mmr", np.float64),  # maintenance margin rate
        ("max_leverage", np.float64),
        ("maint_amount", np.float64),  # Binance's "cum" (maintenance amount)
    ],
    align=True,
)
"""One leverage tier (freqtrade's ``LeverageTier``), tiers of a pair sorted by notional."""

EVENT_DTYPE = np.dtype([("pos", np.int64), ("fee_per_unit", np.float64)], align=True)
"""One funding event: its position on the candle grid (``2 * row`` when the event falls on the
open of candle ``row``, ``2 * row - 1`` when it falls strictly inside candle ``row - 1``) and
``funding_rate * mark open`` (freqtrade's ``_ff_fee_per_unit``)."""

NO_PERPS = np.zeros(0, PERP_DTYPE)
NO_TIERS = np.zeros(0, TIER_DTYPE)
NO_EVENTS = np.zeros(0, EVENT_DTYPE)

PAIR_DTYPE = np.dtype(
    [
        ("amount_dec", np.int64),  # amount step decimals of the market (-1: no truncation)
        ("side", np.int64),  # open trade: +1 long, -1 short, 0 none
        ("id", np.int64),  # opening order of the open trade (1, 2, ...)
        ("open_idx", np.int64),
        ("price_dec", np.int64),  # tick decimals in force at the opening row
        ("rate", np.float64),
        ("amount", np.float64),
        ("stake", np.float64),
        ("value", np.float64),  # entry value with its fee
        ("stop", np.float64),
        ("stop_pct", np.float64),
        ("trailing", np.bool_),  # the stop has been trailed
        ("leverage", np.float64),
        ("liq", np.float64),  # liquidation price (0: none)
        ("funding", np.float64),  # sum of funding_rate * mark * amount over the trade's events
        ("event", np.int64),  # next funding event to book
        ("event_lo", np.int64),  # the pair's funding events: events[event_lo:event_hi]
        ("event_hi", np.int64),
        ("tier_lo", np.int64),  # the pair's leverage tiers: tiers[tier_lo:tier_hi]
        ("tier_hi", np.int64),
        ("contract_size", np.float64),  # the pair's market limits (PERP_DTYPE), NaN: none
        ("min_amount", np.float64),
        ("min_cost", np.float64),
        ("max_amount", np.float64),
        ("max_cost", np.float64),
        ("pending", np.float64),  # price of an exit order the candles have not reached yet
        ("pending_reason", np.int64),  # its exit reason (EXIT_NONE: no such order)
    ],
    align=True,
)
"""One pair's market rules and its open trade, if any."""

LEDGER_DTYPE = np.dtype(
    [
        ("realized", np.float64),
        ("tied", np.float64),
        ("n_open", np.int64),
        ("next_id", np.int64),
        ("n_trades", np.int64),
    ],
    align=True,
)
"""The wallet and the counters all pairs share."""


class Market(NamedTuple):
    """All pairs on one shared candle grid: the kernel's read-only input.

    Attributes:
        candles: :data:`CANDLE_DTYPE` records ``(n, P)``; rows outside a pair's span are unused.
        first: int64 ``(P,)`` first row of each pair.
        last: int64 ``(P,)`` last row of each pair (inclusive).
        amount_dec: int64 ``(P,)`` amount step decimals (-1: no truncation).
        perps: :data:`PERP_DTYPE` ``(P,)``, read only in futures mode (empty in spot mode).
        tiers: :data:`TIER_DTYPE` leverage tiers of all pairs (see ``perps``).
        events: :data:`EVENT_DTYPE` funding events of all pairs (see ``perps``), each pair's
            sorted by date.
    """

    candles: np.ndarray
    first: np.ndarray
    last: np.ndarray
    amount_dec: np.ndarray
    perps: np.ndarray = NO_PERPS
    tiers: np.ndarray = NO_TIERS
    events: np.ndarray = NO_EVENTS


class Rules(NamedTuple):
    """The scalar trading rules of one run (built by :func:`optimize.backtest.engine.kernel_rules`).

    Scalars only (no arrays), so that passing them around the compiled loop costs nothing; each
    field must have exactly its type (``int``, ``float``, ``bool``) so every run shares one
    compiled signature.

    Attributes:
        tf_min: candle length in minutes.
        fee: fee per side (ratio).
        stoploss: negative ratio.
        trailing: trailing stop on.
        tsp: ``trailing_stop_positive``; NaN when not set.
        tsp_offset: ``trailing_stop_positive_offset``.
        only_offset: ``trailing_only_offset_is_reached``.
        unlimited: ``stake_amount == "unlimited"``.
        stake_amount: the fixed stake (0.0 when unlimited).
        max_open: ``max_open_trades`` (``<= 0``: no limit on open trades).
        wallet: ``dry_run_wallet``.
        balance_ratio: ``tradable_balance_ratio``.
        can_short: allow short entries.
        use_exit_signal: freqtrade's flag of the same name.
        exit_profit_only: freqtrade's flag of the same name.
        exit_profit_offset: freqtrade's setting of the same name.
        ignore_roi_if_entry: ``ignore_roi_if_entry_signal``.
        futures: futures mode (leverage, funding, liquidation, the market's stake limits).
        leverage: the leverage asked for (1.0 in spot mode).
        liq_buffer: ``liquidation_buffer``.
        amount_reserve: ``amount_reserve_percent``.
        fee_units, fee_dec: the fee as ``fee_units / 10**fee_dec`` (its shortest decimal form; -1
            decimals when it has none within 14 significant digits): futures trade values are
            computed in exact decimal arithmetic like freqtrade's.
    """

    tf_min: int
    fee: float
    stoploss: float
    trailing: bool
    tsp: float
    tsp_offset: float
    only_offset: bool
    unlimited: bool
    stake_amount: float
    max_open: int
    wallet: float
    balance_ratio: float
    can_short: bool
    use_exit_signal: bool
    exit_profit_only: bool
    exit_profit_offset: float
    ignore_roi_if_entry: bool
    futures: bool = False
    leverage: float = 1.0
    liq_buffer: float = 0.05
    amount_reserve: float = 0.05
    fee_units: int = 0
    fee_dec: int = -1


class Outcome(NamedTuple):
    """What :func:`simulate` returns.

    Attributes:
        trades: :data:`TRADE_DTYPE` records ordered by close (force exits last).
        equity: float64 ``(n,)`` mark-to-market balance after each candle (last value: the final
            balance after force exits).
        positions: int8 ``(n, P)``, +1 long / -1 short / 0 flat at each candle's close.
    """

    trades: np.ndarray
    equity: np.ndarray
    positions: np.ndarray
