"""Verify an export: freqtrade's own FreqAI backtest of the exported artefacts, offline.

``python -m optimize verify --export DIR [--span holdout|walkforward] [--timerange TR] [--json]
[--strict]`` runs freqtrade's ``Backtesting`` in this process with the export's config, parameter
file, strategy and FreqAI model (markets and fees served locally by
:mod:`optimize.freqtrade.offline`), over the study's holdout (default) or its walk-forward test
windows, and matches freqtrade's trades with the study's trades of the same span (stored with the
export, :data:`optimize.freqtrade.export.TRADES_FILE`): a trade matches when pair, open date, close
date and exit reason agree.

Same schedule, same inputs: FreqAI's windows over either span are the study's (the model drops
the purge gap and keeps the study's train window), indicators start at the same warm-up candle
(the run's ``startup_candle_count`` makes freqtrade load back to it), seeds follow the same rule;
so every trade is expected to match (measured: docs/export.md).

Each run uses a fresh FreqAI identifier and a temporary user-data folder, so it always trains
its own models: FreqAI would otherwise silently reuse cached predictions.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from freqtrade.configuration import TimeRange

from optimize.freqtrade.export import (
    CONFIG_FILE,
    STRATEGY_DIR,
    TRADES_FILE,
    new_identifier,
    startup_candles,
)
from optimize.freqtrade.offline import run_freqtrade_backtest
from optimize.study.evaluate import FOLD_METRIC_KEYS
from strategy.features import WARMUP_CANDLES
from strategy.freqtrade import STRATEGY_NAME
from strategy.freqtrade.rules import SETTINGS_KEY
from strategy.timeframes import timeframe_to_timedelta

logger = logging.getLogger(__name__)


SPANS = ("holdout", "walkforward")
MATCH_KEYS = ("pair", "open_date", "close_date", "exit_reason")
"""A study trade and a freqtrade trade match when these agree."""
MISMATCHES_SHOWN = 5


@dataclass(frozen=True)
class VerifyResult:
    """freqtrade's FreqAI backtest of an export next to the study's trades over the same span.

    Attributes:
        study_name, trial_number: the exported trial.
        span: ``"holdout"``, ``"walkforward"`` or ``"timerange"`` (a ``--timerange`` given).
        start, end: the backtested span (UTC, end exclusive).
        timerange: the freqtrade timerange.
        freqtrade: freqtrade's metrics (keys of :data:`optimize.study.evaluate.FOLD_METRIC_KEYS` it
        has).
        study: the study's metrics for the span (its stored ones for a whole span; computed from
            its trades for a ``--timerange``), None when the export holds no study trades.
        matched, study_only, freqtrade_only: trades (dicts of :data:`MATCH_KEYS` + profits);
            a matched entry carries both profits (``profit_ratio_study`` / ``_freqtrade``...).
        note: why the study's side is missing, or what to keep in mind (empty otherwise).
        trades: number of freqtrade trades.
        stats: freqtrade's full per-strategy stats dict.
    """

    study_name: str
    trial_number: int
    span: str
    start: pd.Timestamp
    end: pd.Timestamp
    timerange: str
    freqtrade: dict[str, float]
    study: dict[str, float] | None
    matched: list[dict[str, Any]]
    study_only: list[dict[str, Any]]
    freqtrade_only: list[dict[str, Any]]
    note: str
    trades: int
    stats: dict[str, Any]

    @property
    def all_match(self) -> bool:
        """The study's trades are known and every trade of both sides matches."""
        return self.study is not None and not self.study_only and not self.freqtrade_only

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``verify --json`` prints."""
        return {
            "study_name": self.study_name,
            "trial": self.trial_number,
            "span": {
                "name": self.span,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "timerange": self.timerange,
            },
            "trades": {
                "matched": len(self.matched),
                "study_only": len(self.study_only),
                "freqtrade_only": len(self.freqtrade_only),
            },
            "study": self.study,
            "freqtrade": self.freqtrade,
            "mismatches": {
                "study_only": self.study_only[:MISMATCHES_SHOWN],
                "freqtrade_only": self.freqtrade_only[:MISMATCHES_SHOWN],
            },
            "all_match": self.all_match,
            "note": self.note,
        }


def read_export(export_dir: Path | str) -> dict[str, Any]:
    """The export's freqtrade config.

    Raises:
        FileNotFoundError: no ``config.json`` in ``export_dir``.
        ValueError: the config is not valid JSON or was not written by
            ``python -m optimize export``.
    """
    path = Path(export_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no export at {export_dir}: {path} does not exist.")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc}); expected the config.json written by the export."
        ) from None
    if (
        not isinstance(config, dict)
        or not isinstance(config.get(SETTINGS_KEY), dict)
        or "trial_number" not in config[SETTINGS_KEY]
    ):
        raise ValueError(f"{path} has no '{SETTINGS_KEY}' block; it was not written by the export.")
    return config


def read_study_trades(export_dir: Path | str) -> dict[str, Any] | None:
    """The study's trades per span stored with the export
    (:data:`optimize.freqtrade.export.TRADES_FILE`), or None when the export has none (an export
    made without a study)."""
    path = Path(export_dir) / TRADES_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc}); expected the study's trades written by the export."
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("spans"), dict):
        raise ValueError(f"{path}: expected an object with 'spans', written by the export.")  # noqa: TRY004
    return doc["spans"]


def _prepare(
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


def _span(
    settings: dict[str, Any], span: str, timerange: str | None
) -> tuple[str, pd.Timestamp, pd.Timestamp, str, str | None]:
    """``(span name, start, end, timerange, warm-up start)`` of a verification."""
    if timerange:
        tr = TimeRange.parse_timerange(timerange)
        if not tr.startts or not tr.stopts:
            raise ValueError(
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
        raise ValueError(f"span must be one of {SPANS}, but got span={span!r}.")
    info = settings.get(span)
    if not info:
        raise ValueError(f"the export has no {span} span (the study has none); pass --timerange.")
    if not info.get("freqai_schedule", True):
        raise ValueError(
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


def _warm_up(run_config: dict[str, Any], start: pd.Timestamp, anchor: str | None) -> None:
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


def _trade_key(trade: dict[str, Any]) -> tuple[str, pd.Timestamp, pd.Timestamp, str]:
    return (
        str(trade["pair"]),
        pd.Timestamp(trade["open_date"]).tz_convert("UTC"),
        pd.Timestamp(trade["close_date"]).tz_convert("UTC"),
        str(trade["exit_reason"]),
    )


def _freqtrade_trades(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "pair": str(r.pair),
            "open_date": pd.Timestamp(r.open_date).isoformat(),
            "close_date": pd.Timestamp(r.close_date).isoformat(),
            "exit_reason": str(r.exit_reason),
            "profit_ratio": float(r.profit_ratio),
            "profit_abs": float(r.profit_abs),
        }
        for r in frame.itertuples(index=False)
    ]


def match_trades(
    study: list[dict[str, Any]], freqtrade: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Pair the two sides' trades on :data:`MATCH_KEYS`.

    Returns:
        ``(matched, study_only, freqtrade_only)``; a matched entry holds the keys and both sides'
        ``profit_ratio`` and ``profit_abs`` (suffixes ``_study`` / ``_freqtrade``).
    """
    theirs: dict[tuple, list[dict[str, Any]]] = {}
    for trade in freqtrade:
        theirs.setdefault(_trade_key(trade), []).append(trade)
    matched, study_only = [], []
    for trade in study:
        candidates = theirs.get(_trade_key(trade))
        if candidates:
            other = candidates.pop(0)
            matched.append(
                {
                    **{k: trade[k] for k in MATCH_KEYS},
                    "profit_ratio_study": trade["profit_ratio"],
                    "profit_ratio_freqtrade": other["profit_ratio"],
                    "profit_abs_study": trade["profit_abs"],
                    "profit_abs_freqtrade": other["profit_abs"],
                }
            )
        else:
            study_only.append(trade)
    freqtrade_only = [t for rest in theirs.values() for t in rest]
    freqtrade_only.sort(key=lambda t: (t["open_date"], t["pair"]))
    return matched, study_only, freqtrade_only


