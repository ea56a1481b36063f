"""Numba kernels of the backtest engine: freqtrade's trade simulation and price/amount precision.

Everything here is a pure numeric kernel (arrays in, arrays out, no I/O, no logging). The public
wrapper that validates input and builds DataFrames is :mod:`optimize.backtest`; this module only
holds the compiled loops, which mirror freqtrade 2026.9's ``optimize/backtesting.py``,
``strategy/interface.py`` (``should_exit``, ``ft_stoploss_adjust``, ``min_roi_reached``),
``persistence/trade_model.py`` (profit and stop arithmetic) and ``wallets.py`` (stake sizing).

Conventions:
    * 2-D arrays are ``(n_candles, n_pairs)`` on one shared candle grid; pair ``p`` has candles on
      rows ``first[p] .. last[p]`` (inclusive, contiguous).
    * Signals are given on the candle where they are computed (at its close); the kernel applies
      the signal of row ``t - 1`` on row ``t`` (fill at row ``t``'s open), exactly like freqtrade's
      one-candle shift. A pair's first row therefore never trades.
    * Decimal counts ``d`` stand for the tick size ``10**-d``; ``-1`` means "no rounding".
"""

from __future__ import annotations

import numpy as np
from numba import njit

EXIT_NONE = 0
EXIT_SIGNAL = 1
STOP_LOSS = 2
ROI = 3
TRAILING_STOP_LOSS = 4
FORCE_EXIT = 5
EXIT_REASONS = ("", "exit_signal", "stop_loss", "roi", "trailing_stop_loss", "force_exit")
"""Exit reason strings (freqtrade's ``ExitType`` values), indexed by the codes above."""

_SIGNIFICANT_DIGITS = 14  # freqtrade formats prices with 14 significant digits to count decimals


_FINE_TICKS = 2.0**53 - 1.0
"""Tick count of ``|x|`` from which the tick is finer than the float spacing around ``x``.

One below ``2**53``: ``x * scale`` can round to ``2**53 - 1`` while the search would still step
``m`` up to ``2**53`` (e.g. ``90071.99254740991`` with 11 decimals), where ``m + 1.0 == m``.
"""


@njit(cache=True)
def _tick_units(x: float, decimals: int) -> tuple[float, float, bool]:
    """Ticks below ``x`` and whether ``x`` already sits on a tick, robust to float noise.

    Args:
        x: the value to round (price or amount).
        decimals: tick size ``10**-decimals``; ``< 0``: no rounding.

    Returns:
        ``(m, scale, on_tick)``: ``scale = 10**decimals``, ``m`` the largest integer with
        ``m / scale <= x`` in float arithmetic, and ``on_tick`` True when ``x`` is the float
        nearest to a tick multiple (``m / scale == x``). ``on_tick`` is also True (and ``m`` is
        meaningless) for ``decimals < 0``, for non-finite ``x`` and from :data:`_FINE_TICKS`
        ticks on (e.g. ``100.3`` with 15 decimals): the tick is then finer than the spacing of the
        floats around ``x``, so every float is the nearest float of a tick multiple and freqtrade
        leaves it unchanged. Below that bound ``m + 1 <= 2**53`` stays an exact float, so the
        search ends.
    """
    if decimals < 0:
        return 0.0, 1.0, True
    scale = 10.0**decimals
    if not abs(x) * scale < _FINE_TICKS:  # also NaN and +-inf
        return 0.0, scale, True
    m = np.floor(x * scale)
    while (m + 1.0) / scale <= x:
        m += 1.0
    while m / scale > x:
        m -= 1.0
    return m, scale, m / scale == x


@njit(cache=True)
def round_up_tick(x: float, decimals: int) -> float:
    """Round ``x`` up to the tick ``10**-decimals`` as freqtrade's ``price_to_precision(ROUND_UP)``.

    freqtrade works on the shortest decimal representation of the float: a value whose float is
    the nearest float of a tick multiple stays unchanged, anything else goes to the next tick.
    ``decimals < 0`` returns ``x`` unchanged.
    """
    m, scale, on_tick = _tick_units(x, decimals)
    if on_tick:
        return x
    return (m + 1.0) / scale


