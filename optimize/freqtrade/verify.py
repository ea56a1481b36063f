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

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from base.errors import ExportError
from optimize.evaluation.scoring import FOLD_METRIC_KEYS, SIDE_KEYS, records_of_trades, side_metrics
from optimize.freqtrade.export import STRATEGY_DIR, TRADES_FILE
from optimize.freqtrade.offline import run_freqtrade_backtest
from optimize.freqtrade.run_setup import (
    SPANS,
    export_markets,
    prepare_run,
    read_json,
    run_span,
    warm_up,
)
from strategy.freqtrade import STRATEGY_NAME

logger = logging.getLogger(__name__)


MATCH_KEYS = ("pair", "is_short", "open_date", "close_date", "exit_reason")
"""A study trade and a freqtrade trade match when these agree (a trade stored before sides were
recorded is a long: spot studies traded nothing else)."""
COMPARED_KEYS = ("profit_ratio", "profit_abs", "leverage", "funding_fees")
"""Values a matched entry carries from both sides (``<key>_study``, ``<key>_freqtrade``)."""
SHOWN_KEYS = (*FOLD_METRIC_KEYS, *SIDE_KEYS)
"""The figures shown side by side (and in ``--json``'s ``study`` / ``freqtrade``)."""
MISMATCHES_SHOWN = 5


@dataclass(frozen=True)
class VerifyResult:
    """freqtrade's FreqAI backtest of an export next to the study's trades over the same span.

    Attributes:
        study_name, trial_number: the exported trial.
        span: ``"holdout"``, ``"walkforward"`` or ``"timerange"`` (a ``--timerange`` given).
        start, end: the backtested span (UTC, end exclusive).
        timerange: the freqtrade timerange.
        freqtrade: freqtrade's metrics (keys of
            :data:`optimize.evaluation.scoring.FOLD_METRIC_KEYS` it has).
        study: the study's metrics for the span (its stored ones for a whole span; computed from
            its trades for a ``--timerange``), None when the export holds no study trades.
        matched, study_only, freqtrade_only: trades (dicts of :data:`MATCH_KEYS` + profits);
            a matched entry carries both sides' :data:`COMPARED_KEYS` (``profit_ratio_study`` /
            ``profit_ratio_freqtrade``, ``funding_fees_study`` / ...).
        markets: the markets file served to freqtrade.
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
    markets: str = ""

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
            "markets": self.markets,
        }


def read_study_trades(export_dir: Path | str) -> dict[str, Any] | None:
    """The study's trades per span stored with the export
    (:data:`optimize.freqtrade.export.TRADES_FILE`), or None when the export has none (an export
    made without a study)."""
    path = Path(export_dir) / TRADES_FILE
    if not path.is_file():
        return None
    doc = read_json(path, "the study's trades written by the export")
    if not isinstance(doc, dict) or not isinstance(doc.get("spans"), dict):
        raise ExportError(f"{path}: expected an object with 'spans', written by the export.")
    return doc["spans"]


def _trade_key(trade: dict[str, Any]) -> tuple[str, bool, pd.Timestamp, pd.Timestamp, str]:
    return (
        str(trade["pair"]),
        bool(trade.get("is_short", False)),  # stored before sides were recorded: a spot long
        pd.Timestamp(trade["open_date"]).tz_convert("UTC"),
        pd.Timestamp(trade["close_date"]).tz_convert("UTC"),
        str(trade["exit_reason"]),
    )


def match_trades(
    study: list[dict[str, Any]], freqtrade: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Pair the two sides' trades on :data:`MATCH_KEYS`.

    Returns:
        ``(matched, study_only, freqtrade_only)``; a matched entry holds the keys and both sides'
        :data:`COMPARED_KEYS` (suffixes ``_study`` / ``_freqtrade``; a value a stored trade lacks
        is None).
    """
    theirs: dict[tuple, list[dict[str, Any]]] = {}
    for trade in freqtrade:
        theirs.setdefault(_trade_key(trade), []).append(trade)
    matched, study_only = [], []
    for trade in study:
        candidates = theirs.get(_trade_key(trade))
        if candidates:
            other = candidates.pop(0)
            entry = dict(zip(MATCH_KEYS, _trade_key(trade), strict=True))
            entry.update({k: trade[k] for k in ("pair", "open_date", "close_date")})
            for key in COMPARED_KEYS:
                entry[f"{key}_study"] = trade.get(key)
                entry[f"{key}_freqtrade"] = other.get(key)
            matched.append(entry)
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
    shorts = sum(bool(t.get("is_short", False)) for t in trades)
    metrics = {
        "total_trades": float(len(trades)),
        "profit_total": profit / wallet,
        "long_trades": len(trades) - shorts,
        "short_trades": shorts,
        "funding_paid": -sum(float(t.get("funding_fees", 0.0)) for t in trades) + 0.0,
    }
    return trades, metrics, note


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
    out, run_config, settings, datadir = prepare_run(export_dir, datadir, "verify")
    name, start, end, tr, anchor = run_span(settings, span, timerange)
    run_config["export"] = "none"
    warm_up(run_config, start, anchor)
    path, markets = export_markets(run_config, settings)
    mode = run_config.get("trading_mode", "spot")
    logger.info("verifying %s over %s (%s, %s, markets %s)", out, tr, name, mode, path)
    result = run_freqtrade_backtest(
        run_config,
        STRATEGY_NAME,
        datadir=datadir,
        timerange=tr,
        strategy_path=out / STRATEGY_DIR,
        markets=markets,
    )
    stats = result.stats
    # freqtrade's strategy stats use the study's metric names; absent ones show as n/a
    figures = {
        k: float(stats[k]) for k in FOLD_METRIC_KEYS if isinstance(stats.get(k), int | float)
    }
    figures.update(side_metrics(result.trades))
    theirs = records_of_trades(result.trades)
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
        str(path),
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
    for key in SHOWN_KEYS:
        ours = None if result.study is None else result.study.get(key)
        rows.append(f"{key:<22}{_fmt(ours):>14}{_fmt(result.freqtrade.get(key)):>14}")
    for side, trades in (
        ("study only", result.study_only),
        ("freqtrade only", result.freqtrade_only),
    ):
        for t in trades[:MISMATCHES_SHOWN]:
            rows.append(
                f"  {side}: {t['pair']} {'short' if t.get('is_short') else 'long'} "
                f"{t['open_date']} -> {t['close_date']} {t['exit_reason']} profit "
                f"{t['profit_ratio']:.6f}"
            )
    if result.note:
        rows.append(f"note: {result.note}")
    return "\n".join(rows)
