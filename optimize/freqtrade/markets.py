"""Fetching an exchange's markets with freqtrade: ``python -m optimize markets``.

:func:`fetch_markets` is what ``python -m optimize markets --pairs ... --trading-mode ... --out
FILE`` does: freqtrade's own exchange class loads the markets (ccxt ``load_markets`` with
freqtrade's options for the trading mode) and the pairs' markets are returned, to be saved with
:func:`optimize.markets.save_markets`. Without network access it fails with one line saying so.
Reading a markets file, and which one a study reads, is :mod:`optimize.markets` (the data floor).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from base.checks import check_choice
from optimize.backtest.settings import TRADING_MODES
from optimize.markets import MarketsError

logger = logging.getLogger(__name__)


def _exchange_config(pairs: Sequence[str], trading_mode: str, exchange: str) -> dict[str, Any]:
    from freqtrade.enums import RunMode

    from optimize.freqtrade.offline import exchange_section

    futures = trading_mode == "futures"
    quotes = sorted({p.split("/")[1].split(":")[0] for p in pairs if "/" in p}) or ["USDT"]
    return {
        "exchange": exchange_section(exchange, pairs),
        "trading_mode": trading_mode,
        "margin_mode": "isolated" if futures else "",
        "dry_run": True,
        "stake_currency": quotes[0],
        "candle_type_def": "futures" if futures else "spot",
        "runmode": RunMode.UTIL_EXCHANGE,
    }


class _Failures(logging.Handler):
    """Collects the reason freqtrade logs when it cannot load the markets (it logs and goes on)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.reasons.append(f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}")
        elif record.levelno >= logging.WARNING:
            self.reasons.append(record.getMessage())


@contextmanager
def _captured_freqtrade_logs() -> Iterator[_Failures]:
    """freqtrade's log records go to the returned handler only (its traceback of an unreachable
    exchange would otherwise reach the console)."""
    ft = logging.getLogger("freqtrade")
    handler = _Failures()
    level, propagate = ft.level, ft.propagate
    ft.addHandler(handler)
    ft.setLevel(logging.WARNING)
    ft.propagate = False
    try:
        yield handler
    finally:
        ft.removeHandler(handler)
        ft.setLevel(level)
        ft.propagate = propagate


def fetch_markets(
    pairs: Sequence[str], trading_mode: str = "spot", exchange: str = "binance"
) -> dict[str, dict[str, Any]]:
    """The exchange's markets of ``pairs``, loaded by freqtrade's own exchange class.

    freqtrade's ``Exchange`` (its ccxt options for the trading mode) loads the exchange's markets
    (ccxt ``load_markets``, network); the markets of ``pairs`` are returned as ccxt holds them.

    Raises:
        MarketsError: the exchange could not be reached (one line with the reason), or it has no
            market for a pair (named, with the trading mode).
    """
    from freqtrade.exceptions import OperationalException
    from freqtrade.resolvers import ExchangeResolver

    check_choice("trading_mode", trading_mode, TRADING_MODES)
    if not pairs:
        raise MarketsError("--pairs must name at least one pair.")
    with _captured_freqtrade_logs() as failures:
        try:
            api = ExchangeResolver.load_exchange(
                _exchange_config(pairs, trading_mode, exchange), validate=False
            )
        except OperationalException as exc:  # e.g. an exchange freqtrade does not know
            raise MarketsError(f"freqtrade cannot use exchange {exchange!r}: {exc}") from None
        try:
            api.reload_markets(True, load_leverage_tiers=False)
            markets = dict(api.markets or {})
        finally:
            api.close()
    if not markets:
        reason = failures.reasons[-1] if failures.reasons else "no markets returned"
        raise MarketsError(
            f"could not load {exchange}'s {trading_mode} markets (is the exchange reachable from "
            f"this machine?): {' '.join(reason.split())}"
        )
    missing = [p for p in pairs if p not in markets]
    if missing:
        raise MarketsError(
            f"{exchange} has no {trading_mode} market for {', '.join(missing)} (futures pairs are "
            "written BASE/QUOTE:SETTLE, e.g. BTC/USDT:USDT)."
        )
    return {p: markets[p] for p in pairs}


__all__ = ["fetch_markets"]
