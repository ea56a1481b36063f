"""Run freqtrade's own backtesting in-process and offline.

freqtrade's ``Backtesting`` cannot start without the network: the exchange object loads the ccxt
markets from the exchange on start-up. Here ``Exchange._api_reload_markets`` (the coroutine that
calls ccxt's ``load_markets``) is replaced, for the duration of one run, by a coroutine that calls
``self._api_async.set_markets(...)`` with a static ccxt-format dict read from a markets file
(:mod:`optimize.markets`; the embedded ``configs/markets/binance_spot.json`` or
``binance_futures.json`` by default).
Everything else is freqtrade's unmodified code: config validation, data loading (feather files in
freqtrade's layout, gaps filled; in futures mode also the mark candles and funding rates of
``<datadir>/<exchange>/futures/``), the leverage tiers (in dry-run, which backtesting is,
freqtrade's Binance class reads the tiers it ships, ``freqtrade/exchange/binance_leverage_tiers
.json``), the strategy resolver, the backtest loop and the report statistics.

Used to prove that :mod:`optimize.backtest.engine` trades like freqtrade (tests), to time
freqtrade's loop (benchmark), and to verify exported strategies.

A run writes nothing outside a temporary directory and leaves the caller's logging alone
(freqtrade's own logging set-up, which would reconfigure the root logger, is skipped).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from base.checks import check_int
from base.errors import DataError
from optimize.backtest.settings import BacktestSettings
from optimize.markets import load_markets, markets_file
from strategy.freqtrade import (
    LEVERAGE_KEY,
    REPLAY_STRATEGY,
    REPLAY_STRATEGY_DIR,
    SIGNAL_COLUMNS,
    SIGNAL_FILE_KEY,
)

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def offline_markets(markets: Mapping[str, Mapping[str, Any]]) -> Iterator[None]:
    """Within the block, freqtrade exchanges load ``markets`` instead of calling the exchange.

    Each load gets its own deep copy (ccxt keeps and extends the market dicts it is given), so
    ``markets`` itself is never modified.
    """
    from freqtrade.exchange.exchange import Exchange

    original = Exchange._api_reload_markets

    async def _static_reload_markets(self: Any, reload: bool = False) -> None:
        self._api_async.set_markets(copy.deepcopy(dict(markets)))

    Exchange._api_reload_markets = _static_reload_markets
    try:
        yield
    finally:
        Exchange._api_reload_markets = original


@contextlib.contextmanager
def preserved_logging() -> Iterator[None]:
    """Keep freqtrade from reconfiguring the caller's logging; quiet its INFO chatter."""
    from freqtrade.configuration import configuration as ft_configuration

    original_setup = ft_configuration.setup_logging
    ft_configuration.setup_logging = lambda config: None
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ft_logger = logging.getLogger("freqtrade")
    ft_level = ft_logger.level
    ft_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        ft_configuration.setup_logging = original_setup
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        ft_logger.setLevel(ft_level)


def exchange_section(exchange: str, pairs: Sequence[str]) -> dict[str, Any]:
    """A freqtrade config's ``exchange`` section: no keys, no websocket, ``pairs`` whitelisted."""
    return {
        "name": exchange,
        "key": "",
        "secret": "",
        "enable_ws": False,
        "pair_whitelist": list(pairs),
        "pair_blacklist": [],
        "ccxt_config": {},
        "ccxt_async_config": {},
    }


