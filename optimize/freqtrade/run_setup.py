"""An export made ready for a freqtrade run in this process: its config, span and warm-up.

Both in-process runs of an export, the verification (:mod:`optimize.freqtrade.verify`) and the
lookahead analysis (:mod:`optimize.freqtrade.lookahead`), start the same way: read the export's
``config.json`` back (:func:`read_export`), give it a fresh FreqAI identifier and drop its paths
(:func:`prepare_run`), resolve the span to run (:func:`run_span`: the study's holdout or
walk-forward span, or a timerange of the user's), make freqtrade load back to the study's
warm-up candle (:func:`warm_up`) and serve freqtrade the markets the study read
(:func:`export_markets`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from freqtrade.configuration import TimeRange

from base.errors import ExportError, InputError
from optimize.freqtrade.export import CONFIG_FILE, STRATEGY_DIR, new_identifier
from optimize.freqtrade.timerange import startup_candles
from optimize.markets import markets_file, read_markets
from strategy.features import WARMUP_CANDLES
from strategy.freqtrade import STRATEGY_NAME
from strategy.freqtrade.rules import SETTINGS_KEY
from strategy.timeframes import timeframe_to_timedelta

SPANS = ("holdout", "walkforward")
"""The study's spans an export records (the first is the default of a verification)."""


