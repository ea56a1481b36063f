"""Verify an export: freqtrade's own FreqAI backtest of the exported artefacts, offline.

``python -m optimize verify --export DIR`` runs freqtrade's ``Backtesting`` in this process with
the export's config, parameter file, strategy and FreqAI model (markets and fees served locally by
:mod:`optimize.ftoffline`), over the study's holdout by default, and prints freqtrade's figures
next to the study's own holdout figures for the trial (study user attr ``"holdout"``, written by
:mod:`optimize.holdout`) when the study has them.

Each run uses a fresh FreqAI identifier and a temporary user-data folder, so it always trains
its own models: FreqAI would otherwise silently reuse cached predictions.

The two sets of figures are not expected to be equal: FreqAI retrains every
``backtest_period_days`` on the ``train_period_days`` before, without the study's purge gap, with
indicators warmed up on a shorter history; the study's holdout record trains once, ``purge``
candles before the holdout.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.exc import SQLAlchemyError

from optimize.evaluate import FOLD_METRIC_KEYS
from optimize.export import CONFIG_FILE, SETTINGS_KEY, USER_DATA, new_identifier
from optimize.ftoffline import run_freqtrade_backtest
from optimize.holdout import stored_holdout
from optimize.study import _redact
from strategy.freqtrade import STRATEGY_NAME

logger = logging.getLogger(__name__)

FREQTRADE_KEYS = {k: k for k in FOLD_METRIC_KEYS}
"""Study metric name -> key in freqtrade's strategy stats (same names; absent ones show as n/a)."""


@dataclass(frozen=True)
class VerifyResult:
    """freqtrade's figures for an export and the study's for the same trial.

    Attributes:
        study_name, trial_number: the exported trial.
        timerange: the backtested freqtrade timerange.
        freqtrade: freqtrade's metrics (keys of :data:`optimize.evaluate.FOLD_METRIC_KEYS` it has).
        study_holdout: the study's holdout metrics for the trial, or None when not available.
        note: why the study's figures are missing (empty when present).
        trades: number of freqtrade trades.
        stats: freqtrade's full per-strategy stats dict.
    """

    study_name: str
    trial_number: int
    timerange: str
    freqtrade: dict[str, float]
    study_holdout: dict[str, float] | None
    note: str
    trades: int
    stats: dict[str, Any]


def read_export(export_dir: Path | str) -> dict[str, Any]:
    """The export's freqtrade config.

    Raises:
        FileNotFoundError: no ``config.json`` in ``export_dir``.
        ValueError: the config was not written by ``python -m optimize export``.
    """
    path = Path(export_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no export at {export_dir}: {path} does not exist.")
    config = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(config.get(SETTINGS_KEY), dict) or "trial_number" not in config[SETTINGS_KEY]:
        raise ValueError(f"{path} has no '{SETTINGS_KEY}' block; it was not written by the export.")
    return config


def _study_holdout(settings: dict[str, Any], storage: str | None) -> tuple[dict | None, str]:
    url = storage or settings.get("storage")
    if not url:
        return None, "no study storage recorded in the export (pass --storage)."
    if "***" in url:
        return None, f"the recorded storage {url} has a masked password (pass --storage)."
    try:
        study = optuna.load_study(study_name=settings["study_name"], storage=url)
    except (KeyError, ValueError, ImportError, SQLAlchemyError) as exc:  # comparison is optional
        return None, f"could not open study {settings['study_name']!r} at {_redact(url)}: {exc}"
    record = stored_holdout(study, int(settings["trial_number"]))
    if record is None:
        return None, (f"the study has no holdout record for trial {settings['trial_number']} "
                      "(the report computes it).")
    return dict(record.get("metrics", {})), ""


def verify_export(export_dir: Path | str, *, storage: str | None = None,
                  timerange: str | None = None, datadir: Path | str | None = None) -> VerifyResult:
    """Backtest an export with freqtrade (FreqAI, offline, in-process) and collect the figures.

    Args:
        export_dir: folder written by :func:`optimize.export.export_trial`.
        storage: study storage URL (default: the one recorded in the export).
        timerange: freqtrade timerange (default: the study's holdout).
        datadir: data folder holding ``<exchange>/<PAIR>-<tf>.feather`` (default: the study's).

    Raises:
        FileNotFoundError / ValueError: not an export; no timerange (the study has no holdout
            and none was given).
    """
    out = Path(export_dir).resolve()
    config = read_export(out)
    settings = config[SETTINGS_KEY]
    timerange = timerange or (settings.get("holdout") or {}).get("timerange")
    if not timerange:
        raise ValueError("the study has no holdout; pass a timerange such as 20250801-20250810.")
    datadir = Path(datadir) if datadir is not None else Path(settings["datadir"])
    run_config = dict(config)
    run_config["freqai"] = {**config["freqai"],
                            "identifier": new_identifier(f"{settings['study_name']}-verify",
                                                         int(settings["trial_number"]))}
    run_config["export"] = "none"
    for key in ("user_data_dir", "strategy_path"):
        run_config.pop(key, None)
    logger.info("verifying %s over %s", out, timerange)
    result = run_freqtrade_backtest(run_config, STRATEGY_NAME, datadir=datadir, timerange=timerange,
                                    strategy_path=out / USER_DATA / "strategies")
    stats = result.stats
    figures = {k: float(stats[v]) for k, v in FREQTRADE_KEYS.items()
               if isinstance(stats.get(v), int | float)}
    holdout, note = _study_holdout(settings, storage)
    return VerifyResult(settings["study_name"], int(settings["trial_number"]), timerange, figures,
                        holdout, note, len(result.trades), stats)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}"


def format_comparison(result: VerifyResult) -> str:
    """A text table: metric, freqtrade (FreqAI backtest), study holdout."""
    rows = [f"study {result.study_name!r} trial {result.trial_number}, timerange {result.timerange}",
            f"{'metric':<22}{'freqtrade':>14}{'study holdout':>16}"]
    for key in FOLD_METRIC_KEYS:
        theirs = None if result.study_holdout is None else result.study_holdout.get(key)
        rows.append(f"{key:<22}{_fmt(result.freqtrade.get(key)):>14}{_fmt(theirs):>16}")
    if result.note:
        rows.append(f"study holdout: {result.note}")
    return "\n".join(rows)