def _study_side(
    spans: dict[str, Any] | None, span: str, start: pd.Timestamp, end: pd.Timestamp, wallet: float
) -> tuple[list[dict[str, Any]] | None, dict[str, float] | None, str]:
    """The study's trades and metrics for the span, and a note."""
    if spans is None:
        return None, None, "the export holds no study trades (it was not made from a study)."
    if span in spans:
        stored = spans[span]
        return list(stored["trades"]), dict(stored.get("metrics", {})), ""
    if span in SPANS:
        return (
            None,
            None,
            (
                f"the export holds no study trades for the {span} (a study run before "
                "trades were recorded); re-run the study and export again."
            ),
        )
    trades = [
        t
        for s in spans.values()
        for t in s["trades"]
        if start <= pd.Timestamp(t["open_date"]) and pd.Timestamp(t["close_date"]) < end
    ]
    note = (
        "study trades of its stored spans that open and close inside the timerange; FreqAI's "
        "windows over another timerange are not the study's, so trades may differ."
    )
    profit = sum(t["profit_abs"] for t in trades)
    return trades, {"total_trades": float(len(trades)), "profit_total": profit / wallet}, note


def verify_export(
    export_dir: Path | str,
    *,
    span: str = "holdout",
    timerange: str | None = None,
    datadir: Path | str | None = None,
    storage: str | None = None,
) -> VerifyResult:
    """Backtest an export with freqtrade (FreqAI, offline, in-process) and match its trades with
    the study's.

    Args:
        export_dir: folder written by :func:`optimize.freqtrade.export.export_trial`.
        span: ``"holdout"`` (default) or ``"walkforward"`` (the trial's out-of-sample test windows).
        timerange: freqtrade timerange to use instead of a span (the study's side is then its
            trades inside it).
        datadir: data folder holding ``<exchange>/<PAIR>-<tf>.feather`` (default: the study's).
        storage: unused (the study's trades travel with the export); kept for callers.

    Raises:
        FileNotFoundError / ValueError: not an export; no such span; a timerange whose first
            FreqAI training window starts before the study's warm-up start.
    """
    out, run_config, settings, datadir = _prepare(export_dir, datadir, "verify")
    name, start, end, tr, anchor = _span(settings, span, timerange)
    run_config["export"] = "none"
    _warm_up(run_config, start, anchor)
    logger.info("verifying %s over %s (%s)", out, tr, name)
    result = run_freqtrade_backtest(
        run_config, STRATEGY_NAME, datadir=datadir, timerange=tr, strategy_path=out / STRATEGY_DIR
    )
    stats = result.stats
    # freqtrade's strategy stats use the study's metric names; absent ones show as n/a
    figures = {
        k: float(stats[k]) for k in FOLD_METRIC_KEYS if isinstance(stats.get(k), int | float)
    }
    theirs = _freqtrade_trades(result.trades)
    study_trades, study_metrics, note = _study_side(
        read_study_trades(out), name, start, end, float(run_config.get("dry_run_wallet", 1000))
    )
    matched, study_only, freqtrade_only = match_trades(study_trades or [], theirs)
    if study_trades is None:
        freqtrade_only = []
    return VerifyResult(
        settings["study_name"],
        int(settings["trial_number"]),
        name,
        start,
        end,
        tr,
        figures,
        study_metrics,
        matched,
        study_only,
        freqtrade_only,
        note,
        len(theirs),
        stats,
    )


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}"


