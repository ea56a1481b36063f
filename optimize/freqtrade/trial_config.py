"""A trial as freqtrade's files: the config (FreqAI section included) and the parameter file.

:func:`build_freqtrade_config` turns the study's run config and a trial's parameters into the
config freqtrade reads: :func:`optimize.freqtrade.offline.freqtrade_config` (pairs, fee, stake,
exit flags) with the strategy-level settings taken out (they live in the parameter file, which a
config value would override), plus the ``freqai`` block from ``configs/freqtrade/
freqai_template.json`` with the trial's windows, features, FreqAI data pipeline
(``DI_threshold``, ``weight_factor``, ``noise_standard_deviation``, ``include_corr_pairlist``,
``buffer_train_data_candles``: the run config's with the trial's own) and LSTM parameters.
:func:`build_parameter_file` writes those strategy-level settings and the strategy's parameters in
freqtrade's parameter-file format. Both are plain JSON-able dicts; the export
(:mod:`optimize.freqtrade.export`) and the verification (:mod:`optimize.freqtrade.verify`) write
or run them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from base.errors import ConfigError
from base.paths import shipped
from optimize.config import RunConfig
from optimize.freqtrade.offline import freqtrade_config
from optimize.search.space import TrialParams
from optimize.walkforward import freqai_train_period_days
from strategy.freqtrade import LEVERAGE_KEY, MODEL_NAME, PACKAGE_DIR, STRATEGY_NAME
from strategy.freqtrade.rules import EXTRA_RETURNS, SETTINGS_KEY, strategy_params

TEMPLATE_FILE = shipped("configs/freqtrade/freqai_template.json")
STRATEGY_PARAM_KEYS = (
    "stoploss",
    "minimal_roi",
    "trailing_stop",
    "trailing_stop_positive",
    "trailing_stop_positive_offset",
    "trailing_only_offset_is_reached",
)
"""Strategy-level settings moved from the config into the parameter file."""


def _strip_comments(value: Any) -> Any:
    """``value`` without the template's comment keys (those starting with ``_``), recursively."""
    if isinstance(value, dict):
        return {k: _strip_comments(v) for k, v in value.items() if not str(k).startswith("_")}
    return value


def load_template(path: Path | str = TEMPLATE_FILE) -> dict[str, Any]:
    """The static part of the exported config (``configs/freqtrade/freqai_template.json``).

    Raises:
        ValueError: the file has no ``freqai`` mapping.
    """
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("freqai"), dict):
        raise ValueError(f"{path}: expected a JSON object with a 'freqai' mapping.")  # noqa: TRY004
    return doc


def build_freqtrade_config(
    config: RunConfig,
    params: TrialParams,
    *,
    identifier: str,
    settings: dict[str, Any],
    user_data_dir: Path | None = None,
    strategy_path: Path | None = None,
) -> dict[str, Any]:
    """The freqtrade config of a trial (JSON-able).

    The trading settings are the trial's (:meth:`TrialParams.settings`): in futures mode
    ``trading_mode: futures``, ``margin_mode: isolated``, the perpetuals (``BTC/USDT:USDT``),
    ``liquidation_buffer`` and order-book pricing (Binance futures tickers carry no price); the
    leverage and direction go into the parameter file (:func:`build_parameter_file`).

    Args:
        config: the study's run config.
        params: the trial's parameters.
        identifier: FreqAI identifier (unique per export / verification).
        settings: the ``lstm_optuna`` block (metadata and project settings) to embed.
        user_data_dir, strategy_path: absolute paths to embed (None: left to the command line).

    Raises:
        ConfigError: pairs with different quote currencies, or a fractional ``train_days``.
    """
    quotes = {p.split("/")[1].split(":")[0] for p in config.data.pairs}
    if len(quotes) != 1:
        raise ConfigError(
            f"all pairs must share one stake currency, but got pairs={list(config.data.pairs)}."
        )
    ft = freqtrade_config(
        list(config.data.pairs),
        params.settings(config.backtest),
        exchange=config.data.exchange,
        stake_currency=quotes.pop(),
    )
    for key in (*STRATEGY_PARAM_KEYS, "export", LEVERAGE_KEY):
        ft.pop(key, None)
    wf = config.walkforward
    features = config.features
    windows = settings.get("freqai_windows") or {
        "train_period_days": freqai_train_period_days(wf, config.data.timeframe)
    }
    freqai = _strip_comments(load_template()["freqai"])
    freqai.update(
        {
            "identifier": identifier,
            "train_period_days": windows["train_period_days"],
            "backtest_period_days": wf.test_days,
            "live_retrain_hours": float(wf.test_days) * 24.0,
            "conv_width": params.lstm.window_size,
            "model_training_parameters": params.lstm.to_dict(),
            "extra_returns_per_train": {name: 0.0 for name in EXTRA_RETURNS},
        }
    )
    freqai["feature_parameters"] = {
        **freqai.get("feature_parameters", {}),
        "include_timeframes": list(features.include_timeframes),
        "indicator_periods_candles": list(features.indicator_periods_candles),
        "include_shifted_candles": features.include_shifted_candles,
        "label_period_candles": params.label_horizon,
        **params.pipeline(features.pipeline).to_feature_parameters(),
    }
    ft.update(
        {
            "bot_name": (
                f"lstm-optuna {settings.get('study_name', '')} "
                f"trial {settings.get('trial_number', '')}"
            ).strip(),
            "strategy": STRATEGY_NAME,
            "freqaimodel": MODEL_NAME,
            "freqaimodel_path": str(PACKAGE_DIR),
            "freqai": freqai,
            SETTINGS_KEY: settings,
        }
    )
    if user_data_dir is not None:
        ft["user_data_dir"] = str(user_data_dir)
    if strategy_path is not None:
        ft["strategy_path"] = str(strategy_path)
    return ft


def build_parameter_file(
    params: TrialParams, config: RunConfig, *, metadata: dict[str, Any], export_time: str
) -> dict[str, Any]:
    """The strategy's parameter file in freqtrade's format (plus an ``lstm_optuna`` block); in
    futures mode with the ``futures`` space (the trial's direction and leverage)."""
    bt = params.settings(config.backtest)
    leverage = bt.leverage if bt.futures else None
    spaces: dict[str, Any] = strategy_params(params.weights, params.signal, leverage)
    spaces["roi"] = {str(k): float(v) for k, v in bt.minimal_roi.items()}
    spaces["stoploss"] = {"stoploss": float(bt.stoploss)}
    spaces["trailing"] = {
        "trailing_stop": bool(bt.trailing_stop),
        "trailing_stop_positive": bt.trailing_stop_positive,
        "trailing_stop_positive_offset": float(bt.trailing_stop_positive_offset),
        "trailing_only_offset_is_reached": bool(bt.trailing_only_offset_is_reached),
    }
    return {
        "strategy_name": STRATEGY_NAME,
        "params": spaces,
        "ft_stratparam_v": 1,
        "export_time": export_time,
        SETTINGS_KEY: metadata,
    }


__all__ = [
    "STRATEGY_PARAM_KEYS",
    "TEMPLATE_FILE",
    "build_freqtrade_config",
    "build_parameter_file",
    "load_template",
]