@njit(cache=True)
def round_down_tick(x: float, decimals: int) -> float:
    """Round ``x`` down to the tick ``10**-decimals`` (freqtrade's ROUND_DOWN / ccxt TRUNCATE)."""
    m, scale, on_tick = _tick_units(x, decimals)
    if on_tick:
        return x
    return m / scale


@njit(cache=True)
def round_half_up_tick(x: float, decimals: int) -> float:
    """Round ``x`` to the nearest tick, halves away from zero (ccxt ``decimal_to_precision`` ROUND)."""
    m, scale, on_tick = _tick_units(x, decimals)
    if on_tick:
        return x
    if x >= (2.0 * m + 1.0) / (2.0 * scale):
        return (m + 1.0) / scale
    return m / scale


@njit(cache=True)
def _value_decimals(value: float) -> int:
    """Decimals of one price as freqtrade counts them (14 significant digits, zeros trimmed)."""
    v = abs(value)
    if not np.isfinite(v) or v == 0.0:
        return -1
    exponent = int(np.floor(np.log10(v)))
    k = _SIGNIFICANT_DIGITS - 1 - exponent
    s = np.round(v * 10.0**k)
    if s >= 10.0**_SIGNIFICANT_DIGITS:  # log10 rounded across a power of ten
        k -= 1
        s = np.round(v * 10.0**k)
    if k <= 0:
        return -1
    digits = np.int64(s)
    while k > 0 and digits % 10 == 0:
        digits //= 10
        k -= 1
    return k if k > 0 else -1


@njit(cache=True)
def price_decimals(values: np.ndarray) -> np.ndarray:
    """Decimal places of each price as freqtrade counts them (14 significant digits, zeros trimmed).

    Args:
        values: 1-D float array of prices.

    Returns:
        int64 array, the number of decimals after trimming trailing zeros; ``-1`` where the value
        has no decimal digit (freqtrade's NaN), is zero or is not finite.
    """
    out = np.empty(values.shape[0], np.int64)
    for i in range(values.shape[0]):
        out[i] = _value_decimals(values[i])
    return out


@njit(cache=True)
def monthly_tick_decimals(prices: np.ndarray, month: np.ndarray) -> np.ndarray:
    """Tick decimals per candle: the maximum price decimals of the candle's calendar month.

    This is freqtrade's ``get_tick_size_over_time`` followed by ``Series.asof``: a month whose
    prices have no decimal digit takes the previous month's value (-1 before any is known).

    Args:
        prices: float64 ``(4, n)`` open/high/low/close.
        month: int64 ``(n,)`` calendar-month number of each candle (non-decreasing).

    Returns:
        int64 ``(n,)`` decimals.
    """
    n = month.shape[0]
    out = np.empty(n, np.int64)
    known = -1
    i = 0
    while i < n:
        best = -1
        scale = 1.0
        j = i
        while j < n and month[j] == month[i]:
            for k in range(prices.shape[0]):
                v = prices[k, j]
                if best >= 0:  # fast path: the value has no more decimals than seen so far
                    x = v * scale
                    if abs(x - np.round(x)) <= abs(x) * 1e-15:
                        continue
                d = _value_decimals(v)
                if d > best:
                    best = d
                    scale = 10.0**best
            j += 1
        if best >= 0:
            known = best
        out[i:j] = known
        i = j
    return out


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
def _roi_entry(dur: int, roi_keys: np.ndarray) -> int:
    """Index of the ROI table entry in force after ``dur`` minutes (largest key <= dur), or -1."""
    idx = -1
    for k in range(roi_keys.shape[0]):
        if roi_keys[k] <= dur:
            idx = k
    return idx