def freqtrade_config(
    pairs: list[str],
    settings: BacktestSettings | None = None,
    *,
    exchange: str = "binance",
    stake_currency: str = "USDT",
    **extra: Any,
) -> dict[str, Any]:
    """A complete freqtrade backtesting config equivalent to ``settings``.

    Args:
        pairs: whitelist (``StaticPairList``), in the engine's pair order (``BTC/USDT:USDT`` in
            futures mode).
        settings: backtest settings to translate (default :class:`BacktestSettings`); in futures
            mode also ``liquidation_buffer``, ``amount_reserve_percent`` and the leverage the
            replay strategy's ``leverage()`` returns (:data:`LEVERAGE_KEY`).
        exchange: exchange name (the markets file must match it).
        stake_currency: quote currency of the pairs.
        **extra: further config keys (e.g. :data:`SIGNAL_FILE_KEY`), added last.

    Returns:
        A JSON-serialisable config dict.
    """
    s = BacktestSettings() if settings is None else settings
    config: dict[str, Any] = {
        "trading_mode": s.trading_mode,
        "margin_mode": s.margin_mode,
        "dry_run": True,
        "timeframe": s.timeframe,
        "stake_currency": stake_currency,
        "stake_amount": s.stake_amount,
        "dry_run_wallet": s.dry_run_wallet,
        "tradable_balance_ratio": s.tradable_balance_ratio,
        "max_open_trades": s.max_open_trades,
        "fee": s.fee,
        "stoploss": s.stoploss,
        "minimal_roi": {str(k): v for k, v in s.minimal_roi.items()},
        "trailing_stop": s.trailing_stop,
        "trailing_stop_positive_offset": s.trailing_stop_positive_offset,
        "trailing_only_offset_is_reached": s.trailing_only_offset_is_reached,
        "use_exit_signal": s.use_exit_signal,
        "exit_profit_only": s.exit_profit_only,
        "exit_profit_offset": s.exit_profit_offset,
        "ignore_roi_if_entry_signal": s.ignore_roi_if_entry_signal,
        "entry_pricing": {"price_side": "same", "use_order_book": False, "price_last_balance": 0.0},
        "exit_pricing": {"price_side": "same", "use_order_book": False},
        "exchange": exchange_section(exchange, pairs),
        "pairlists": [{"method": "StaticPairList"}],
        "dataformat_ohlcv": "feather",
        "dataformat_trades": "feather",
        "internals": {},
        "export": "none",
    }
    if s.trailing_stop_positive is not None:
        config["trailing_stop_positive"] = s.trailing_stop_positive
    if s.futures:
        # Binance futures tickers carry no price: freqtrade accepts only order-book pricing there
        # (backtesting fills at the candle's open either way)
        config["entry_pricing"]["use_order_book"] = True
        config["entry_pricing"]["order_book_top"] = 1
        config["exit_pricing"]["use_order_book"] = True
        config["exit_pricing"]["order_book_top"] = 1
        config["liquidation_buffer"] = s.liquidation_buffer
        config["amount_reserve_percent"] = s.amount_reserve_percent
        config[LEVERAGE_KEY] = s.leverage
    config.update(extra)
    return config


def save_signals(
    path: Path | str,
    candles: Mapping[str, pd.DataFrame],
    signals: Mapping[str, Mapping[str, Any]],
) -> Path:
    """Write precomputed signals for a replay strategy (feather: date, pair, signal columns).

    Args:
        path: output file.
        candles: ``pair -> candles`` (their ``date`` column gives each signal's candle).
        signals: ``signal name -> {pair -> array aligned with the candles}``; names among
            :data:`SIGNAL_COLUMNS`, missing ones are written as 0.

    Returns:
        The path written.
    """
    unknown = set(signals) - set(SIGNAL_COLUMNS)
    if unknown:
        raise ValueError(f"signal names must be among {SIGNAL_COLUMNS}, but got {sorted(unknown)}.")
    parts = []
    for pair, frame in candles.items():
        part = pd.DataFrame({"date": frame["date"].to_numpy(), "pair": pair})
        for name in SIGNAL_COLUMNS:
            values = signals.get(name, {}).get(pair)
            part[name] = (
                np.zeros(len(frame), np.int8)
                if values is None
                else np.asarray(values).astype(np.int8)
            )
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out.to_feather(path)
    return Path(path)


@dataclass(frozen=True)
class FreqtradeBacktest:
    """Outcome of one in-process freqtrade backtest.

    Attributes:
        trades: freqtrade's trade results frame (``res["results"]``).
        candles: ``pair -> candles`` freqtrade backtested (after trimming to the timerange).
        stats: freqtrade's per-strategy report dict (``generate_strategy_stats``).
        start, end: first and last backtested candle dates.
        seconds: wall time of freqtrade's ``Backtesting.backtest`` call (signal advice included,
            data loading and indicator computation excluded); the median with ``repeats > 1``.
    """

    trades: pd.DataFrame
    candles: dict[str, pd.DataFrame]
    stats: dict[str, Any]
    start: pd.Timestamp
    end: pd.Timestamp
    seconds: float


def _strategy_location(
    strategy: type | str, strategy_path: Path | str | None
) -> tuple[str, str | None]:
    if isinstance(strategy, str):
        return strategy, None if strategy_path is None else str(strategy_path)
    if inspect.isclass(strategy):
        path = (
            strategy_path if strategy_path is not None else Path(inspect.getfile(strategy)).parent
        )
        return strategy.__name__, str(path)
    raise ValueError(f"strategy must be a strategy class or its name, but got {strategy!r}.")


