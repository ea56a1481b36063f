"""freqtrade strategy that replays precomputed signals, so freqtrade trades exactly given signals.

The config key ``signal_replay_file`` (``strategy.freqtrade.SIGNAL_FILE_KEY``) names a feather
file with columns ``date, pair`` and ``strategy.freqtrade.SIGNAL_COLUMNS`` (written by
``optimize.freqtrade.offline.save_signals``); each candle's signal row is merged on ``date``;
candles without a row get no signal. ROI, stoploss and trailing settings come from the config
(config > strategy defaults in freqtrade). In futures mode (``trading_mode: futures`` in the config)
the strategy shorts (``can_short``) and every trade asks for the leverage of the config key
``replay_leverage`` (``strategy.freqtrade.LEVERAGE_KEY``, default 1), which freqtrade caps by the
pair's leverage tiers.
"""

from __future__ import annotations

import os
from functools import lru_cache

import pandas as pd
from freqtrade.strategy import IStrategy

from strategy.freqtrade import LEVERAGE_KEY, SIGNAL_COLUMNS, SIGNAL_FILE_KEY


def _signals(path: str) -> pd.DataFrame:
    """The signal file's rows, read once per version of the file (a rewrite is read again)."""
    return _read_signals(path, os.stat(path).st_mtime_ns)


@lru_cache(maxsize=4)
def _read_signals(path: str, mtime_ns: int) -> pd.DataFrame:
    return pd.read_feather(path)


class SignalReplay(IStrategy):
    INTERFACE_VERSION = 3
    timeframe = "1h"
    can_short = False
    minimal_roi = {"0": 10}  # noqa: RUF012 - freqtrade's strategy convention
    stoploss = -0.99
    startup_candle_count = 0
    process_only_new_candles = True

    def __init__(self, config: dict) -> None:
        super().__init__(config)
        # freqtrade refuses a short strategy in spot mode: short exactly in futures mode
        self.can_short = config.get("trading_mode") == "futures"

    def leverage(
        self,
        pair: str,
        current_time,
        current_rate: float,
        proposed_leverage: float,
        max_leverage: float,
        entry_tag: str | None,
        side: str,
        **kwargs,
    ) -> float:
        return float(self.config.get(LEVERAGE_KEY, 1.0))

    def _merged(self, dataframe: pd.DataFrame, pair: str) -> pd.DataFrame:
        signals = _signals(str(self.config[SIGNAL_FILE_KEY]))
        own = signals.loc[signals["pair"] == pair, ["date", *SIGNAL_COLUMNS]]
        return dataframe[["date"]].merge(own, on="date", how="left")

    def populate_indicators(self, dataframe: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        merged = self._merged(dataframe, metadata["pair"])
        for col in ("enter_long", "enter_short"):
            dataframe[col] = merged[col].fillna(0).astype(int).to_numpy()
        return dataframe

    def populate_exit_trend(self, dataframe: pd.DataFrame, metadata: dict) -> pd.DataFrame:
        merged = self._merged(dataframe, metadata["pair"])
        for col in ("exit_long", "exit_short"):
            dataframe[col] = merged[col].fillna(0).astype(int).to_numpy()
        return dataframe