@njit(cache=True)
def simulate(
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    enter_long: np.ndarray,
    exit_long: np.ndarray,
    enter_short: np.ndarray,
    exit_short: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    price_dec: np.ndarray,
    amount_dec: np.ndarray,
    tf_min: int,
    roi_keys: np.ndarray,
    roi_vals: np.ndarray,
    fee: float,
    stoploss: float,
    trailing: bool,
    tsp: float,
    tsp_offset: float,
    only_offset: bool,
    unlimited: bool,
    stake_amount: float,
    max_open: int,
    wallet: float,
    balance_ratio: float,
    can_short: bool,
    use_exit_signal: bool,
    exit_profit_only: bool,
    exit_profit_offset: float,
    ignore_roi_if_entry: bool,
):
    """Simulate freqtrade's backtesting loop over all candles and pairs in one O(n * pairs) pass.

    Args:
        o, h, lo, c: prices, float64 ``(n, P)``.
        enter_long, exit_long, enter_short, exit_short: bool ``(n, P)`` signals at candle close.
        first, last: int64 ``(P,)`` first/last row of each pair (inclusive).
        price_dec: int64 ``(n, P)`` tick decimals in force at each row (-1: no rounding).
        amount_dec: int64 ``(P,)`` amount step decimals (-1: no truncation).
        tf_min: candle length in minutes.
        roi_keys, roi_vals: the minimal_roi table sorted by minutes (int64, float64).
        fee: fee per side (ratio). stoploss: negative ratio.
        trailing, tsp, tsp_offset, only_offset: trailing stop settings (``tsp`` NaN = not set).
        unlimited, stake_amount, max_open, wallet, balance_ratio: wallet settings
            (``max_open <= 0``: no limit on open trades).
        can_short: allow short entries. use_exit_signal, exit_profit_only, exit_profit_offset,
            ignore_roi_if_entry: freqtrade's strategy flags of the same names.

    Returns:
        Tuple ``(n_trades, pair, open_idx, close_idx, open_rate, close_rate, amount, stake,
        profit_ratio, profit_abs, reason, is_short, equity, positions)``; the trade arrays are
        valid up to ``n_trades`` and ordered by close, ``equity`` (n,) is the mark-to-market
        balance after each candle (last value: final balance after force exits), ``positions``
        (n, P) int8 is +1 long / -1 short / 0 flat at each candle's close.
    """
    n, n_pairs = o.shape
    cap = 1
    for p in range(n_pairs):
        cap += max(last[p] - first[p] + 1, 0)
    tr_pair = np.empty(cap, np.int64)
    tr_open = np.empty(cap, np.int64)
    tr_close = np.empty(cap, np.int64)
    tr_orate = np.empty(cap, np.float64)
    tr_crate = np.empty(cap, np.float64)
    tr_amount = np.empty(cap, np.float64)
    tr_stake = np.empty(cap, np.float64)
    tr_pr = np.empty(cap, np.float64)
    tr_pa = np.empty(cap, np.float64)
    tr_reason = np.empty(cap, np.int64)
    tr_short = np.empty(cap, np.bool_)
    equity = np.empty(n, np.float64)
    positions = np.zeros((n, n_pairs), np.int8)

    side = np.zeros(n_pairs, np.int64)
    t_open = np.zeros(n_pairs, np.int64)
    t_id = np.zeros(n_pairs, np.int64)
    t_dec = np.zeros(n_pairs, np.int64)
    t_rate = np.zeros(n_pairs, np.float64)
    t_amount = np.zeros(n_pairs, np.float64)
    t_stake = np.zeros(n_pairs, np.float64)
    t_value = np.zeros(n_pairs, np.float64)
    t_stop = np.zeros(n_pairs, np.float64)
    t_stop_pct = np.zeros(n_pairs, np.float64)
    t_trailing = np.zeros(n_pairs, np.bool_)
    order = np.empty(n_pairs, np.int64)

    has_tsp = not np.isnan(tsp)
    sl = abs(stoploss)
    realized = 0.0
    tied = 0.0
    n_open = 0
    next_id = 0
    n_tr = 0
    last_row = n - 1

    for t in range(n):
        # freqtrade visits pairs with open trades first (in opening order), then the whitelist.
        k = 0
        for p in range(n_pairs):
            if side[p] != 0:
                order[k] = p
                k += 1
        for a in range(1, k):
            q = order[a]
            b = a - 1
            while b >= 0 and t_id[order[b]] > t_id[q]:
                order[b + 1] = order[b]
                b -= 1
            order[b + 1] = q
        for p in range(n_pairs):
            if side[p] == 0:
                order[k] = p
                k += 1

        for j in range(n_pairs):
            p = order[j]
            if t <= first[p] or t > last[p]:
                continue
            s = t - 1
            el = enter_long[s, p]
            xl = exit_long[s, p]
            es = can_short and enter_short[s, p]
            xs = can_short and exit_short[s, p]
            tdir = 0
            if el and not (xl or es):
                tdir = 1
            elif es and not (xs or el):
                tdir = -1
            can_enter = t != last_row
            op = o[t, p]
            hp = h[t, p]
            lp = lo[t, p]
            for _rep in range(2):
                exiting = side[p]
                # --- entry (fills at this candle's open) ---
                if (
                    can_enter
                    and tdir != 0
                    and side[p] == 0
                    and (max_open <= 0 or n_open < max_open)
                ):
                    free = wallet + realized - tied
                    available = min((tied + free) * balance_ratio - tied, free)
                    if unlimited:
                        stake = min((available + tied) / max_open, available)
                    else:
                        stake = stake_amount if available >= stake_amount else 0.0
                    if stake > 0.0:
                        stake = min(stake, available)
                        amount = stake / op
                        if amount_dec[p] >= 0:
                            amount = round_down_tick(amount, amount_dec[p])
                        if amount > 0.0:
                            next_id += 1
                            side[p] = tdir
                            t_id[p] = next_id
                            t_open[p] = t
                            t_rate[p] = op
                            t_amount[p] = amount
                            t_stake[p] = amount * op
                            t_dec[p] = price_dec[t, p]
                            if tdir == 1:
                                t_value[p] = amount * op * (1.0 + fee)
                                t_stop[p] = round_up_tick(op * (1.0 - sl), t_dec[p])
                            else:
                                t_value[p] = amount * op * (1.0 - fee)
                                t_stop[p] = round_down_tick(op * (1.0 + sl), t_dec[p])
                            t_stop_pct[p] = -sl
                            t_trailing[p] = False
                            tied += t_stake[p]
                            n_open += 1
                # --- exits on this candle (should_exit + close-rate rules) ---
                sd = side[p]
                if sd != 0:
                    dur = (t - t_open[p]) * tf_min
                    enter_sig = el if sd == 1 else enter_short[s, p]
                    exit_sig = xl if sd == 1 else exit_short[s, p]
                    amount = t_amount[p]
                    value = t_value[p]
                    profit_open = _profit_ratio(sd, amount, op, fee, value)
                    profit_best = _profit_ratio(sd, amount, hp if sd == 1 else lp, fee, value)
                    if trailing:
                        dir_ok = t_stop[p] < lp if sd == 1 else t_stop[p] > hp
                        if dir_ok and not (only_offset and profit_best < tsp_offset):
                            v = sl
                            if has_tsp and profit_best > tsp_offset:
                                v = abs(tsp)
                            if sd == 1:
                                new_stop = round_up_tick(hp * (1.0 - v), t_dec[p])
                                moved = new_stop > t_stop[p]
                            else:
                                new_stop = round_down_tick(lp * (1.0 + v), t_dec[p])
                                moved = new_stop < t_stop[p]
                            if moved:
                                t_stop[p] = new_stop
                                t_stop_pct[p] = -v
                                t_trailing[p] = True
                    sl_hit = t_stop[p] >= lp if sd == 1 else t_stop[p] <= hp
                    roi_idx = _roi_entry(dur, roi_keys)
                    roi_hit = (
                        roi_idx >= 0
                        and not (enter_sig and ignore_roi_if_entry)
                        and profit_best > roi_vals[roi_idx]
                    )
                    sig_hit = (
                        use_exit_signal
                        and exit_sig
                        and not enter_sig
                        and (not exit_profit_only or profit_open > exit_profit_offset)
                    )
                    reason = EXIT_NONE
                    if sig_hit:
                        reason = EXIT_SIGNAL
                    elif sl_hit and not t_trailing[p]:
                        reason = STOP_LOSS
                    elif roi_hit:
                        reason = ROI
                    elif sl_hit:
                        reason = TRAILING_STOP_LOSS
                    if reason != EXIT_NONE:
                        rate = op
                        if reason == STOP_LOSS or reason == TRAILING_STOP_LOSS:
                            stop = t_stop[p]
                            gapped = stop > hp if sd == 1 else stop < lp
                            if gapped:
                                rate = op
                            elif reason == TRAILING_STOP_LOSS and dur == 0:
                                # Worst case inside the opening candle (freqtrade's rule).
                                if only_offset and has_tsp and tsp != 0.0:
                                    rate = op * (1.0 + sd * abs(tsp_offset) - sd * abs(tsp))
                                else:
                                    rate = op * (1.0 - sd * abs(t_stop_pct[p]))
                                rate = max(lp, rate) if sd == 1 else min(hp, rate)
                            else:
                                rate = stop
                        elif reason == ROI:
                            roi_key = roi_keys[roi_idx]
                            roi = roi_vals[roi_idx]
                            if roi == -1.0 and roi_key % tf_min == 0:
                                rate = op
                            else:
                                if sd == 1:
                                    target = (1.0 + roi) * value / (amount * (1.0 - fee))
                                    new_roi = op > target
                                else:
                                    target = (1.0 - roi) * value / (amount * (1.0 + fee))
                                    new_roi = op < target
                                if dur > 0 and dur == roi_key and roi_key % tf_min == 0 and new_roi:
                                    rate = op
                                else:
                                    rate = min(max(target, lp), hp)
                        rate = round_half_up_tick(rate, t_dec[p])
                        # close the trade (the exit order fills inside this candle)
                        pa = round(_profit_abs(sd, amount, rate, fee, value), 8)
                        tr_pair[n_tr] = p
                        tr_open[n_tr] = t_open[p]
                        tr_close[n_tr] = t
                        tr_orate[n_tr] = t_rate[p]
                        tr_crate[n_tr] = rate
                        tr_amount[n_tr] = amount
                        tr_stake[n_tr] = t_stake[p]
                        tr_pr[n_tr] = pa / value
                        tr_pa[n_tr] = pa
                        tr_reason[n_tr] = reason
                        tr_short[n_tr] = sd == -1
                        n_tr += 1
                        realized += pa
                        tied -= t_stake[p]
                        n_open -= 1
                        side[p] = 0
                closed_dir = exiting if (exiting != 0 and side[p] == 0) else 0
                if not can_short or tdir == 0 or closed_dir == 0 or closed_dir == tdir:
                    break

        eq = wallet + realized
        for p in range(n_pairs):
            if side[p] != 0:
                r = min(t, last[p])
                eq += _profit_abs(side[p], t_amount[p], c[r, p], fee, t_value[p])
                positions[t, p] = side[p]
        equity[t] = eq

    # Trades still open at the end: freqtrade force-exits them at the open of the pair's last row.
    for p in range(n_pairs):
        sd = side[p]
        if sd == 0:
            continue
        r = last[p]
        rate = round_half_up_tick(o[r, p], t_dec[p])
        pa = round(_profit_abs(sd, t_amount[p], rate, fee, t_value[p]), 8)
        tr_pair[n_tr] = p
        tr_open[n_tr] = t_open[p]
        tr_close[n_tr] = r
        tr_orate[n_tr] = t_rate[p]
        tr_crate[n_tr] = rate
        tr_amount[n_tr] = t_amount[p]
        tr_stake[n_tr] = t_stake[p]
        tr_pr[n_tr] = pa / t_value[p]
        tr_pa[n_tr] = pa
        tr_reason[n_tr] = FORCE_EXIT
        tr_short[n_tr] = sd == -1
        n_tr += 1
        realized += pa
        side[p] = 0
    if n > 0:
        equity[n - 1] = wallet + realized

    return (
        n_tr,
        tr_pair,
        tr_open,
        tr_close,
        tr_orate,
        tr_crate,
        tr_amount,
        tr_stake,
        tr_pr,
        tr_pa,
        tr_reason,
        tr_short,
        equity,
        positions,
    )
