"""Markets files: the exchange's rules of each pair, as the backtest and freqtrade read them.

A markets file holds ccxt's markets of one exchange and trading mode, ``{"markets": {symbol:
market}}`` (ccxt's own market dicts: precision, limits, contract size, ...), plus keys describing
where it came from. The study reads it for the order amount steps (spot and futures,
:func:`amount_precisions`) and the perpetuals' stake limits and leverage tiers (futures,
:func:`perpetual_markets`), and ``verify`` serves the same file to freqtrade, which cannot
backtest a pair without its market.

* :func:`markets_file_of`: the file of a run config: ``data.markets``, or the embedded Binance file
  of the trading mode (:data:`MARKETS_FILE`, :data:`FUTURES_MARKETS_FILE`: shipped in
  ``configs/markets/``, they cover the embedded pairs with the exchange's real filters);
* :func:`read_markets`: the file read and checked for the pairs, one clear error naming the pair,
  the file and the command that saves a file for it;
* :func:`save_markets`: a markets file written (``python -m optimize markets`` saves what
  freqtrade's exchange class fetches, :func:`optimize.freqtrade.markets.fetch_markets`);
* :func:`load_leverage_tiers`: the leverage tiers freqtrade ships (it reads them itself in dry-run
  and backtesting).

This module sits on the data floor of :mod:`optimize`, below the study that reads it and the
freqtrade runs that serve it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from base.checks import check_choice
from base.errors import DataError
from base.paths import shipped
from optimize._version import __version__
from optimize.backtest.futures import PerpetualMarket
from optimize.backtest.settings import TRADING_MODES

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
    markets = load_markets(path)
    missing = [p for p in pairs if p not in markets]
    if missing:
        shown = ", ".join(sorted(markets)[:10]) + (" ..." if len(markets) > 10 else "")
        raise MarketsError(
            f"no market for {', '.join(missing)} in the markets file {path} (it has {shown}); "
            f"save the exchange's markets with `{fetch_command(missing, trading_mode, exchange)}` "
            "and name FILE as data.markets in the run config."
        )
    return markets


MARKETS_FILE = shipped("configs/markets/binance_spot.json")
"""The embedded markets of the Binance spot pairs of ``data/binance/``."""
FUTURES_MARKETS_FILE = shipped("configs/markets/binance_futures.json")
"""The embedded markets of the Binance USDT-M perpetuals of ``data/binance/futures/``."""


def markets_file(trading_mode: str = "spot") -> Path:
    """The embedded markets file of a trading mode (:data:`MARKETS_FILE` or
    :data:`FUTURES_MARKETS_FILE`)."""
    check_choice("trading_mode", trading_mode, TRADING_MODES)
    return FUTURES_MARKETS_FILE if trading_mode == "futures" else MARKETS_FILE


def load_markets(path: Path | str = MARKETS_FILE) -> dict[str, dict[str, Any]]:
    """Read a static ccxt markets file (``{"markets": {symbol: market}}``).

    Raises:
        MarketsError: the file is not valid JSON or lacks a non-empty ``markets`` mapping.
        OSError: the file cannot be read.
    """
    with open(path, encoding="utf-8") as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise MarketsError(
                f"{path}: not valid JSON ({exc}); expected a markets file."
            ) from None
    markets = doc.get("markets") if isinstance(doc, dict) else None
    if not isinstance(markets, dict) or not markets:
        raise MarketsError(f"{path}: expected a JSON object with a non-empty 'markets' mapping.")
    return markets


def amount_precisions(
    markets: Mapping[str, Mapping[str, Any]], pairs: list[str]
) -> dict[str, float]:
    """Amount steps of ``pairs`` from ccxt markets, for ``BacktestSettings.amount_precision``.

    Raises:
        MarketsError: a pair has no market in ``markets``.
    """
    missing = [p for p in pairs if p not in markets]
    if missing:
        raise MarketsError(
            f"no market for {missing} in the markets file; it has {sorted(markets)}."
        )
    return {p: float(markets[p]["precision"]["amount"]) for p in pairs}


def leverage_tiers_file(exchange: str = "binance") -> Path:
    """The leverage tiers freqtrade ships for ``exchange`` (it reads them itself in dry-run and
    backtesting; only Binance has such a file)."""
    import freqtrade.exchange

    path = Path(freqtrade.exchange.__file__).parent / f"{exchange.lower()}_leverage_tiers.json"
    if not path.is_file():
        raise MarketsError(
            f"freqtrade ships no leverage tiers for exchange {exchange!r} ({path} is missing); "
            "futures backtests need them."
        )
    return path


def load_leverage_tiers(exchange: str = "binance") -> dict[str, list[dict[str, Any]]]:
    """freqtrade's shipped leverage tiers, ``{symbol: [ccxt tier, ...]}``."""
    with open(leverage_tiers_file(exchange), encoding="utf-8") as fh:
        return json.load(fh)


def perpetual_markets(
    pairs: list[str],
    markets: Mapping[str, Mapping[str, Any]] | None = None,
    tiers: Mapping[str, list[Mapping[str, Any]]] | None = None,
) -> dict[str, PerpetualMarket]:
    """The engine's :class:`~optimize.backtest.futures.PerpetualMarket` of each pair.

    Args:
        pairs: perpetuals, e.g. ``["BTC/USDT:USDT"]``.
        markets: ccxt markets (default: the embedded :data:`FUTURES_MARKETS_FILE`).
        tiers: ccxt leverage tiers (default: freqtrade's shipped Binance tiers).

    Raises:
        MarketsError: a pair has no market or no leverage tiers (freqtrade refuses to backtest
            such a pair).
        ValueError: a market is not a linear perpetual.
    """
    markets = load_markets(FUTURES_MARKETS_FILE) if markets is None else markets
    tiers = load_leverage_tiers() if tiers is None else tiers
    missing = [p for p in pairs if p not in markets]
    if missing:
        raise MarketsError(
            f"no market for {missing} in the markets file; it has {sorted(markets)}."
        )
    untiered = [p for p in pairs if p not in tiers]
    if untiered:
        raise MarketsError(
            f"no leverage tiers for {untiered}: freqtrade cannot backtest a perpetual without "
            "them (expected them in freqtrade's binance_leverage_tiers.json)."
        )
    return {p: PerpetualMarket.from_ccxt(p, markets[p], tiers[p]) for p in pairs}


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
    "EMBEDDED_EXCHANGE",
    "FUTURES_MARKETS_FILE",
    "MARKETS_FILE",
    "MARKETS_FORMAT",
    "MarketsError",
    "amount_precisions",
    "fetch_command",
    "leverage_tiers_file",
    "load_leverage_tiers",
    "load_markets",
    "markets_file",
    "markets_file_of",
    "perpetual_markets",
    "read_markets",
    "save_markets",
]
