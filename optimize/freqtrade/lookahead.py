"""freqtrade's lookahead analysis of an export, in-process and offline.

freqtrade's ``lookahead-analysis`` backtests a timerange once, then backtests again with the data
cut right after each of a few trades' entry (and exit) candle, and compares signals and dataframe
columns: a strategy that peeks at the future changes them. :func:`lookahead_analysis` runs it on
an export (set up like a verification, :mod:`optimize.freqtrade.run_setup`) and
:class:`LookaheadSummary` states the verdict, without the artefact that every FreqAI strategy
shows on a cut run's last candle (FreqAI never predicts it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from base.errors import ExportError
from optimize.freqtrade.export import STRATEGY_DIR
from optimize.freqtrade.run_setup import export_markets, prepare_run, run_span, warm_up
from strategy.freqtrade import STRATEGY_NAME


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

    from optimize.freqtrade.offline import offline_markets, preserved_logging

    out, run_config, settings, datadir = prepare_run(export_dir, datadir, "lookahead")
    markets = export_markets(run_config, settings)[1]
    warm_up(run_config, run_span(settings, "holdout", timerange)[1], None)
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
            raise ExportError(f"{STRATEGY_NAME} not found in {out / STRATEGY_DIR}.")
        with offline_markets(markets), get_progress_tracker() as progress:
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


__all__ = ["LookaheadSummary", "lookahead_analysis"]