def format_comparison(result: VerifyResult) -> str:
    """A text table: trades matched / study only / freqtrade only, then metric, study, freqtrade."""
    rows = [
        (
            f"study {result.study_name!r} trial {result.trial_number}: {result.span} "
            f"{result.start} .. {result.end} (freqtrade timerange {result.timerange})"
        )
    ]
    if result.study is not None:
        rows.append(
            f"trades: {len(result.matched)} matched, {len(result.study_only)} study only, "
            f"{len(result.freqtrade_only)} freqtrade only"
        )
    rows.append(f"{'metric':<22}{'study':>14}{'freqtrade':>14}")
    for key in FOLD_METRIC_KEYS:
        ours = None if result.study is None else result.study.get(key)
        rows.append(f"{key:<22}{_fmt(ours):>14}{_fmt(result.freqtrade.get(key)):>14}")
    for side, trades in (
        ("study only", result.study_only),
        ("freqtrade only", result.freqtrade_only),
    ):
        for t in trades[:MISMATCHES_SHOWN]:
            rows.append(
                f"  {side}: {t['pair']} {t['open_date']} -> {t['close_date']} "
                f"{t['exit_reason']} profit {t['profit_ratio']:.6f}"
            )
    if result.note:
        rows.append(f"note: {result.note}")
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
        return (
            self.total_signals > 0
            and self.false_entry_signals == 0
            and self.false_exit_signals == 0
            and not self.changed_before_last_candle
        )


def lookahead_analysis(
    export_dir: Path | str,
    *,
    timerange: str,
    datadir: Path | str | None = None,
    pairs: list[str] | None = None,
    minimum_trade_amount: int = 1,
    targeted_trade_amount: int = 5,
) -> LookaheadSummary:
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

    from optimize.freqtrade.offline import load_markets, offline_markets, preserved_logging

    out, run_config, settings, datadir = _prepare(export_dir, datadir, "lookahead")
    _warm_up(run_config, _span(settings, "holdout", timerange)[1], None)
    exchange = run_config["exchange"]
    run_config["exchange"] = {
        **exchange,
        "pair_whitelist": list(pairs or exchange["pair_whitelist"]),
    }
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
        found = [
            o
            for o in StrategyResolver.search_all_objects(ft_config, enum_failed=False)
            if o["name"] == STRATEGY_NAME
        ]
        if not found:
            raise ValueError(f"{STRATEGY_NAME} not found in {out / STRATEGY_DIR}.")
        with offline_markets(load_markets()), get_progress_tracker() as progress:
            analysis = LookaheadAnalysisSubFunctions.initialize_single_lookahead_analysis(
                ft_config, found[0], progress
            )
    result = analysis.current_analysis
    changed, unpredicted = _compare_cuts(analysis)
    return LookaheadSummary(
        int(result.total_signals),
        int(result.false_entry_signals),
        int(result.false_exit_signals),
        list(result.false_indicators),
        bool(result.has_bias),
        bool(analysis.failed_bias_check),
        changed,
        unpredicted,
    )


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
