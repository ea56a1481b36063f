"""Numba kernel of the backtest engine: freqtrade's trade loop over all candles and pairs.

Everything here is a pure numeric kernel (arrays in, arrays out, no I/O, no logging). The public
wrapper that validates input and builds DataFrames is :mod:`optimize.backtest.engine`; this module
only holds the compiled loop, which mirrors freqtrade 2026.9's ``optimize/backtesting.py``,
``strategy/interface.py`` (``should_exit``, ``ft_stoploss_adjust``, ``min_roi_reached``),
``persistence/trade_model.py`` (profit and stop arithmetic), ``wallets.py`` (stake sizing) and,
in futures mode, ``exchange/exchange.py`` (leverage tiers, stake limits, funding fees) and
``exchange/binance.py`` (the isolated-margin liquidation price).
Its record layouts live in :mod:`optimize.backtest._records` and the tick rounding in
:mod:`optimize.backtest._precision`; the names :func:`simulate` is called with are re-exported
here (``__all__``) so a caller drives the kernel from one import.

Layout: :func:`simulate` takes the candles as :data:`CANDLE_DTYPE` records ``(n_candles,
n_pairs)`` (:class:`Market`), the scalar rules as one :class:`Rules` tuple and the ROI table as
:data:`ROI_DTYPE` records, and returns the trades as :data:`TRADE_DTYPE` records
(:class:`Outcome`). Its steps are small ``inline="always"`` functions in freqtrade's order: the
pair order (:func:`_visit_order`), the entry (:func:`_enter`), the exit checks
(:func:`_check_exit`: trailing stop, then signal / stoploss / ROI / trailing stop), the close
(:func:`_close`) and the force exits at the end (:func:`_force_exits`). The helpers take records
and scalars, arrays only where they must (the ROI table, the trade records): inside the loop every
array argument costs reference counting on each call (one more array in the spot path doubles the
kernel's time). Futures mode, which needs the leverage tiers and the funding events, therefore
takes its own per-pair step (:func:`_trade_pair_futures`, :func:`_enter_futures`, with
:func:`_book_funding` before the shared exit checks); both steps share every rule's helper.

numba's on-disk cache (``cache=True``) keys a function on its own source file only: after editing
:mod:`~optimize.backtest._precision`, clear the ``__pycache__`` of this module so that
:func:`simulate` recompiles with the new rounding.

Conventions:
    * Candles share one grid; pair ``p`` has candles on rows ``first[p] .. last[p]`` (inclusive,
      contiguous).
    * Signals are given on the candle where they are computed (at its close); the kernel applies
      the signal of row ``t - 1`` on row ``t`` (fill at row ``t``'s open), exactly like freqtrade's
      one-candle shift. A pair's first row therefore never trades.
    * Decimal counts ``d`` stand for the tick size ``10**-d``; ``-1`` means "no rounding".
    * Spot is futures at leverage 1 without funding, liquidation or market limits: every futures
      term reduces to the spot arithmetic bit for bit there (``x / 1.0``, ``x * 1.0``, ``x + 0.0``
      are exact), so spot results do not depend on the futures code.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from optimize.backtest._precision import (
    exact_product,
    round_down_tick,
    round_half_up_tick,
    round_up_tick,
)
from optimize.backtest._records import (
    CANDLE_DTYPE,
    EXIT_NONE,
    EXIT_SIGNAL,
    FORCE_EXIT,
    LEDGER_DTYPE,
    LIQUIDATION,
    PAIR_DTYPE,
    ROI,
    ROI_DTYPE,
    STOP_LOSS,
    TRADE_DTYPE,
    TRAILING_STOP_LOSS,
    Market,
    Outcome,
    Rules,
)

__all__ = ["CANDLE_DTYPE", "ROI_DTYPE", "TRADE_DTYPE", "Market", "Outcome", "Rules", "simulate"]


@njit(cache=True)
def _profit_ratio(
    side: int, amount: float, rate: float, fee: float, open_value: float, ff: float, lev: float
) -> float:
    """freqtrade's ``calc_profit_ratio(rate)``: net of both fees and the funding fees ``ff``
    (freqtrade's sign), times the leverage, rounded to 8 decimals."""
    if side == 1:
        return round(((amount * rate * (1.0 - fee) + ff) / open_value - 1.0) * lev, 8)
    return round((1.0 - (amount * rate * (1.0 + fee) - ff) / open_value) * lev, 8)


@njit(cache=True, inline="always")
def _profit_abs(
    side: int, amount: float, rate: float, fee: float, open_value: float, ff: float
) -> float:
    """Net profit of a trade valued at ``rate``, in stake currency, before any rounding.

    freqtrade's ``calc_profit`` without its rounding to 8 decimals: the exit value net of the
    exit fee, plus the funding fees ``ff`` received (``calc_close_trade_value`` in futures mode),
    against ``open_value`` (the entry value with its fee), for ``side`` +1 (long) or -1 (short).
    """
    if side == 1:
        return (amount * rate * (1.0 - fee) + ff) - open_value
    return open_value - (amount * rate * (1.0 + fee) - ff)


@njit(cache=True, inline="always")
def _exact_value(rules: Rules, trade: np.record, rate: float, side: int) -> float:
    """``float(amount * rate * (1 + side * fee))`` in exact decimal arithmetic, as freqtrade's
    ``FtPrecise`` computes trade values (futures mode; NaN when the amount or the rate is off a
    known decimal grid, or in spot mode, whose results keep the float formula)."""
    if not rules.futures or rules.fee_dec < 0:
        return np.nan
    factor = np.int64(10) ** rules.fee_dec + side * rules.fee_units
    return exact_product(
        trade.amount, trade.amount_dec, rate, trade.price_dec, factor, rules.fee_dec
    )


@njit(cache=True, inline="always")
def _funding_fees(trade: np.record) -> float:
    """The trade's funding fees with freqtrade's sign (``calculate_funding_fees``): the sum of
    ``funding_rate * mark * amount`` is received by a short and paid by a long."""
    if trade.side == -1:
        return trade.funding
    return -trade.funding


@njit(cache=True)
def simulate(market: Market, rules: Rules, roi: np.ndarray) -> Outcome:
    """Simulate freqtrade's backtesting loop over all candles and pairs in one O(n * pairs) pass.

    Each candle visits the pairs in freqtrade's order (:func:`_visit_order`) and runs
    :func:`_trade_pair` on every pair that has a previous candle, then values the open trades
    (:func:`_mark_to_market`). Trades still open at the end are force-exited
    (:func:`_force_exits`).

    Args:
        market: candles, signals and precisions of all pairs.
        rules: the trading rules.
        roi: the minimal_roi table, :data:`ROI_DTYPE` records sorted by minutes.

    Returns:
        :class:`Outcome`: the trades, the equity curve and the positions.
    """
    candles, first, last = market.candles, market.first, market.last
    n, n_pairs = candles.shape
    cap = 1
    for p in range(n_pairs):
        cap += max(last[p] - first[p] + 1, 0)
    trades = np.empty(cap, TRADE_DTYPE)
    equity = np.empty(n, np.float64)
    positions = np.zeros((n, n_pairs), np.int8)
    book = np.zeros(n_pairs, PAIR_DTYPE)
    tiers, events = market.tiers, market.events
    for p in range(n_pairs):
        book[p].amount_dec = market.amount_dec[p]
        book[p].leverage = 1.0
        if rules.futures:
            _init_perp(book[p], market.perps[p])
    ledger = np.zeros(1, LEDGER_DTYPE)  # one record; its array lives as long as the loop
    order = np.empty(n_pairs, np.int64)
    for t in range(n):
        _visit_order(book, order)
        for j in range(n_pairs):
            p = order[j]
            if first[p] < t <= last[p]:
                bar, prev = candles[t, p], candles[t - 1, p]
                if rules.futures:
                    _trade_pair_futures(
                        rules,
                        roi,
                        bar,
                        prev,
                        book[p],
                        ledger[0],
                        trades,
                        t,
                        p,
                        t != n - 1,
                        tiers,
                        events,
                    )
                else:
                    _trade_pair(rules, roi, bar, prev, book[p], ledger[0], trades, t, p, t != n - 1)
        equity[t] = _mark_to_market(candles, rules, book, ledger[0], t, last, positions[t])
    _force_exits(candles, rules, book, ledger[0], trades, last)
    if n > 0:
        equity[n - 1] = rules.wallet + ledger[0].realized
    return Outcome(trades[: ledger[0].n_trades], equity, positions)


@njit(cache=True, inline="always")
def _visit_order(book: np.ndarray, order: np.ndarray) -> None:
    """freqtrade's pair order: pairs with open trades first (in opening order), then the rest."""
    n_pairs = book.shape[0]
    k = 0
    for p in range(n_pairs):
        if book[p].side != 0:
            order[k] = p
            k += 1
    for a in range(1, k):
        q = order[a]
        b = a - 1
        while b >= 0 and book[order[b]].id > book[q].id:
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = q
    for p in range(n_pairs):
        if book[p].side == 0:
            order[k] = p
            k += 1


@njit(cache=True, inline="always")
def _signal_direction(prev: np.record, can_short: bool) -> int:
    """Entry direction of the previous candle's signals: +1 long, -1 short, 0 none or conflict."""
    el = prev.enter_long
    xl = prev.exit_long
    es = can_short and prev.enter_short
    xs = can_short and prev.exit_short
    if el and not (xl or es):
        return 1
    if es and not (xs or el):
        return -1
    return 0


@njit(cache=True, inline="always")
def _trade_pair(
    rules: Rules,
    roi: np.ndarray,
    bar: np.record,
    prev: np.record,
    trade: np.record,
    ledger: np.record,
    trades: np.ndarray,
    t: int,
    p: int,
    can_enter: bool,
) -> None:
    """One pair on row ``t`` (spot): the entry at the open, then the exit checks (freqtrade's
    order).

    An exit that closes a trade against the signal's direction lets the pair enter again on the
    same candle (freqtrade's reversal with ``can_short``, ``Backtesting.backtest``: a second
    ``backtest_loop`` when the first closed a trade of the other direction), hence at most two
    passes.
    """
    tdir = _signal_direction(prev, rules.can_short)
    for _rep in range(2):
        exiting = trade.side
        if can_enter and tdir != 0:
            _enter(rules, bar, trade, ledger, t, tdir)
        if trade.side != 0:
            _check_exit(rules, roi, bar, prev, trade, ledger, trades, t, p)
        closed_dir = exiting if (exiting != 0 and trade.side == 0) else 0
        if not rules.can_short or tdir == 0 or closed_dir == 0 or closed_dir == tdir:
            break


@njit(cache=True, inline="always")
def _trade_pair_futures(
    rules: Rules,
    roi: np.ndarray,
    bar: np.record,
    prev: np.record,
    trade: np.record,
    ledger: np.record,
    trades: np.ndarray,
    t: int,
    p: int,
    can_enter: bool,
    tiers: np.ndarray,
    events: np.ndarray,
) -> None:
    """:func:`_trade_pair` in futures mode: the entry sized by the leverage tiers and the market
    (:func:`_enter_futures`), the funding fees booked before the exit checks
    (``_check_trade_exit`` runs ``_run_funding_fees`` first)."""
    tdir = _signal_direction(prev, rules.can_short)
    for _rep in range(2):
        exiting = trade.side
        if can_enter and tdir != 0:
            _enter_futures(rules, bar, trade, ledger, t, tdir, tiers, events)
        if trade.side != 0:
            _book_funding(trade, events, t)
            _check_exit(rules, roi, bar, prev, trade, ledger, trades, t, p)
        closed_dir = exiting if (exiting != 0 and trade.side == 0) else 0
        if not rules.can_short or tdir == 0 or closed_dir == 0 or closed_dir == tdir:
            break


@njit(cache=True, inline="always")
def _init_perp(trade: np.record, perp: np.record) -> None:
    """Copy a pair's futures rules into its book record (the per-pair step reads no arrays)."""
    trade.event = perp.event_lo
    trade.event_lo = perp.event_lo
    trade.event_hi = perp.event_hi
    trade.tier_lo = perp.tier_lo
    trade.tier_hi = perp.tier_hi
    trade.contract_size = perp.contract_size
    trade.min_amount = perp.min_amount
    trade.min_cost = perp.min_cost
    trade.max_amount = perp.max_amount
    trade.max_cost = perp.max_cost


@njit(cache=True, inline="always")
def _wallet_stake(rules: Rules, ledger: np.record) -> tuple[float, float]:
    """freqtrade's ``Wallets.get_trade_stake_amount`` (0: no entry) and
    ``get_available_stake_amount``, in that order."""
    free = rules.wallet + ledger.realized - ledger.tied
    available = min((ledger.tied + free) * rules.balance_ratio - ledger.tied, free)
    if rules.unlimited:
        stake = min((available + ledger.tied) / rules.max_open, available)
    else:
        stake = rules.stake_amount if available >= rules.stake_amount else 0.0
    return stake, available


@njit(cache=True, inline="always")
def _validate_stake(stake: float, min_stake: float, max_stake: float, available: float) -> float:
    """freqtrade's ``Wallets.validate_stake_amount``: the stake within the market's limits and the
    wallet (raised to the minimum when that costs at most 30 % more); 0: no entry."""
    max_allowed = min(max_stake, available)
    if min_stake > max_allowed:
        return 0.0
    if stake < min_stake:
        if stake * 1.3 < min_stake:
            return 0.0
        stake = min_stake
    if stake > max_allowed:
        stake = max_allowed
    return stake


@njit(cache=True, inline="always")
def _contracts_to_amount(contracts: float, contract_size: float) -> float:
    """freqtrade's ``contracts_to_amount`` (``contract_size`` 1: unchanged)."""
    if contract_size > 0.0 and contract_size != 1.0:
        return contracts * contract_size
    return contracts


@njit(cache=True)
def _max_leverage(tiers: np.ndarray, lo: int, hi: int, stake: float) -> float:
    """freqtrade's ``Exchange.get_max_leverage(pair, stake)`` from the pair's tiers ``lo:hi``.

    A stake above the last tier (freqtrade raises "Stake amount ... too high") gives 0: no entry.
    """
    if stake == 0.0:
        return tiers[lo].max_leverage
    prior = 0.0
    for k in range(lo, hi):
        tier = tiers[k]
        min_stake = tier.min_notional / (prior if prior != 0.0 else tier.max_leverage)
        max_stake = tier.max_notional / tier.max_leverage
        prior = tier.max_leverage
        if min_stake <= stake <= max_stake:
            return tier.max_leverage
        if stake < min_stake and stake <= max_stake:
            return tier.max_leverage
    return 0.0


@njit(cache=True)
def _min_stake(perp: np.record, price: float, lev: float, reserve: float) -> float:
    """freqtrade's ``get_min_pair_stake_amount(pair, price, -0.05, leverage)`` as backtesting
    calls it (0 when the market has no minimum)."""
    margin_reserve = 1.0 + reserve
    stoploss_reserve = margin_reserve / (1 - abs(-0.05))
    stoploss_reserve = max(min(stoploss_reserve, 1.5), 1.0)
    found = False
    best = 0.0
    if not np.isnan(perp.min_cost):
        best = _contracts_to_amount(perp.min_cost, perp.contract_size) * stoploss_reserve
        found = True
    if not np.isnan(perp.min_amount):
        by_amount = (
            _contracts_to_amount(perp.min_amount, perp.contract_size) * price * margin_reserve
        )
        best = max(best, by_amount) if found else by_amount
        found = True
    if not found:
        return 0.0
    return best / lev


@njit(cache=True)
def _max_stake(perp: np.record, tiers: np.ndarray, price: float, lev: float) -> float:
    """freqtrade's ``get_max_pair_stake_amount(pair, price, leverage)``: the smallest of the
    tiers' notional cap for this leverage and the market's maximum cost and amount, per unit of
    margin (inf without any)."""
    best = np.inf
    for k in range(perp.tier_hi - 1, perp.tier_lo - 1, -1):
        if lev <= tiers[k].max_leverage:
            cap = tiers[k].max_notional
            if cap != 0.0 and not np.isnan(cap):
                best = min(best, cap)
            break
    if not np.isnan(perp.max_cost):
        best = min(best, _contracts_to_amount(perp.max_cost, perp.contract_size) * 1.0)
    if not np.isnan(perp.max_amount):
        best = min(best, _contracts_to_amount(perp.max_amount, perp.contract_size) * price * 1.0)
    if best == np.inf:
        return best
    return best / lev


@njit(cache=True)
def _liquidation_price(
    tiers: np.ndarray,
    lo: int,
    hi: int,
    side: int,
    amount: float,
    open_rate: float,
    stake: float,
    buffer: float,
    price_dec: int,
) -> float:
    """The isolated-margin liquidation price freqtrade gives a Binance trade (0: none).

    ``Binance.dry_run_liquidation_price`` with the maintenance margin rate and amount of the tier
    ``Exchange.get_maintenance_ratio_and_amt(pair, stake)`` picks (freqtrade looks the tier up by
    the stake, not the notional), the wallet balance being the trade's own stake; then
    ``Exchange.get_liquidation_price`` moves it ``buffer`` (``liquidation_buffer``) of its
    distance towards the open rate, floors it at 0, and ``LocalTrade.set_liquidation_price``
    rounds it to the tick.
    """
    mmr = np.nan
    maint = np.nan
    for k in range(hi - 1, lo - 1, -1):
        if stake >= tiers[k].min_notional:
            mmr = tiers[k].mmr
            maint = tiers[k].maint_amount
            break
    if np.isnan(mmr) or np.isnan(maint):
        return 0.0
    side_1 = float(side)
    liq = ((stake + 0.0 + maint) - (side_1 * amount * open_rate)) / (
        (amount * mmr) - (side_1 * amount)
    )
    buffer_amount = abs(open_rate - liq) * buffer
    liq = liq + buffer_amount if side == 1 else liq - buffer_amount
    return round_half_up_tick(max(liq, 0.0), price_dec)


@njit(cache=True)
def _first_event(events: np.ndarray, lo: int, hi: int, pos: int) -> int:
    """Index of the first of ``events[lo:hi]`` at grid position >= ``pos`` (binary search)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if events[mid].pos < pos:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, inline="always")
def _amount(stake: float, op: float, lev: float, amount_dec: int, contract_size: float) -> float:
    """``_enter_trade``'s amount: ``stake / open * leverage`` truncated to the market's step
    (``amount_to_contract_precision``, in contracts when a contract is not one unit)."""
    amount = (stake / op) * lev
    if amount_dec >= 0:
        if contract_size != 1.0:
            amount = round_down_tick(amount / contract_size, amount_dec) * contract_size
        else:
            amount = round_down_tick(amount, amount_dec)
    return amount


@njit(cache=True, inline="always")
def _open_trade(
    rules: Rules,
    bar: np.record,
    trade: np.record,
    ledger: np.record,
    t: int,
    tdir: int,
    amount: float,
    lev: float,
) -> None:
    """Fill the entry at the candle's open: the stake recomputed from the amount, the open value
    with its fee, the stop at ``stoploss / leverage`` from the open (``adjust_stop_loss``), in
    futures mode the open value and stake in exact decimals (``recalc_trade_from_orders``)."""
    op = bar.open
    sl = abs(rules.stoploss / lev)
    ledger.next_id += 1
    trade.side = tdir
    trade.id = ledger.next_id
    trade.open_idx = t
    trade.rate = op
    trade.amount = amount
    trade.stake = amount * op / lev
    trade.leverage = lev
    trade.price_dec = bar.price_dec
    if tdir == 1:
        trade.value = amount * op * (1.0 + rules.fee)
        trade.stop = round_up_tick(op * (1.0 - sl), trade.price_dec)
    else:
        trade.value = amount * op * (1.0 - rules.fee)
        trade.stop = round_down_tick(op * (1.0 + sl), trade.price_dec)
    if rules.futures:
        exact = _exact_value(rules, trade, op, tdir)
        if not np.isnan(exact):
            trade.value = exact
            stake = exact_product(amount, trade.amount_dec, op, trade.price_dec, 1, 0)
            trade.stake = stake / lev
    trade.stop_pct = -abs(rules.stoploss)
    trade.trailing = False
    trade.pending_reason = EXIT_NONE
    trade.funding = 0.0
    trade.liq = 0.0
    ledger.tied += trade.stake
    ledger.n_open += 1


@njit(cache=True, inline="always")
def _enter(
    rules: Rules, bar: np.record, trade: np.record, ledger: np.record, t: int, tdir: int
) -> None:
    """Open a trade in direction ``tdir`` at the candle's open when the pair is flat, a slot is
    free and the wallet gives a positive stake and amount (spot: ``Backtesting._enter_trade``
    without market limits)."""
    if trade.side != 0 or not (rules.max_open <= 0 or ledger.n_open < rules.max_open):
        return
    stake, available = _wallet_stake(rules, ledger)
    if not stake > 0.0:
        return
    stake = _validate_stake(stake, 0.0, np.inf, available)
    if not stake > 0.0:
        return
    amount = _amount(stake, bar.open, 1.0, trade.amount_dec, 1.0)
    if not amount > 0.0:
        return
    _open_trade(rules, bar, trade, ledger, t, tdir, amount, 1.0)


@njit(cache=True, inline="always")
def _enter_futures(
    rules: Rules,
    bar: np.record,
    trade: np.record,
    ledger: np.record,
    t: int,
    tdir: int,
    tiers: np.ndarray,
    events: np.ndarray,
) -> None:
    """:func:`_enter` in futures mode (``get_valid_entry_price_and_stake``, ``_enter_trade``).

    The wallet's stake; the leverage (the constant the strategy's ``leverage()`` returns, capped
    to ``[1, get_max_leverage]``); the market's minimum and maximum stake and
    ``validate_stake_amount``; the amount; then, once filled (``_try_close_open_order``), the
    funding cursor at the open and the liquidation price (``update_liquidation_prices``).
    """
    if trade.side != 0 or not (rules.max_open <= 0 or ledger.n_open < rules.max_open):
        return
    stake, available = _wallet_stake(rules, ledger)
    if not stake > 0.0:
        return
    op = bar.open
    lev = rules.leverage
    if trade.tier_hi > trade.tier_lo:
        lev = min(max(lev, 1.0), _max_leverage(tiers, trade.tier_lo, trade.tier_hi, stake))
    min_stake = _min_stake(trade, op, lev, rules.amount_reserve)
    stake = _validate_stake(stake, min_stake, _max_stake(trade, tiers, op, lev), available)
    if not stake > 0.0 or stake < min_stake:
        return
    amount = _amount(stake, op, lev, trade.amount_dec, trade.contract_size)
    if not amount > 0.0:
        return
    _open_trade(rules, bar, trade, ledger, t, tdir, amount, lev)
    trade.event = _first_event(events, trade.event_lo, trade.event_hi, 2 * t)
    if trade.tier_hi > trade.tier_lo:
        trade.liq = _liquidation_price(
            tiers,
            trade.tier_lo,
            trade.tier_hi,
            tdir,
            amount,
            op,
            trade.stake,
            rules.liq_buffer,
            trade.price_dec,
        )


@njit(cache=True, inline="always")
def _roi_entry(dur: int, roi: np.ndarray) -> int:
    """Index of the ROI step in force after ``dur`` minutes (largest key <= dur), or -1."""
    idx = -1
    for k in range(roi.shape[0]):
        if roi[k].minutes <= dur:
            idx = k
    return idx


@njit(cache=True, inline="always")
def _book_funding(trade: np.record, events: np.ndarray, t: int) -> None:
    """Add the funding events up to row ``t``'s open (``Backtesting._run_funding_fees``).

    freqtrade recomputes ``calculate_funding_fees`` from the trade's open to the current candle on
    every candle: a left-to-right sum of ``fee_per_unit * amount`` over the events between both
    dates, inclusive; adding the new events to the running sum in the same order gives the same
    float.
    """
    k = trade.event
    while k < trade.event_hi and events[k].pos <= 2 * t:
        trade.funding += events[k].fee_per_unit * trade.amount
        k += 1
    trade.event = k


@njit(cache=True, inline="always")
def _check_exit(
    rules: Rules,
    roi: np.ndarray,
    bar: np.record,
    prev: np.record,
    trade: np.record,
    ledger: np.record,
    trades: np.ndarray,
    t: int,
    p: int,
) -> None:
    """freqtrade's ``_check_trade_exit`` on row ``t`` (after the funding fees, in futures mode):
    ``should_exit`` (the trailing stop moved first), then the exit order (``_exit_trade``) and its
    fill (``_process_exit_order``)."""
    sd = trade.side
    ff = _funding_fees(trade)
    lev = trade.leverage
    dur = (t - trade.open_idx) * rules.tf_min
    best = bar.high if sd == 1 else bar.low
    profit_open = _profit_ratio(sd, trade.amount, bar.open, rules.fee, trade.value, ff, lev)
    profit_best = _profit_ratio(sd, trade.amount, best, rules.fee, trade.value, ff, lev)
    if rules.trailing:
        _trail_stop(rules, trade, bar, profit_best)
    k = _roi_entry(dur, roi)
    roi_minutes = roi[k].minutes if k >= 0 else -1
    roi_ratio = roi[k].ratio if k >= 0 else np.nan
    reason = _exit_reason(rules, trade, bar, prev, profit_open, profit_best, roi_ratio)
    if reason != EXIT_NONE:
        if reason == STOP_LOSS or reason == TRAILING_STOP_LOSS or reason == LIQUIDATION:
            rate = _stop_rate(rules, trade, bar, reason, dur)
        elif reason == ROI:
            rate = _roi_rate(rules, trade, bar, roi_minutes, roi_ratio, dur, ff)
        else:
            rate = bar.open
        # a new exit order replaces one still open (``handle_similar_order``)
        trade.pending = round_half_up_tick(rate, trade.price_dec)
        trade.pending_reason = reason
    elif trade.pending_reason == EXIT_NONE:
        return
    # ``_process_exit_order``: the order fills only at a price inside the candle; one outside
    # (freqtrade's worst-case trailing stop in the opening candle can be, with leverage) stays
    # open for the next candles. In spot mode every exit price lies inside its candle with the
    # candles' ticks, so spot fills at once (as it always has: an engine-only fixed tick may round
    # a price just outside the candle, and spot results must not change).
    if not rules.futures or bar.low <= trade.pending <= bar.high:
        _close(trades, ledger, trade, p, t, trade.pending, trade.pending_reason, rules)


@njit(cache=True, inline="always")
def _trail_stop(rules: Rules, trade: np.record, bar: np.record, profit_best: float) -> None:
    """freqtrade's ``ft_stoploss_adjust``: move the stop from the candle's best price
    (``adjust_stop_loss``: ``stoploss / leverage`` from that price)."""
    sd = trade.side
    dir_ok = trade.stop < bar.low if sd == 1 else trade.stop > bar.high
    if not dir_ok or (rules.only_offset and profit_best < rules.tsp_offset):
        return
    value = rules.stoploss
    if not np.isnan(rules.tsp) and profit_best > rules.tsp_offset:
        value = rules.tsp
    v = abs(value / trade.leverage)
    if sd == 1:
        new_stop = round_up_tick(bar.high * (1.0 - v), trade.price_dec)
        moved = new_stop > trade.stop
    else:
        new_stop = round_down_tick(bar.low * (1.0 + v), trade.price_dec)
        moved = new_stop < trade.stop
    if moved:
        trade.stop = new_stop
        trade.stop_pct = -abs(value)
        trade.trailing = True


@njit(cache=True, inline="always")
def _exit_reason(
    rules: Rules,
    trade: np.record,
    bar: np.record,
    prev: np.record,
    profit_open: float,
    profit_best: float,
    roi_ratio: float,
) -> int:
    """The exit code in freqtrade's order: signal, stoploss (or, when the stop is not hit, the
    liquidation: ``ft_stoploss_reached``), ROI, trailing stop; else none.

    ``roi_ratio`` is the ROI step in force (NaN before the first step).
    """
    sd = trade.side
    enter_sig = prev.enter_long if sd == 1 else prev.enter_short
    exit_sig = prev.exit_long if sd == 1 else prev.exit_short
    sl_hit = trade.stop >= bar.low if sd == 1 else trade.stop <= bar.high
    liq_hit = trade.liq != 0.0 and (trade.liq >= bar.low if sd == 1 else trade.liq <= bar.high)
    roi_hit = (
        not np.isnan(roi_ratio)
        and not (enter_sig and rules.ignore_roi_if_entry)
        and profit_best > roi_ratio
    )
    sig_hit = (
        rules.use_exit_signal
        and exit_sig
        and not enter_sig
        and (not rules.exit_profit_only or profit_open > rules.exit_profit_offset)
    )
    if sig_hit:
        return EXIT_SIGNAL
    if sl_hit and not trade.trailing:
        return STOP_LOSS
    if liq_hit and not sl_hit:
        return LIQUIDATION
    if roi_hit:
        return ROI
    if sl_hit:
        return TRAILING_STOP_LOSS
    return EXIT_NONE


@njit(cache=True, inline="always")
def _stop_rate(rules: Rules, trade: np.record, bar: np.record, reason: int, dur: int) -> float:
    """Fill of a (trailing) stop or a liquidation (``_get_close_rate_for_stoploss``): the stop or
    liquidation price, the open when the candle gapped past it, or freqtrade's worst case for a
    trailing stop inside the opening candle (distances divided by the leverage)."""
    sd = trade.side
    op = bar.open
    stop = trade.liq if reason == LIQUIDATION else trade.stop
    gapped = stop > bar.high if sd == 1 else stop < bar.low
    if gapped:
        return op
    if reason == TRAILING_STOP_LOSS and dur == 0:
        lev = trade.leverage
        if rules.only_offset and not np.isnan(rules.tsp) and rules.tsp != 0.0:
            rate = op * (1.0 + sd * abs(rules.tsp_offset) - sd * abs(rules.tsp / lev))
        else:
            rate = op * (1.0 - sd * abs(trade.stop_pct / lev))
        return max(bar.low, rate) if sd == 1 else min(bar.high, rate)
    return stop


@njit(cache=True, inline="always")
def _roi_rate(
    rules: Rules,
    trade: np.record,
    bar: np.record,
    roi_minutes: int,
    roi_ratio: float,
    dur: int,
    ff: float,
) -> float:
    """Fill of a ROI exit: the ROI price clipped to the candle, or the open when a new ROI step
    starts on this candle beyond it (or the step is the -1 "exit now").

    The ROI price is ``LocalTrade.calc_close_rate_for_roi``: the rate whose leveraged profit ratio,
    funding fees ``ff`` included, equals the step (``close_value(rate) = alpha * rate + beta``).
    """
    op = bar.open
    if roi_ratio == -1.0 and roi_minutes % rules.tf_min == 0:
        return op
    droi = roi_ratio / trade.leverage
    unit = np.nan
    if rules.futures and rules.fee_dec >= 0:
        factor = np.int64(10) ** rules.fee_dec - trade.side * rules.fee_units
        unit = exact_product(trade.amount, trade.amount_dec, 1.0, 0, factor, rules.fee_dec)
    if trade.side == 1:
        value_at_0 = 0.0 + ff
        unit = trade.amount * (1.0 - rules.fee) if np.isnan(unit) else unit
        value_at_1 = unit + ff
        adj = 1.0 + droi
    else:
        value_at_0 = 0.0 - ff
        unit = trade.amount * (1.0 + rules.fee) if np.isnan(unit) else unit
        value_at_1 = unit - ff
        adj = 1.0 + droi / -1.0
    target = (adj * trade.value - value_at_0) / (value_at_1 - value_at_0)
    new_roi = op > target if trade.side == 1 else op < target
    if dur > 0 and dur == roi_minutes and roi_minutes % rules.tf_min == 0 and new_roi:
        return op
    return min(max(target, bar.low), bar.high)


@njit(cache=True, inline="always")
def _close(
    trades: np.ndarray,
    ledger: np.record,
    trade: np.record,
    p: int,
    close_idx: int,
    rate: float,
    reason: int,
    rules: Rules,
) -> None:
    """Close ``trade`` of pair ``p`` at ``rate`` on row ``close_idx``: record it, settle the
    wallet and free the slot (``LocalTrade.recalc_trade_from_orders``: ``profit_abs`` rounded to
    8 decimals, ``profit_ratio = profit_abs / open value * leverage``; in futures mode the close
    value in exact decimals like freqtrade's ``_calc_base_close``)."""
    sd = trade.side
    ff = _funding_fees(trade)
    base = _exact_value(rules, trade, rate, -sd)
    if np.isnan(base):
        pa = round(_profit_abs(sd, trade.amount, rate, rules.fee, trade.value, ff), 8)
    elif sd == 1:
        pa = round((base + ff) - trade.value, 8)
    else:
        pa = round(trade.value - (base - ff), 8)
    rec = trades[ledger.n_trades]
    rec.pair = p
    rec.open_idx = trade.open_idx
    rec.close_idx = close_idx
    rec.open_rate = trade.rate
    rec.close_rate = rate
    rec.amount = trade.amount
    rec.stake_amount = trade.stake
    rec.profit_ratio = pa / trade.value * trade.leverage
    rec.profit_abs = pa
    rec.exit_reason = reason
    rec.is_short = sd == -1
    rec.leverage = trade.leverage
    rec.funding_fees = ff
    ledger.n_trades += 1
    ledger.realized += pa
    ledger.tied -= trade.stake
    ledger.n_open -= 1
    trade.side = 0


@njit(cache=True, inline="always")
def _mark_to_market(
    candles: np.ndarray,
    rules: Rules,
    book: np.ndarray,
    ledger: np.record,
    t: int,
    last: np.ndarray,
    held: np.ndarray,
) -> float:
    """Balance after row ``t``'s close (open trades valued at their pair's latest close net of
    the exit fee, with the funding fees booked up to row ``t``); sets ``held`` to each pair's
    side."""
    eq = rules.wallet + ledger.realized
    for p in range(book.shape[0]):
        trade = book[p]
        if trade.side != 0:
            close = candles[min(t, last[p]), p].close
            eq += _profit_abs(
                trade.side, trade.amount, close, rules.fee, trade.value, _funding_fees(trade)
            )
            held[p] = trade.side
    return eq


@njit(cache=True, inline="always")
def _force_exits(
    candles: np.ndarray,
    rules: Rules,
    book: np.ndarray,
    ledger: np.record,
    trades: np.ndarray,
    last: np.ndarray,
) -> None:
    """freqtrade's end of backtest: trades still open exit at the open of their pair's last row
    (their funding fees as booked on that row)."""
    for p in range(book.shape[0]):
        trade = book[p]
        if trade.side == 0:
            continue
        r = last[p]
        rate = round_half_up_tick(candles[r, p].open, trade.price_dec)
        _close(trades, ledger, trade, p, r, rate, FORCE_EXIT, rules)