def run_freqtrade_backtest(
    config: Mapping[str, Any],
    strategy: type | str,
    *,
    datadir: Path | str,
    timerange: str | None = None,
    strategy_path: Path | str | None = None,
    markets: Mapping[str, Mapping[str, Any]] | None = None,
    repeats: int = 1,
) -> FreqtradeBacktest:
    """Backtest ``strategy`` with freqtrade itself, in this process and without network.

    Args:
        config: freqtrade config (e.g. from :func:`freqtrade_config`); not modified.
        strategy: strategy class (its file's folder becomes the strategy path) or name.
        datadir: the project's data folder, holding ``<exchange>/<PAIR>-<timeframe>.feather``
            (as :data:`optimize.data.DEFAULT_DATADIR`); ``datadir/<exchange>`` is passed to
            freqtrade's ``Configuration`` as the ``--datadir`` argument.
        timerange: freqtrade timerange such as ``"20240101-20240301"`` (stop inclusive).
        strategy_path: folder of the strategy file (required with a name outside user_data).
        markets: ccxt markets to load (default: the embedded file of the config's trading mode,
            :func:`markets_file`).
        repeats: run freqtrade's backtest loop this many times on fresh copies of the analysed
            data (for timing); ``seconds`` is the median, the results are the last run's.

    Returns:
        :class:`FreqtradeBacktest`.
    """
    from freqtrade.configuration import Configuration
    from freqtrade.data import history
    from freqtrade.data.converter import trim_dataframes
    from freqtrade.enums import RunMode
    from freqtrade.optimize.backtesting import Backtesting
    from freqtrade.optimize.optimize_reports import generate_backtest_stats

    check_int("repeats", repeats, 1)
    name, path = _strategy_location(strategy, strategy_path)
    if markets is None:
        markets = load_markets(markets_file(str(config.get("trading_mode", "spot"))))
    exchange_dir = Path(datadir) / str(config["exchange"]["name"]).lower()
    if not exchange_dir.is_dir():  # freqtrade would create it silently and then find no data
        raise DataError(f"datadir must hold the exchange folder, but {exchange_dir} is missing.")
    with tempfile.TemporaryDirectory(prefix="ftoffline-") as tmp, preserved_logging():
        cfg_path = Path(tmp) / "config.json"
        cfg_path.write_text(json.dumps(dict(config), default=str), encoding="utf-8")
        args: dict[str, Any] = {
            "config": [str(cfg_path)],
            "datadir": str(exchange_dir),
            "user_data_dir": tmp,
            "strategy": name,
            "timerange": timerange,
            "export": "none",
        }
        if path is not None:
            args["strategy_path"] = path
        ft_config = Configuration(args, RunMode.BACKTEST).get_config()
        try:
            with offline_markets(markets):
                bt = Backtesting(ft_config)
            data, trange = bt.load_bt_data()
            bt._set_strategy(bt.strategylist[0])
            preprocessed = bt.strategy.advise_all_indicators(data)
            trimmed = trim_dataframes(preprocessed, trange, bt.required_startup)
            if not trimmed:
                raise DataError(f"no candles left in timerange {timerange!r} for {list(data)}.")
            min_date, max_date = history.get_timerange(trimmed)
            candles = {
                p: df.loc[:, ["date", "open", "high", "low", "close", "volume"]].reset_index(
                    drop=True
                )
                for p, df in trimmed.items()
            }
            times = []
            for _ in range(repeats):
                processed = {p: df.copy() for p, df in preprocessed.items()}
                t0 = time.perf_counter()
                content = bt.backtest(processed=processed, start_date=min_date, end_date=max_date)
                times.append(time.perf_counter() - t0)
            seconds = statistics.median(times)
            logger.debug("freqtrade backtest loop times: %s", times)
            content.update({"run_id": "", "backtest_start_time": 0, "backtest_end_time": 0})
            stats = generate_backtest_stats(data, {name: content}, min_date, max_date)
        finally:
            Backtesting.cleanup()
    return FreqtradeBacktest(
        trades=content["results"],
        candles=candles,
        stats=stats["strategy"][name],
        start=pd.Timestamp(min_date),
        end=pd.Timestamp(max_date),
        seconds=seconds,
    )


def run_replay_backtest(
    config: Mapping[str, Any],
    *,
    datadir: Path | str,
    timerange: str | None = None,
    markets: Mapping[str, Mapping[str, Any]] | None = None,
    repeats: int = 1,
) -> FreqtradeBacktest:
    """Backtest precomputed signals with freqtrade: :data:`REPLAY_STRATEGY` replays the file.

    Runs :func:`run_freqtrade_backtest` with the replay strategy of :data:`REPLAY_STRATEGY_DIR`.

    Args:
        config: freqtrade config naming the signal file (written by :func:`save_signals`) under
            :data:`SIGNAL_FILE_KEY`, e.g. ``freqtrade_config(pairs, settings, **{SIGNAL_FILE_KEY:
            path})``; not modified.
        datadir, timerange, markets, repeats: as for :func:`run_freqtrade_backtest`.

    Returns:
        :class:`FreqtradeBacktest`.

    Raises:
        ValueError: ``config`` has no :data:`SIGNAL_FILE_KEY`, or as :func:`run_freqtrade_backtest`.
    """
    if SIGNAL_FILE_KEY not in config:
        raise ValueError(
            f"config must name the signal file under {SIGNAL_FILE_KEY!r}, but it has only "
            f"{sorted(config)}."
        )
    return run_freqtrade_backtest(
        config,
        REPLAY_STRATEGY,
        datadir=datadir,
        timerange=timerange,
        strategy_path=REPLAY_STRATEGY_DIR,
        markets=markets,
        repeats=repeats,
    )
