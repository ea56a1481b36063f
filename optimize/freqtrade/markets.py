"""Markets files: the exchange's markets of a study's pairs, which file a study reads, and how to
get one for any pair.

A markets file holds ccxt's markets of one exchange and trading mode, ``{"markets": {symbol:
market}}`` (ccxt's own market dicts: precision, limits, contract size, ...), plus keys describing
where it came from. The study reads it for the order amount steps (spot and futures) and the
perpetuals' stake limits (futures; :func:`optimize.freqtrade.offline.perpetual_markets`), and
``verify`` serves the same file to freqtrade, which cannot backtest a pair without its market.

* :func:`markets_file_of`: the file of a run config: ``data.markets``, or the embedded Binance file
  of the trading mode (``configs/markets/binance_spot.json`` / ``binance_futures.json``, which
  cover the embedded pairs with the exchange's real filters);
* :func:`read_markets`: the file read and checked for the pairs, one clear error naming the pair,
  the file and the command that saves a file for it;
* :func:`fetch_markets` / :func:`save_markets`: what ``python -m optimize markets --pairs ...
  --trading-mode ... --out FILE`` does: freqtrade's own exchange class loads the markets (ccxt
  ``load_markets`` with freqtrade's options for the trading mode), the pairs' markets are saved.
  Without network access it fails with one line saying so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from base.errors import DataError
from lstm.checks import check_choice
from optimize._version import __version__
from optimize.backtest.settings import TRADING_MODES
from optimize.freqtrade.offline import load_markets, markets_file

logger = logging.getLogger(__name__)

MARKETS_FORMAT = 1
"""Version of the file :func:`save_markets` writes (key ``format``)."""
EMBEDDED_EXCHANGE = "binance"
"""The exchange of the embedded markets files."""


class MarketsError(DataError):
    """A markets file that is missing, malformed or lacks a pair; or markets that could not be
    fetched. The message is one line naming the file or the exchange and what to do."""


def fetch_command(pairs: Sequence[str], trading_mode: str, exchange: str = "binance") -> str:
    """The command that saves a markets file for ``pairs``."""
    return (
        f"python -m optimize markets --exchange {exchange} --pairs {' '.join(pairs)} "
        f"--trading-mode {trading_mode} --out FILE"
    )


def markets_file_of(config: Any) -> Path:
    """The markets file a run config (:class:`optimize.config.RunConfig`) names: ``data.markets``,
    or the embedded Binance file of its trading mode.

    Raises:
        MarketsError: no ``data.markets`` for an exchange other than Binance (the embedded files
            are Binance's markets).
    """
    named = config.data.markets_path
    if named is not None:
        return named
    mode = config.backtest.trading_mode
    if config.data.exchange != EMBEDDED_EXCHANGE:
        raise MarketsError(
            "data.markets: the embedded markets are Binance's, but "
            f"data.exchange={config.data.exchange!r}; save that exchange's markets with `"
            f"{fetch_command(config.data.pairs, mode, config.data.exchange)}` and name FILE as "
            "data.markets."
        )
    return markets_file(mode)


def read_markets(
    path: Path | str,
    pairs: Sequence[str] = (),
    *,
    trading_mode: str = "spot",
    exchange: str = "binance",
) -> dict[str, dict[str, Any]]:
    """A markets file's markets, checked for ``pairs``.

    Args:
        path: the file (``{"markets": {symbol: market}}``).
        pairs: pairs that must have a market.
        trading_mode, exchange: for the command the error names.

    Raises:
        MarketsError: the file is missing, not a markets file, or lacks a pair (one line naming
            the pairs, the file, the pairs it has and the command that saves a file for them).
    """
    path = Path(path)
    if not path.is_file():
        raise MarketsError(
            f"markets file {path} does not exist; save one with "
            f"`{fetch_command(pairs or ['PAIR'], trading_mode, exchange)}`."
        )
    try:
        markets = load_markets(path)
    except json.JSONDecodeError as exc:
        raise MarketsError(f"{path}: not valid JSON ({exc}); expected a markets file.") from None
    except ValueError as exc:
        raise MarketsError(str(exc)) from None
    missing = [p for p in pairs if p not in markets]
    if missing:
        shown = ", ".join(sorted(markets)[:10]) + (" ..." if len(markets) > 10 else "")
        raise MarketsError(
            f"no market for {', '.join(missing)} in the markets file {path} (it has {shown}); "
            f"save the exchange's markets with `{fetch_command(missing, trading_mode, exchange)}` "
            "and name FILE as data.markets in the run config."
        )
    return markets


def _exchange_config(pairs: Sequence[str], trading_mode: str, exchange: str) -> dict[str, Any]:
    from freqtrade.enums import RunMode

    futures = trading_mode == "futures"
    quotes = sorted({p.split("/")[1].split(":")[0] for p in pairs if "/" in p}) or ["USDT"]
    return {
        "exchange": {
            "name": exchange,
            "key": "",
            "secret": "",
            "enable_ws": False,
            "pair_whitelist": list(pairs),
            "pair_blacklist": [],
            "ccxt_config": {},
            "ccxt_async_config": {},
        },
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


def save_markets(
    path: Path | str,
    markets: Mapping[str, Mapping[str, Any]],
    *,
    exchange: str,
    trading_mode: str,
) -> Path:
    """Write ``markets`` as a markets file (what :func:`read_markets` and freqtrade's offline
    runs read), with where they came from.

    Returns:
        The path written (parent folders are created).
    """
    check_choice("trading_mode", trading_mode, TRADING_MODES)
    doc = {
        "_comment": (
            f"{exchange} {trading_mode} markets as ccxt's load_markets returns them through "
            f"freqtrade's exchange class, saved by `python -m optimize markets`."
        ),
        "format": MARKETS_FORMAT,
        "exchange": exchange,
        "trading_mode": trading_mode,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": __version__,
        "markets": {str(k): dict(v) for k, v in markets.items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")  # never a half-written markets file
    partial.write_text(
        json.dumps(doc, indent=1, sort_keys=False, default=str) + "\n", encoding="utf-8"
    )
    partial.replace(path)
    return path


__all__ = [
    "MARKETS_FORMAT",
    "MarketsError",
    "fetch_command",
    "fetch_markets",
    "markets_file_of",
    "read_markets",
    "save_markets",
]
