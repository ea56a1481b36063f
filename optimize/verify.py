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

from sqlalchemy.exc import SQLAlchemyError

from optimize.evaluate import FOLD_METRIC_KEYS
from optimize.export import (
    CONFIG_FILE,
    SETTINGS_KEY,
    STRATEGY_DIR,
    new_identifier,
)
from optimize.ftoffline import run_freqtrade_backtest
from optimize.holdout import stored_holdout
from optimize.study import load_existing_study, redact
from strategy.freqtrade import STRATEGY_NAME

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifyResult:
    """freqtrade's figures for an export and the study's for the same trial.

    Attributes:
        study_name, trial_number: the exported trial.
        timerange: the backtested freqtrade timerange.
        freqtrade: freqtrade's metrics (keys of :data:`optimize.evaluate.FOLD_METRIC_KEYS` it has).
        study_holdout: the study's holdout metrics for the trial, or None when not available.
        holdout_span: the span of the study's holdout record (``start .. end``), empty if none.
        note: why the study's figures are missing (empty when present).
        trades: number of freqtrade trades.
        stats: freqtrade's full per-strategy stats dict.
    """

    study_name: str
    trial_number: int
    timerange: str
    freqtrade: dict[str, float]
    study_holdout: dict[str, float] | None
    holdout_span: str
    note: str
    trades: int
    stats: dict[str, Any]


def read_export(export_dir: Path | str) -> dict[str, Any]:
    """The export's freqtrade config.

    Raises:
        FileNotFoundError: no ``config.json`` in ``export_dir``.
        ValueError: the config is not valid JSON or was not written by ``python -m optimize export``.
    """
    path = Path(export_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no export at {export_dir}: {path} does not exist.")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); expected the config.json written by the export.") from None
    if not isinstance(config, dict) or not isinstance(config.get(SETTINGS_KEY), dict) or "trial_number" not in config[SETTINGS_KEY]:
        raise ValueError(f"{path} has no '{SETTINGS_KEY}' block; it was not written by the export.")
    return config


def _prepare(export_dir: Path | str, datadir: Path | str | None,
             purpose: str) -> tuple[Path, dict[str, Any], dict[str, Any], Path]:
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
    run_config = dict(config)
    run_config["freqai"] = {**config["freqai"],
                            "identifier": new_identifier(f"{settings['study_name']}-{purpose}",
                                                         int(settings["trial_number"]))}
    for key in ("user_data_dir", "strategy_path"):
        run_config.pop(key, None)
    return out, run_config, settings, Path(datadir) if datadir is not None else Path(settings["datadir"])


def _study_holdout(settings: dict[str, Any], storage: str | None) -> tuple[dict | None, str, str]:
    """``(metrics, span, note)`` of the study's holdout record for the exported trial."""
    url = storage or settings.get("storage")
    if not url:
        return None, "", "no study storage recorded in the export (pass --storage)."
    if "***" in url:
        return None, "", f"the recorded storage {url} has a masked password (pass --storage)."
    try:  # the comparison is optional
        study = load_existing_study(url, settings["study_name"])
    except ValueError as exc:  # no such SQLite file or study: the message says which
        return None, "", f"{exc}"
    except (ImportError, SQLAlchemyError) as exc:
        return None, "", f"could not open study {settings['study_name']!r} at {redact(url)}: {exc}"
    record = stored_holdout(study, int(settings["trial_number"]))
    if record is None:
        return None, "", (f"the study has no holdout record for trial {settings['trial_number']} "
                          "(the report computes it).")
    span = record.get("holdout", {})
    return dict(record.get("metrics", {})), f"{span.get('start')} .. {span.get('end')}", ""


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
    out, run_config, settings, datadir = _prepare(export_dir, datadir, "verify")
    timerange = timerange or (settings.get("holdout") or {}).get("timerange")
    if not timerange:
        raise ValueError("the study has no holdout; pass a timerange such as 20250801-20250810.")
    run_config["export"] = "none"
    logger.info("verifying %s over %s", out, timerange)
    result = run_freqtrade_backtest(run_config, STRATEGY_NAME, datadir=datadir, timerange=timerange,
                                    strategy_path=out / STRATEGY_DIR)
    stats = result.stats
    # freqtrade's strategy stats use the study's metric names; absent ones show as n/a
    figures = {k: float(stats[k]) for k in FOLD_METRIC_KEYS if isinstance(stats.get(k), int | float)}
    holdout, span, note = _study_holdout(settings, storage)
    return VerifyResult(settings["study_name"], int(settings["trial_number"]), timerange, figures,
                        holdout, span, note, len(result.trades), stats)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}"


def format_comparison(result: VerifyResult) -> str:
    """A text table: metric, freqtrade (FreqAI backtest), study holdout."""
    rows = [f"study {result.study_name!r} trial {result.trial_number}: freqtrade FreqAI backtest "
            f"over timerange {result.timerange}"
            + (f", study holdout {result.holdout_span}" if result.holdout_span else ""),
            f"{'metric':<22}{'freqtrade':>14}{'study holdout':>16}"]
    for key in FOLD_METRIC_KEYS:
        theirs = None if result.study_holdout is None else result.study_holdout.get(key)
        rows.append(f"{key:<22}{_fmt(result.freqtrade.get(key)):>14}{_fmt(theirs):>16}")
    if result.note:
        rows.append(f"study holdout: {result.note}")
    return "\n".join(rows)


