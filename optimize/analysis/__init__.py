"""What a finished study found, said honestly: statistics and the report.

* :mod:`~optimize.analysis.stats` — Sharpe ratios, the probabilistic and deflated Sharpe ratio;
* :mod:`~optimize.analysis.pbo` — the probability of backtest overfitting (CSCV);
* :mod:`~optimize.analysis.report` — the report's figures, verdict, JSON and dashboard note;
* :mod:`~optimize.analysis.html` — the self-contained HTML page (offline plotly), section by
  section;
* :mod:`~optimize.analysis.figures` — the report's plotly figures (equity and drawdown,
  importances, optimisation history, CSCV logits);
* :mod:`~optimize.analysis.markup` — the page's HTML building blocks (metric cells, tables, style).
"""

from base.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "deflated_sharpe_ratio": "optimize.analysis.stats",
        "probabilistic_sharpe_ratio": "optimize.analysis.stats",
        "probability_of_backtest_overfitting": "optimize.analysis.pbo",
        "PBOResult": "optimize.analysis.pbo",
        "collect": "optimize.analysis.report",
        "ReportInputs": "optimize.analysis.report",
        "report_json": "optimize.analysis.report",
        "verdict": "optimize.analysis.report",
        "write_report": "optimize.analysis.html",
        "equity_figure": "optimize.analysis.figures",
    },
)
