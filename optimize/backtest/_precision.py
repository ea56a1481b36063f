"""Numba kernels of freqtrade's price and amount precision: tick rounding and decimal counts.

Pure numeric functions (no I/O, no logging) that reproduce ccxt's ``decimal_to_precision`` as
freqtrade calls it (``price_to_precision`` with ROUND_UP / ROUND_DOWN / ROUND, and
``amount_to_precision``, which truncates) and freqtrade's ``get_tick_size_over_time`` (the tick
of each calendar month, inferred from the decimals of its prices). The trade loop
(:mod:`optimize.backtest._kernel`) rounds stops and exit rates with them; the engine
(:mod:`optimize.backtest.engine`) computes the per-candle tick decimals with
:func:`monthly_tick_decimals`.

Decimal counts ``d`` stand for the tick size ``10**-d``; ``-1`` means "no rounding".
"""

from __future__ import annotations

import numpy as np
from numba import njit

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
    """Round ``x`` to the nearest tick, halves away from zero (ccxt ``decimal_to_precision``
    ROUND)."""
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


_INT64_SAFE = 9.0e18  # below 2**63: products under this bound do not overflow int64


@njit(cache=True)
def decimal_units(x: float, decimals: int) -> np.int64:
    """``x`` as an integer count of ``10**-decimals`` (``x`` must lie on that grid)."""
    return np.int64(np.round(x * 10.0**decimals))


@njit(cache=True)
def exact_quotient(n: np.int64, decimals: int) -> float:
    """The float nearest to ``n / 10**decimals`` (``0 <= n < 2**63``, ``0 <= decimals <= 18``),
    ties to even: what ``float()`` of an exact decimal gives.

    Long division in integers: the quotient's leading 54 bits, then round to 53 with the remainder
    as sticky bit. NaN when the integer part reaches ``2**53`` (no caller gets there).
    """
    if n == 0:
        return 0.0
    d = np.int64(1)
    for _ in range(decimals):
        d *= 10
    m = n // d
    r = n - m * d
    if m >= 2**53:
        return np.nan
    shift = 0
    while m < 2**53:
        r *= 2
        bit = 1 if r >= d else 0
        r -= bit * d
        m = 2 * m + bit
        shift += 1
    sig = m >> 1
    if (m & 1) == 1 and (r != 0 or (sig & 1) == 1):
        sig += 1
    return np.ldexp(float(sig), 1 - shift)


@njit(cache=True)
def exact_product(
    amount: float, amount_dec: int, rate: float, price_dec: int, factor: np.int64, factor_dec: int
) -> float:
    """``float(Decimal(amount) * Decimal(rate) * factor / 10**factor_dec)`` for an amount and a rate
    on their decimal grids: freqtrade's ``FtPrecise`` arithmetic of trade values
    (``LocalTrade._calc_open_trade_value``, ``_calc_base_close``), which multiplies the decimal
    representations exactly and rounds once.

    Returns NaN when the grids are unknown (``amount_dec`` or ``price_dec`` < 0) or the product
    does not fit in 63 bits; callers then use the float formula.
    """
    total = amount_dec + price_dec + factor_dec
    if amount_dec < 0 or price_dec < 0 or factor_dec < 0 or total > 18:
        return np.nan
    a = decimal_units(amount, amount_dec)
    r = decimal_units(rate, price_dec)
    if not float(a) * float(r) * float(factor) < _INT64_SAFE or a < 0 or r < 0 or factor < 0:
        return np.nan
    return exact_quotient(a * r * factor, total)