@dataclass(frozen=True)
class LookaheadSummary:
    """Outcome of freqtrade's lookahead analysis of an export.

    Attributes:
        total_signals: trades whose entry and exit were re-checked on truncated data.
        false_entry_signals, false_exit_signals: signals that changed when the future was cut.
        false_indicators: dataframe columns whose values changed when the future was cut.
        has_bias: freqtrade's verdict.
        failed_bias_check: True when freqtrade could not check (too few trades).
        changed_before_last_candle: columns that differ between the full and a cut run on any
            candle before the cut run's last one.
        last_candle_unpredicted: every cut run's last candle has ``do_predict == 0``: FreqAI's
            backtest windows end before the candle at the timerange's end, so FreqAI never
            predicts it, and freqtrade's indicator comparison flags the prediction columns there
            for any FreqAI strategy.
    """

    total_signals: int
    false_entry_signals: int
    false_exit_signals: int
    false_indicators: list[str]
    has_bias: bool
    failed_bias_check: bool
    changed_before_last_candle: list[str]
    last_candle_unpredicted: bool

    @property
    def no_lookahead(self) -> bool:
        """Trades were checked, no signal changed, and no column changed before the cut."""
        return (self.total_signals > 0 and self.false_entry_signals == 0
                and self.false_exit_signals == 0 and not self.changed_before_last_candle)


def lookahead_analysis(export_dir: Path | str, *, timerange: str, datadir: Path | str | None = None,
                       pairs: list[str] | None = None, minimum_trade_amount: int = 1,
                       targeted_trade_amount: int = 5) -> LookaheadSummary:
    """Run freqtrade's ``lookahead-analysis`` on an export, in-process and offline.

    freqtrade backtests the timerange once, then for each of up to ``targeted_trade_amount``
    trades backtests again with the data cut right after the trade's entry (and exit) candle, and
    compares signals and dataframe columns. With FreqAI every run retrains its windows (fresh
    identifier, freqtrade purges the models folder between runs).

    Args:
        export_dir: folder written by the export.
        timerange: freqtrade timerange to analyse (keep it short: every trade costs two backtests).
        datadir: data folder (default: the study's).
        pairs: restrict the whitelist (default: the export's pairs).
        minimum_trade_amount, targeted_trade_amount: freqtrade's options of the same names.
    """
    import tempfile

    from freqtrade.configuration import setup_utils_configuration
    from freqtrade.enums import RunMode
    from freqtrade.optimize.analysis.lookahead_helpers import LookaheadAnalysisSubFunctions
    from freqtrade.resolvers import StrategyResolver
    from freqtrade.util import get_progress_tracker

    from optimize.ftoffline import load_markets, offline_markets, preserved_logging

    out, run_config, settings, datadir = _prepare(export_dir, datadir, "lookahead")
    exchange = run_config["exchange"]
    run_config["exchange"] = {**exchange, "pair_whitelist": list(pairs or exchange["pair_whitelist"])}
    with tempfile.TemporaryDirectory(prefix="lookahead-") as tmp, preserved_logging():
        cfg_path = Path(tmp) / "config.json"
        cfg_path.write_text(json.dumps(run_config), encoding="utf-8")
        args = {
            "config": [str(cfg_path)],
            "datadir": str(datadir / str(settings.get("exchange", "binance"))),
            "user_data_dir": tmp,
            "strategy": STRATEGY_NAME,
            "strategy_path": str(out / STRATEGY_DIR),
            "timerange": timerange,
            "minimum_trade_amount": minimum_trade_amount,
            "targeted_trade_amount": targeted_trade_amount,
        }
        ft_config = setup_utils_configuration(args, RunMode.UTIL_NO_EXCHANGE)
        ft_config = LookaheadAnalysisSubFunctions.calculate_config_overrides(ft_config)
        found = [o for o in StrategyResolver.search_all_objects(ft_config, enum_failed=False)
                 if o["name"] == STRATEGY_NAME]
        if not found:
            raise ValueError(f"{STRATEGY_NAME} not found in {out / STRATEGY_DIR}.")
        with offline_markets(load_markets()), get_progress_tracker() as progress:
            analysis = LookaheadAnalysisSubFunctions.initialize_single_lookahead_analysis(
                ft_config, found[0], progress)
    result = analysis.current_analysis
    changed, unpredicted = _compare_cuts(analysis)
    return LookaheadSummary(int(result.total_signals), int(result.false_entry_signals),
                            int(result.false_exit_signals), list(result.false_indicators),
                            bool(result.has_bias), bool(analysis.failed_bias_check),
                            changed, unpredicted)


def _compare_cuts(analysis: Any) -> tuple[list[str], bool]:
    """Columns differing before each cut's last candle; whether every last candle is unpredicted."""
    changed: set[str] = set()
    unpredicted = True
    full = analysis.full_varHolder.indicators
    for holder in (*analysis.entry_varHolders, *analysis.exit_varHolders):
        for pair, cut in getattr(holder, "indicators", {}).items():
            same = full[pair].loc[cut.index]
            diff = same.iloc[:-1].compare(cut.iloc[:-1])
            changed.update(str(col) for col, _ in diff.columns)
            if "do_predict" in cut.columns and cut["do_predict"].iloc[-1] == 1:
                unpredicted = False
    return sorted(changed), unpredicted
