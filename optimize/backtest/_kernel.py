"""Numba kernel of the backtest engine: freqtrade's trade loop over all candles and pairs.

Everything here is a pure numeric kernel (arrays in, arrays out, no I/O, no logging). The public
wrapper that validates input and builds DataFrames is :mod:`optimize.backtest.engine`; this module
only holds the compiled loop, which mirrors freqtrade 2026.9's ``optimize/backtesting.py``,
``strategy/interface.py`` (``should_exit``, ``ft_stoploss_adjust``, ``min_roi_reached``),
``persistence/trade_model.py`` (profit and stop arithmetic) and ``wallets.py`` (stake sizing).
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
array argument costs reference counting on each call.

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
"""

from __future__ import annotations

import numpy as np
from numba import njit

from optimize.backtest._precision import round_down_tick, round_half_up_tick, round_up_tick
from optimize.backtest._records import (
    CANDLE_DTYPE,
    EXIT_NONE,
    EXIT_SIGNAL,
    FORCE_EXIT,
    LEDGER_DTYPE,
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
def _profit_ratio(side: int, amount: float, rate: float, fee: float, open_value: float) -> float:
    """freqtrade's ``calc_profit_ratio(rate)``: net of both fees, rounded to 8 decimals."""
    if side == 1:
        return round(amount * rate * (1.0 - fee) / open_value - 1.0, 8)
    return round(1.0 - amount * rate * (1.0 + fee) / open_value, 8)


@njit(cache=True, inline="always")
def _profit_abs(side: int, amount: float, rate: float, fee: float, open_value: float) -> float:
    """Net profit of a trade valued at ``rate``, in stake currency, before any rounding.

    freqtrade's ``calc_profit`` without its rounding to 8 decimals: the exit value net of the
    exit fee against ``open_value`` (the entry value with its fee), for ``side`` +1 (long) or -1
    (short).
    """
    if side == 1:
        return amount * rate * (1.0 - fee) - open_value
    return open_value - amount * rate * (1.0 + fee)


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
    for p in range(n_pairs):
        book[p].amount_dec = market.amount_dec[p]
    ledger = np.zeros(1, LEDGER_DTYPE)  # one record; its array lives as long as the loop
    order = np.empty(n_pairs, np.int64)
    for t in range(n):
        _visit_order(book, order)
        for j in range(n_pairs):
            p = order[j]
            if first[p] < t <= last[p]:
                bar, prev = candles[t, p], candles[t - 1, p]
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
    """One pair on row ``t``: the entry at the open, then the exit checks (freqtrade's order).

    An exit that closes a trade against the signal's direction lets the pair enter again on the
    same candle (freqtrade's reversal with ``can_short``), hence at most two passes.
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
def _stake(rules: Rules, ledger: np.record) -> float:
    """Stake of a new trade from freqtrade's wallet (``get_trade_stake_amount``); 0: no entry."""
    free = rules.wallet + ledger.realized - ledger.tied
    available = min((ledger.tied + free) * rules.balance_ratio - ledger.tied, free)
    if rules.unlimited:
        stake = min((available + ledger.tied) / rules.max_open, available)
    else:
        stake = rules.stake_amount if available >= rules.stake_amount else 0.0
    if stake > 0.0:
        stake = min(stake, available)
    return stake


@njit(cache=True, inline="always")
def _enter(
    rules: Rules, bar: np.record, trade: np.record, ledger: np.record, t: int, tdir: int
) -> None:
    """Open a trade in direction ``tdir`` at the candle's open when the pair is flat, a slot is
    free and the wallet gives a positive stake and amount."""
    if trade.side != 0 or not (rules.max_open <= 0 or ledger.n_open < rules.max_open):
        return
    stake = _stake(rules, ledger)
    if not stake > 0.0:
        return
    op = bar.open
    amount = stake / op
    if trade.amount_dec >= 0:
        amount = round_down_tick(amount, trade.amount_dec)
    if not amount > 0.0:
        return
    sl = abs(rules.stoploss)
    ledger.next_id += 1
    trade.side = tdir
    trade.id = ledger.next_id
    trade.open_idx = t
    trade.rate = op
    trade.amount = amount
    trade.stake = amount * op
    trade.price_dec = bar.price_dec
    if tdir == 1:
        trade.value = amount * op * (1.0 + rules.fee)
        trade.stop = round_up_tick(op * (1.0 - sl), trade.price_dec)
    else:
        trade.value = amount * op * (1.0 - rules.fee)
        trade.stop = round_down_tick(op * (1.0 + sl), trade.price_dec)
    trade.stop_pct = -sl
    trade.trailing = False
    ledger.tied += trade.stake
    ledger.n_open += 1


@njit(cache=True, inline="always")
def _roi_entry(dur: int, roi: np.ndarray) -> int:
    """Index of the ROI step in force after ``dur`` minutes (largest key <= dur), or -1."""
    idx = -1
    for k in range(roi.shape[0]):
        if roi[k].minutes <= dur:
            idx = k
    return idx


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
    """freqtrade's ``should_exit`` on row ``t`` (the trailing stop moved first), then the close."""
    sd = trade.side
    dur = (t - trade.open_idx) * rules.tf_min
    best = bar.high if sd == 1 else bar.low
    profit_open = _profit_ratio(sd, trade.amount, bar.open, rules.fee, trade.value)
    profit_best = _profit_ratio(sd, trade.amount, best, rules.fee, trade.value)
    if rules.trailing:
        _trail_stop(rules, trade, bar, profit_best)
    k = _roi_entry(dur, roi)
    roi_minutes = roi[k].minutes if k >= 0 else -1
    roi_ratio = roi[k].ratio if k >= 0 else np.nan
    reason = _exit_reason(rules, trade, bar, prev, profit_open, profit_best, roi_ratio)
    if reason == EXIT_NONE:
        return
    if reason == STOP_LOSS or reason == TRAILING_STOP_LOSS:
        rate = _stop_rate(rules, trade, bar, reason, dur)
    elif reason == ROI:
        rate = _roi_rate(rules, trade, bar, roi_minutes, roi_ratio, dur)
    else:
        rate = bar.open
    rate = round_half_up_tick(rate, trade.price_dec)
    _close(trades, ledger, trade, p, t, rate, reason, rules.fee)


@njit(cache=True, inline="always")
def _trail_stop(rules: Rules, trade: np.record, bar: np.record, profit_best: float) -> None:
    """freqtrade's ``ft_stoploss_adjust``: move the stop from the candle's best price."""
    sd = trade.side
    dir_ok = trade.stop < bar.low if sd == 1 else trade.stop > bar.high
    if not dir_ok or (rules.only_offset and profit_best < rules.tsp_offset):
        return
    v = abs(rules.stoploss)
    if not np.isnan(rules.tsp) and profit_best > rules.tsp_offset:
        v = abs(rules.tsp)
    if sd == 1:
        new_stop = round_up_tick(bar.high * (1.0 - v), trade.price_dec)
        moved = new_stop > trade.stop
    else:
        new_stop = round_down_tick(bar.low * (1.0 + v), trade.price_dec)
        moved = new_stop < trade.stop
    if moved:
        trade.stop = new_stop
        trade.stop_pct = -v
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
    """The exit code in freqtrade's order: signal, stoploss, ROI, trailing stop; else none.

    ``roi_ratio`` is the ROI step in force (NaN before the first step).
    """
    sd = trade.side
    enter_sig = prev.enter_long if sd == 1 else prev.enter_short
    exit_sig = prev.exit_long if sd == 1 else prev.exit_short
    sl_hit = trade.stop >= bar.low if sd == 1 else trade.stop <= bar.high
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
    if roi_hit:
        return ROI
    if sl_hit:
        return TRAILING_STOP_LOSS
    return EXIT_NONE


@njit(cache=True, inline="always")
def _stop_rate(rules: Rules, trade: np.record, bar: np.record, reason: int, dur: int) -> float:
    """Fill of a (trailing) stop: the stop price, the open when the candle gapped past it, or
    freqtrade's worst case for a trailing stop inside the opening candle."""
    sd = trade.side
    op = bar.open
    stop = trade.stop
    gapped = stop > bar.high if sd == 1 else stop < bar.low
    if gapped:
        return op
    if reason == TRAILING_STOP_LOSS and dur == 0:
        if rules.only_offset and not np.isnan(rules.tsp) and rules.tsp != 0.0:
            rate = op * (1.0 + sd * abs(rules.tsp_offset) - sd * abs(rules.tsp))
        else:
            rate = op * (1.0 - sd * abs(trade.stop_pct))
        return max(bar.low, rate) if sd == 1 else min(bar.high, rate)
    return stop


@njit(cache=True, inline="always")
def _roi_rate(
    rules: Rules, trade: np.record, bar: np.record, roi_minutes: int, roi_ratio: float, dur: int
) -> float:
    """Fill of a ROI exit: the ROI price clipped to the candle, or the open when a new ROI step
    starts on this candle beyond it (or the step is the -1 "exit now")."""
    op = bar.open
    if roi_ratio == -1.0 and roi_minutes % rules.tf_min == 0:
        return op
    if trade.side == 1:
        target = (1.0 + roi_ratio) * trade.value / (trade.amount * (1.0 - rules.fee))
        new_roi = op > target
    else:
        target = (1.0 - roi_ratio) * trade.value / (trade.amount * (1.0 + rules.fee))
        new_roi = op < target
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
    fee: float,
) -> None:
    """Close ``trade`` of pair ``p`` at ``rate`` on row ``close_idx``: record it, settle the
    wallet and free the slot."""
    sd = trade.side
    pa = round(_profit_abs(sd, trade.amount, rate, fee, trade.value), 8)
    rec = trades[ledger.n_trades]
    rec.pair = p
    rec.open_idx = trade.open_idx
    rec.close_idx = close_idx
    rec.open_rate = trade.rate
    rec.close_rate = rate
    rec.amount = trade.amount
    rec.stake_amount = trade.stake
    rec.profit_ratio = pa / trade.value
    rec.profit_abs = pa
    rec.exit_reason = reason
    rec.is_short = sd == -1
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
    the exit fee); sets ``held`` to each pair's side."""
    eq = rules.wallet + ledger.realized
    for p in range(book.shape[0]):
        trade = book[p]
        if trade.side != 0:
            close = candles[min(t, last[p]), p].close
            eq += _profit_abs(trade.side, trade.amount, close, rules.fee, trade.value)
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
    """freqtrade's end of backtest: trades still open exit at the open of their pair's last row."""
    for p in range(book.shape[0]):
        trade = book[p]
        if trade.side == 0:
            continue
        r = last[p]
        rate = round_half_up_tick(candles[r, p].open, trade.price_dec)
        _close(trades, ledger, trade, p, r, rate, FORCE_EXIT, rules.fee)
