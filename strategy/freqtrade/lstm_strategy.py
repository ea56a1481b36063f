"""``LstmOptunaStrategy``: the study's strategy as a freqtrade FreqAI strategy.

Every step calls the project code the study used:

* features: the FreqAI hooks call :func:`strategy.features.expand_all` (per period),
  :func:`~strategy.features.expand_timeframe` and :func:`~strategy.features.expand_basic` (per
  timeframe) and :func:`~strategy.features.standard`; FreqAI merges the informative timeframes
  without look-ahead and names the columns (``%-rsi-period_10_BTC/USDT_1h``). The feature subset
  is ``lstm_optuna.features`` of the config (default: all);
* warm-up: every indicator and T is computed from the candle ``lstm_optuna.warmup_start`` on
  (:func:`strategy.features.from_warmup`), the study's first candle, so their values do not
  depend on how much history freqtrade loaded (absent: from the first loaded candle);
* target: :meth:`strategy.target.TargetBasis.score` with the weights ``w0..w8``, label
  ``y_t = T_{t+h}`` by :func:`strategy.target.make_labels` with
  ``h = freqai.feature_parameters.label_period_candles``;
* signals: thresholds per candle and :func:`strategy.signals.direction_signals` through
  :mod:`strategy.freqtrade.rules` (a candle the dissimilarity index blocks gets no entry; its
  exit still applies);
* futures (``trading_mode: futures`` in the config): the strategy can short (``can_short``), trades
  the sides of ``trade_direction`` with the seed's rules (long: enter above ``threshold_buy``, exit
  below ``threshold_sell``; short: enter below ``threshold_sell``, exit above ``threshold_buy``)
  and ``leverage()`` returns ``trade_leverage`` (freqtrade caps it by the leverage tiers). In spot
  mode it trades long at leverage 1, and a direction with shorts is an error;
* correlated pairs (``freqai.feature_parameters.include_corr_pairlist``): FreqAI calls the same
  hooks on their candles and merges them (the study: :func:`strategy.features.corr_pair_features`).

Parameters (freqtrade's own parameter objects, loaded from ``LstmOptunaStrategy.json`` next to the
strategy file, config values first): ``w0..w8``, ``threshold_mode``, ``entry_threshold`` (buy
space), ``exit_gap`` (sell space), ``trade_direction`` and ``trade_leverage`` (futures space,
written by futures exports only; defaults ``long`` and 1). The weights and the mode shape the
training labels, which FreqAI computes once per training window, so they are not hyperopted
(``optimize=False``); ``entry_threshold`` and ``exit_gap`` are (zscore and absolute mode;
quantile thresholds are fixed at training time, see :mod:`strategy.freqtrade.rules`). Their
hyperopt ranges can be set in the config as ``lstm_optuna.parameter_ranges:
{"entry_threshold": [low, high], ...}`` (the export writes the study's search-space bounds
there).

Use with ``--freqaimodel LstmOptunaRegressor --freqaimodel-path <repo>/strategy/freqtrade``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

try:  # freqtrade imports this file as a top-level module: make the project importable
    import strategy.freqtrade  # noqa: F401
except ImportError:  # pragma: no cover - only when the project is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd
from freqtrade.strategy import CategoricalParameter, DecimalParameter, IStrategy
from pandas import DataFrame

from base.errors import ConfigError
from strategy.features import (
    ALL_FEATURES,
    WARMUP_CANDLES,
    expand_all,
    expand_basic,
    expand_timeframe,
    feature_subset,
    from_warmup,
    standard,
)
from strategy.freqtrade.rules import (
    BUY_SPACE,
    FUTURES_SPACE,
    LABEL,
    LEVERAGE_DECIMALS,
    SELL_SPACE,
    SETTINGS_KEY,
    THRESHOLD_DECIMALS,
    WEIGHT_DECIMALS,
    candle_thresholds,
    di_blocked,
    label_horizon,
    side_signals,
)
from strategy.signals import DIRECTIONS, THRESHOLD_MODES, SignalParams, Signals
from strategy.target import WEIGHT_NAMES, TargetBasis, make_labels

RANGED_PARAMETERS = {"entry_threshold": BUY_SPACE, "exit_gap": SELL_SPACE}


def _target(candles: DataFrame, weights: tuple[float, ...]) -> dict[str, np.ndarray]:
    return {"T": TargetBasis.from_candles(candles).score(weights)}


def _weight(default: float) -> DecimalParameter:
    return DecimalParameter(
        0.0, 1.0, default=default, decimals=WEIGHT_DECIMALS, space=BUY_SPACE, optimize=False
    )


class LstmOptunaStrategy(IStrategy):
    """FreqAI strategy of the "dynamic weighting and aggregate scoring" target (see module doc)."""

    INTERFACE_VERSION = 3
    timeframe = "1h"
    can_short = False
    process_only_new_candles = True
    use_exit_signal = True
    # Candles before each training window: T needs 100 (its SMA 100 regime term, the longest);
    # the margin lets the EMA-based indicators (RSI, MACD, ATR) settle. The export overrides it
    # (config ``startup_candle_count``) so that freqtrade loads back to
    # ``lstm_optuna.warmup_start``.
    startup_candle_count = WARMUP_CANDLES
    minimal_roi = {"0": 10}  # noqa: RUF012 - freqtrade's strategy convention
    stoploss = -0.10
    trailing_stop = False

    w0 = _weight(1.0)
    w1 = _weight(1.0)
    w2 = _weight(1.0)
    w3 = _weight(1.0)
    w4 = _weight(1.0)
    w5 = _weight(1.0)
    w6 = _weight(1.0)
    w7 = _weight(1.0)
    w8 = _weight(1.0)
    threshold_mode = CategoricalParameter(
        list(THRESHOLD_MODES), default="quantile", space=BUY_SPACE, optimize=False
    )
    entry_threshold = DecimalParameter(
        0.5, 0.99, default=0.9, decimals=THRESHOLD_DECIMALS, space=BUY_SPACE
    )
    exit_gap = DecimalParameter(
        0.0, 0.5, default=0.3, decimals=THRESHOLD_DECIMALS, space=SELL_SPACE
    )
    trade_direction = CategoricalParameter(
        list(DIRECTIONS), default="long", space=FUTURES_SPACE, optimize=False
    )
    trade_leverage = DecimalParameter(
        1.0,
        125.0,
        default=1.0,
        decimals=LEVERAGE_DECIMALS,
        space=FUTURES_SPACE,
        optimize=False,
    )

    def __init__(self, config: dict[str, Any]) -> None:
        settings = config.get(SETTINGS_KEY, {})
        self.feature_set = feature_subset(
            settings.get("features", ALL_FEATURES), f"{SETTINGS_KEY}.features"
        )
        for name, (low, high) in dict(settings.get("parameter_ranges", {})).items():
            if name not in RANGED_PARAMETERS:
                raise ConfigError(
                    f"{SETTINGS_KEY}.parameter_ranges may set {sorted(RANGED_PARAMETERS)}, but "
                    f"got {name!r}."
                )
            default = getattr(type(self), name).value
            setattr(
                self,
                name,
                DecimalParameter(
                    float(low),
                    float(high),
                    default=min(max(default, float(low)), float(high)),
                    decimals=THRESHOLD_DECIMALS,
                    space=RANGED_PARAMETERS[name],
                ),
            )
        anchor = settings.get("warmup_start")
        self.warmup_start = None if anchor is None else pd.Timestamp(anchor)
        if self.warmup_start is not None and self.warmup_start.tzinfo is None:
            self.warmup_start = self.warmup_start.tz_localize("UTC")
        super().__init__(config)
        # freqtrade refuses a short strategy in spot mode and shorts only when it can_short
        self.can_short = config.get("trading_mode") == "futures"

    # --- parameters -------------------------------------------------------------------------

    def weights(self) -> tuple[float, ...]:
        """The current ``w0..w8``."""
        return tuple(float(getattr(self, name).value) for name in WEIGHT_NAMES)

    def signal_params(self) -> SignalParams:
        """The current threshold parameters (validated by
        :class:`~strategy.signals.SignalParams`)."""
        return SignalParams(
            mode=str(self.threshold_mode.value),
            entry=float(self.entry_threshold.value),
            exit_gap=float(self.exit_gap.value),
            direction=str(self.trade_direction.value),
        )

    # --- FreqAI feature hooks ---------------------------------------------------------------

    @staticmethod
    def _assign(dataframe: DataFrame, columns: dict[str, np.ndarray]) -> DataFrame:
        for name, values in columns.items():
            dataframe[name] = values
        return dataframe

    def feature_engineering_expand_all(
        self, dataframe: DataFrame, period: int, metadata: dict, **kwargs: Any
    ) -> DataFrame:
        return self._assign(
            dataframe,
            from_warmup(dataframe, self.warmup_start, expand_all, int(period), self.feature_set),
        )

    def feature_engineering_expand_basic(
        self, dataframe: DataFrame, metadata: dict, **kwargs: Any
    ) -> DataFrame:
        self._assign(
            dataframe, from_warmup(dataframe, self.warmup_start, expand_timeframe, self.feature_set)
        )
        return self._assign(
            dataframe, from_warmup(dataframe, self.warmup_start, expand_basic, self.feature_set)
        )

    def feature_engineering_standard(
        self, dataframe: DataFrame, metadata: dict, **kwargs: Any
    ) -> DataFrame:
        return self._assign(
            dataframe, from_warmup(dataframe, self.warmup_start, standard, self.feature_set)
        )

    def set_freqai_targets(self, dataframe: DataFrame, metadata: dict, **kwargs: Any) -> DataFrame:
        target = from_warmup(dataframe, self.warmup_start, _target, self.weights())["T"]
        dataframe[LABEL] = make_labels(target, label_horizon(self.config.get("freqai", {})))
        return dataframe

    # --- freqtrade hooks --------------------------------------------------------------------

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return self.freqai.start(dataframe, metadata, self)

    def _signals(self, dataframe: DataFrame) -> Signals:
        signal = self.signal_params()
        if signal.shorts and not self.can_short:
            raise ConfigError(
                f"trade_direction={signal.direction!r} shorts, which freqtrade does only with "
                "trading_mode 'futures' in the config; a spot strategy trades 'long'."
            )
        do_predict = dataframe["do_predict"].to_numpy()
        buy, sell = candle_thresholds(signal, dataframe, do_predict)
        blocked = di_blocked(self.config.get("freqai", {}), dataframe, len(dataframe))
        prediction = dataframe[LABEL].to_numpy()
        return side_signals(prediction, do_predict, buy, sell, blocked, signal.direction)

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        signals = self._signals(dataframe)
        dataframe.loc[signals.enter_long, "enter_long"] = 1
        if self.can_short:
            dataframe.loc[signals.enter_short, "enter_short"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        signals = self._signals(dataframe)
        dataframe.loc[signals.exit_long, "exit_long"] = 1
        if self.can_short:
            dataframe.loc[signals.exit_short, "exit_short"] = 1
        return dataframe

    def leverage(
        self,
        pair: str,
        current_time: Any,
        current_rate: float,
        proposed_leverage: float,
        max_leverage: float,
        entry_tag: str | None,
        side: str,
        **kwargs: Any,
    ) -> float:
        """``trade_leverage`` (1 unless a futures export set it); freqtrade caps it to
        ``[1, max_leverage]`` of the pair's tiers."""
        return float(self.trade_leverage.value)