def read_json(path: Path, expected: str) -> Any:
    """The JSON document in ``path``.

    Raises:
        ExportError: the file is missing, unreadable, not UTF-8 or not valid JSON (naming the file
            and ``expected``).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExportError(f"{path} does not exist; expected {expected}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: cannot be read ({exc}); expected {expected}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: not valid JSON ({exc}); expected {expected}.") from None


def read_export(export_dir: Path | str) -> dict[str, Any]:
    """The export's freqtrade config.

    Raises:
        ExportError: no ``config.json`` in ``export_dir``, or one that is not valid JSON or was
            not written by ``python -m optimize export``.
    """
    path = Path(export_dir) / CONFIG_FILE
    if not path.is_file():
        raise ExportError(f"no export at {export_dir}: {path} does not exist.")
    config = read_json(path, "the config.json written by the export")
    if (
        not isinstance(config, dict)
        or not isinstance(config.get(SETTINGS_KEY), dict)
        or "trial_number" not in config[SETTINGS_KEY]
    ):
        raise ExportError(
            f"{path} has no '{SETTINGS_KEY}' block; it was not written by the export."
        )
    return config


def check_parameter_file(export_dir: Path, settings: dict[str, Any]) -> None:
    """The export's strategy parameter file is there, readable and of the exported trial.

    freqtrade runs a strategy whose parameter file is missing or broken on the strategy's default
    parameters, without a word; a verification of that run would compare another strategy.

    Raises:
        ExportError: the file is missing, not valid JSON, has no ``params`` with ``buy`` and
            ``sell`` blocks, or belongs to another study or trial (names the file).
    """
    path = export_dir / STRATEGY_DIR / f"{STRATEGY_NAME}.json"
    expected = "the strategy parameter file written by the export"
    doc = read_json(path, expected)
    params = doc.get("params") if isinstance(doc, dict) else None
    if not isinstance(params, dict) or not all(
        isinstance(params.get(space), dict) for space in ("buy", "sell")
    ):
        raise ExportError(f"{path}: no 'params' with 'buy' and 'sell' blocks; expected {expected}.")
    meta = doc.get(SETTINGS_KEY, {})
    for key in ("study_name", "trial_number"):
        if isinstance(meta, dict) and key in meta and meta[key] != settings.get(key):
            raise ExportError(
                f"{path} is of {key}={meta[key]!r}, but the export's config.json is of "
                f"{key}={settings.get(key)!r}; export the trial again."
            )


def prepare_run(
    export_dir: Path | str, datadir: Path | str | None, purpose: str
) -> tuple[Path, dict[str, Any], dict[str, Any], Path]:
    """An export made ready for a freqtrade run in this process.

    Returns:
        ``(folder, run config, settings, datadir)``: the export's config with a fresh FreqAI
        identifier ``<study>-<purpose>-...`` (FreqAI would otherwise reuse cached predictions) and
        without its user-data and strategy paths (each run passes its own); its ``lstm_optuna``
        block; ``datadir``, or the study's when None.
    """
    out = Path(export_dir).resolve()
    config = read_export(out)
    settings = config[SETTINGS_KEY]
    check_parameter_file(out, settings)
    run_config = dict(config)
    run_config["freqai"] = {
        **config["freqai"],
        "identifier": new_identifier(
            f"{settings['study_name']}-{purpose}", int(settings["trial_number"])
        ),
    }
    for key in ("user_data_dir", "strategy_path"):
        run_config.pop(key, None)
    return (
        out,
        run_config,
        settings,
        Path(datadir) if datadir is not None else Path(settings["datadir"]),
    )


def run_span(
    settings: dict[str, Any], span: str, timerange: str | None
) -> tuple[str, pd.Timestamp, pd.Timestamp, str, str | None]:
    """``(span name, start, end, timerange, warm-up start)`` of a verification."""
    if timerange:
        tr = TimeRange.parse_timerange(timerange)
        if not tr.startts or not tr.stopts:
            raise InputError(
                f"--timerange needs a start and an end (FreqAI's rule), but got {timerange!r}."
            )
        return (
            "timerange",
            pd.Timestamp(tr.startts, unit="s", tz="UTC"),
            pd.Timestamp(tr.stopts, unit="s", tz="UTC"),
            timerange,
            None,
        )
    if span not in SPANS:
        raise InputError(f"span must be one of {SPANS}, but got span={span!r}.")
    info = settings.get(span)
    if not info:
        raise ExportError(f"the export has no {span} span (the study has none); pass --timerange.")
    if not info.get("freqai_schedule", True):
        raise ExportError(
            "the study's folds step by walkforward.step_days, not test_days: FreqAI always steps "
            "by backtest_period_days, so its windows over the walk-forward span are not the "
            "study's; verify the holdout or a --timerange instead."
        )
    return (
        span,
        pd.Timestamp(info["start"]),
        pd.Timestamp(info["end"]),
        info["timerange"],
        info.get("warmup_start"),
    )


def warm_up(run_config: dict[str, Any], start: pd.Timestamp, anchor: str | None) -> None:
    """Make a run's indicators start at ``anchor`` and freqtrade load back to exactly it.

    ``anchor`` None (a timerange of the user's): the usual warm-up, ``WARMUP_CANDLES`` base
    candles before FreqAI's first training window of the run.
    """
    timeframe = str(run_config.get("timeframe", "1h"))
    train_days = run_config["freqai"]["train_period_days"]
    if anchor is None:
        anchor = (
            start
            - pd.Timedelta(days=train_days)
            - WARMUP_CANDLES * timeframe_to_timedelta(timeframe)
        ).isoformat()
    run_config[SETTINGS_KEY] = {**run_config[SETTINGS_KEY], "warmup_start": anchor}
    run_config["startup_candle_count"] = startup_candles(start, train_days, anchor, timeframe)


def export_markets(
    run_config: dict[str, Any], settings: dict[str, Any]
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The markets file the study read (``lstm_optuna.markets``; an export made before it was
    recorded: the embedded file of its trading mode) and its markets, checked for the whitelist.

    Raises:
        MarketsError: the file is missing or lacks a pair (one line naming both).
    """
    mode = str(run_config.get("trading_mode", "spot"))
    path = str(settings.get("markets") or markets_file(mode))
    exchange = run_config["exchange"]
    markets = read_markets(
        path, exchange["pair_whitelist"], trading_mode=mode, exchange=str(exchange["name"])
    )
    return path, markets


__all__ = ["SPANS", "export_markets", "prepare_run", "read_export", "run_span", "warm_up"]
