"""HTML and plotly figures of the study report (:mod:`optimize.analysis.report` gathers the inputs).

One page, one ``<section id=...>`` per part (ids in :data:`SECTIONS`), plotly.js inlined once in
the head (the same bundle ``include_plotlyjs=True`` embeds), every figure a ``<div>`` drawn by
``Plotly.newPlot``. No network access is needed to open the file.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from optimize._version import __version__
from optimize.analysis.report import (
    DEFAULT_REPORT_DIR,
    DSR_THRESHOLD,
    MIN_BLOCK_DAYS,
    ReportInputs,
    collect,
    noise_row,
)
from optimize.study.scoring import FOLD_METRIC_KEYS

logger = logging.getLogger(__name__)

SECTIONS = {
    "summary": "Summary",
    "verdict": "Verdict",
    "history": "Optimization history",
    "importances": "Parameter importances",
    "parallel": "Parallel coordinates",
    "folds": "Walk-forward folds of the selected trial",
    "equity": "Out-of-sample equity and drawdown",
    "holdout": "Holdout",
    "seed_noise": "Seed noise",
    "overfitting": "Overfitting statistics",
}
"""Section id -> heading, in page order."""
MIN_TRIALS_IMPORTANCE = 2
FEW_TRIALS_IMPORTANCE = 20
PERCENT_KEYS = {
    "profit_total",
    "max_drawdown_account",
    "max_drawdown_equity",
    "winrate",
    "exposure",
    "cagr",
}
COLORS = {"model": "#1f77b4", "no_model": "#ff7f0e", "buy_and_hold": "#2ca02c"}
LABELS = {
    "model": "model",
    "no_model": "no-model (thresholds on T)",
    "buy_and_hold": "buy-and-hold",
}
PLOT_CONFIG = {"displaylogo": False, "responsive": True}

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .85rem; }
th, td { border: 1px solid #ddd; padding: .2rem .5rem; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
.verdict { font-size: 1.1rem; font-weight: 600; padding: .6rem; background: #fff7e0;
  border-left: 4px solid #e0a800; }
.note { color: #555; font-style: italic; } .warn { color: #a00; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(key: str, value: Any) -> str:
    """A metric for a table cell: percentages for ratios of money/time, 3 significant digits
    else."""
    if value is None:
        return "–"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return str(value)
        if key in PERCENT_KEYS:
            return f"{value:.2%}"
        if key in ("total_trades", "candles") or (float(value).is_integer() and abs(value) < 1e6):
            return f"{value:.0f}"
        return f"{value:.4g}"
    return _esc(value)


def table(headers: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    """An HTML table (no header row when ``headers`` is None); cells are already-escaped strings."""
    head = (
        ""
        if headers is None
        else "<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in headers) + "</tr></thead>"
    )
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def note(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{_esc(text)}</p>'


def figure_div(fig: go.Figure, name: str) -> str:
    """The figure as a div (plotly.js comes once from the page head)."""
    return fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=f"fig-{name}", config=PLOT_CONFIG
    )


def _target(study: optuna.Study) -> dict[str, Any]:
    if len(study.directions) == 1:
        return {}
    return {"target": lambda t: t.values[0], "target_name": "objective 1"}


# --------------------------------------------------------------------------- sections


def _summary(inp: ReportInputs) -> str:
    study, trial = inp.study, inp.trial
    attrs = study.user_attrs
    noise = inp.trial_noise
    if inp.chosen:
        how = "chosen with --trial"
    elif len(study.directions) != 1:
        how = "Pareto front, best first objective"
    elif noise is not None:
        how = (
            f"best mean over {len(noise.values)} fresh seed sets: "
            f"{noise.mean:.4g} ± {noise.std:.2g}"
        )
    else:
        how = "best trial"
    rows = [
        ["study", _esc(study.study_name)],
        [
            "objective",
            _esc(
                f"{attrs.get('objective', '?')} "
                f"({', '.join(d.name.lower() for d in study.directions)})"
            ),
        ],
        ["trials", _esc(", ".join(f"{k.lower()} {v}" for k, v in inp.states.items()))],
        [
            "run config / space",
            _esc(f"{attrs.get('config_source', '?')} / {attrs.get('space_source', '?')}"),
        ],
        [
            "selected trial",
            _esc(f"#{trial.number} ({how}), value {', '.join(f'{v:.4g}' for v in trial.values)}"),
        ],
    ]
    params = [[_esc(k), fmt(k, v)] for k, v in sorted(trial.params.items())]
    return (
        table(None, rows)
        + "<h3>Parameters of the selected trial</h3>"
        + (table(["parameter", "value"], params) if params else note("no sampled parameters"))
    )


def _history(inp: ReportInputs) -> str:
    if not inp.completed:
        return note("no completed trial yet")
    fig = optuna.visualization.plot_optimization_history(inp.study, **_target(inp.study))
    return figure_div(fig, "history")


def _importances(inp: ReportInputs) -> str:
    n = len(inp.completed)
    if n < MIN_TRIALS_IMPORTANCE:
        return note(
            f"parameter importances need at least {MIN_TRIALS_IMPORTANCE} completed trials; the "
            f"study has {n}."
        )
    kwargs = {"target": _target(inp.study)["target"]} if len(inp.study.directions) > 1 else {}
    try:
        imp = optuna.importance.get_param_importances(
            inp.study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), **kwargs
        )
    except (ValueError, RuntimeError) as exc:
        return note(f"parameter importances could not be computed: {exc}")
    if not imp:
        return note("no parameter varied across the completed trials.")
    names = list(imp)[::-1]
    fig = go.Figure(
        go.Bar(x=[imp[k] for k in names], y=names, orientation="h", marker_color=COLORS["model"])
    )
    fig.update_layout(
        title="fANOVA importance (share of the objective's variance)",
        height=120 + 22 * len(names),
        margin={"l": 140},
        xaxis_title="importance",
    )
    out = figure_div(fig, "importances")
    if n < FEW_TRIALS_IMPORTANCE:
        out += note(f"only {n} completed trials: importances this early are mostly noise.")
    return out


def _parallel(inp: ReportInputs) -> str:
    if not inp.completed:
        return note("no completed trial yet")
    fig = optuna.visualization.plot_parallel_coordinate(inp.study, **_target(inp.study))
    return figure_div(fig, "parallel")


def _folds(inp: ReportInputs) -> str:
    folds = inp.record.folds
    if not folds:
        return note("the selected trial has no per-fold results stored.")
    headers = [
        "fold",
        "train",
        "test",
        "score",
        "trades",
        "profit",
        "max DD",
        "sharpe",
        "winrate",
        "no-model profit",
        "buy-and-hold profit",
    ]
    rows = []
    for f in folds:
        m, nm, bh = f.get("metrics", {}), f.get("no_model", {}), f.get("buy_and_hold", {})
        rows.append(
            [
                fmt("fold", f["fold"]),
                _esc(f"{f['train_start'][:10]} – {f['train_end'][:10]}"),
                _esc(f"{f['test_start'][:10]} – {f['test_end'][:10]}"),
                fmt("score", f.get("score")),
                fmt("total_trades", m.get("total_trades")),
                fmt("profit_total", m.get("profit_total")),
                fmt("max_drawdown_account", m.get("max_drawdown_account")),
                fmt("sharpe", m.get("sharpe")),
                fmt("winrate", m.get("winrate")),
                fmt("profit_total", nm.get("profit_total")),
                fmt("profit_total", bh.get("profit_total")),
            ]
        )
    oos, base = inp.record.oos_metrics, inp.record.baselines
    rows.append(
        [
            "<b>all</b>",
            "",
            _esc(f"{folds[0]['test_start'][:10]} – {folds[-1]['test_end'][:10]}"),
            "",
            fmt("total_trades", oos.get("total_trades")),
            fmt("profit_total", oos.get("profit_total")),
            fmt("max_drawdown_account", oos.get("max_drawdown_account")),
            fmt("sharpe", oos.get("sharpe")),
            fmt("winrate", oos.get("winrate")),
            fmt("profit_total", base.get("no_model", {}).get("profit_total")),
            fmt("profit_total", base.get("buy_and_hold", {}).get("profit_total")),
        ]
    )
    return table(headers, rows)


def equity_figure(daily: dict[str, Any], title: str) -> go.Figure:
    """Equity (1 = start) and drawdown of the stored end-of-day curves (model, no-model,
    buy-and-hold).

    Each value is placed at the end of its day; a leading 1.0 marks the start of the span.
    """
    start = pd.Timestamp(daily["start"])
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.65, 0.35],
        vertical_spacing=0.06,
        subplot_titles=("equity (1 = start)", "drawdown from the running peak"),
    )
    for key in ("model", "no_model", "buy_and_hold"):
        values = daily.get(key)
        if not values:
            continue
        curve = pd.Series(
            [1.0, *values], index=pd.date_range(start, periods=len(values) + 1, freq="D")
        )
        dd = curve / curve.cummax() - 1.0
        common = {"mode": "lines", "line": {"color": COLORS[key]}, "legendgroup": key}
        fig.add_trace(
            go.Scatter(x=curve.index, y=curve.to_numpy(), name=LABELS[key], **common), row=1, col=1
        )
        fig.add_trace(
            go.Scatter(x=dd.index, y=dd.to_numpy(), name=LABELS[key], showlegend=False, **common),
            row=2,
            col=1,
        )
    fig.update_yaxes(tickformat=".0%", row=2, col=1)
    fig.update_layout(title=title, height=560, hovermode="x unified")
    return fig


def _equity(inp: ReportInputs) -> str:
    daily = inp.record.daily_equity
    if not daily or not daily.get("model"):
        returns = inp.record.daily_returns
        if not returns:
            return note("the selected trial has no stored out-of-sample equity.")
        folds = inp.record.folds or [{"test_start": "1970-01-01"}]
        curve = [1.0]
        for r in returns:
            curve.append(curve[-1] * (1.0 + r))
        daily = {"start": folds[0]["test_start"][:10], "model": curve[1:]}
        msg = note(
            "this trial predates the stored baseline curves: model only, rebuilt from its daily "
            "returns (the first day's move is missing)."
        )
    else:
        msg = ""
    return (
        figure_div(
            equity_figure(daily, f"trial #{inp.trial.number}, walk-forward test windows"), "equity"
        )
        + msg
    )


def _metrics_rows(model: dict, no_model: dict, bh: dict) -> list[list[str]]:
    rows = [
        [_esc(k), fmt(k, model.get(k)), fmt(k, no_model.get(k)), fmt(k, bh.get(k))]
        for k in FOLD_METRIC_KEYS
    ]
    rows.append(
        ["max_drawdown_equity", "–", "–", fmt("max_drawdown_equity", bh.get("max_drawdown_equity"))]
    )
    return rows


def _holdout(inp: ReportInputs) -> str:
    out = ""
    others = [n for n in inp.holdout_trials if n != inp.trial.number]
    if others:
        out += note(
            f"the holdout was also evaluated for trial(s) {others}: choosing among trials by their "
            "holdout would turn it into one more optimisation fold.",
            "warn",
        )
    rec = inp.holdout
    if rec is None:
        return out + note(f"holdout {inp.holdout_note}")

    def window(w: dict[str, Any]) -> str:
        return _esc(f"{w['start'][:16]} – {w['end'][:16]} ({w['candles']} candles)")

    def values(v: list[float]) -> str:
        return ", ".join(f"{x:.4g}" for x in v)

    out += table(
        None,
        [
            ["holdout", window(rec["holdout"])],
            ["retrained on", window(rec["train"])],
            [
                "objective on the holdout",
                _esc(
                    f"{rec['objective']} = {values(rec['values'])} "
                    f"(walk-forward: {values(rec['trial_values'])})"
                ),
            ],
            [
                "computed",
                _esc(
                    f"{rec['computed_at']} (lstm-optuna {rec['version']}, study seed "
                    f"{rec['study_seed']}, {rec['ensemble_size']} member(s) per pair)"
                ),
            ],
        ],
    )
    out += table(
        ["metric", "model", "no-model", "buy-and-hold"],
        _metrics_rows(
            rec["metrics"], rec["baselines"]["no_model"], rec["baselines"]["buy_and_hold"]
        ),
    )
    if rec.get("daily_equity", {}).get("model"):
        out += figure_div(
            equity_figure(rec["daily_equity"], f"trial #{rec['trial']}, holdout"), "holdout"
        )
    return out


def _num(x: float | None, spec: str = ".4f") -> str:
    return "–" if x is None else format(x, spec)


def _overfitting(inp: ReportInputs) -> str:
    s = inp.stats
    rows = [
        ["completed trials N", str(s.n_trials)],
        ["daily returns T", str(s.n_days)],
        [
            "Sharpe per day (annual, x sqrt(365))",
            f"{_num(s.sharpe)} ({_num(s.sharpe_annual, '.2f')})",
        ],
        ["variance of the trials' daily Sharpe V", _num(s.sharpe_variance, ".3g")],
        ["expected max Sharpe of N luck trials SR0", _num(s.sr0)],
        ["skew / raw kurtosis", f"{_num(s.skew, '.3f')} / {_num(s.kurtosis, '.3f')}"],
        [
            f"<b>Deflated Sharpe Ratio</b> (>= {DSR_THRESHOLD}: unlikely luck)",
            f"<b>{_num(s.dsr, '.3f')}</b>" + (f" ({_esc(s.dsr_reason)})" if s.dsr_reason else ""),
        ],
        ["CSCV blocks S / combinations", f"{s.pbo_splits} / {s.pbo_combinations}"],
        ["trials / days used by PBO", f"{s.pbo_columns} / {s.pbo_rows}"],
        [
            "<b>Probability of Backtest Overfitting</b> (~0.5: no better than chance)",
            f"<b>{_num(s.pbo, '.3f')}</b>" + (f" ({_esc(s.pbo_reason)})" if s.pbo_reason else ""),
        ],
    ]
    out = table(["statistic", "value"], rows)
    out += note(
        "From each completed trial's daily out-of-sample returns; S is the largest even number <= "
        f"16 leaving at least {MIN_BLOCK_DAYS} days per block. See docs/report.md and "
        "docs/statistics.md."
    )
    if s.pbo_logits:
        fig = go.Figure(go.Histogram(x=s.pbo_logits, nbinsx=30, marker_color=COLORS["model"]))
        fig.add_vline(x=0.0, line_dash="dash", line_color="#a00")
        fig.update_layout(
            title="CSCV logits of the in-sample winner's out-of-sample rank (<= 0: overfit)",
            xaxis_title="logit",
            yaxis_title="combinations",
            height=320,
        )
        out += figure_div(fig, "pbo")
    return out


def _seed_noise(inp: ReportInputs) -> str:

    out = f"<p>{_esc(inp.noise_sentence)}</p>"
    if not inp.noise:
        return out + note(
            "The robustness step has not run for this study: "
            "`python -m optimize robustness --study-name NAME` re-evaluates the best "
            "trials on fresh seed sets."
        )
    rows = []
    for n in inp.noise:
        r = noise_row(n, inp.value_iqr)
        mark = " (selected)" if n.trial == inp.trial.number else ""
        rows.append(
            [
                f"#{n.trial}{mark}",
                _num(r["recorded"]),
                f"{_num(r['mean'])} ± {_num(r['std'])}",
                f"{_num(r['min'])} .. {_num(r['max'])}",
                _num(r["std_over_iqr"], ".2f"),
                ", ".join(f"{v:.4f}" for v in n.values),
            ]
        )
    out += table(
        [
            "trial",
            "recorded value",
            "mean ± std over fresh seeds",
            "min .. max",
            "seed std / IQR across trials",
            "values",
        ],
        rows,
    )
    return out + note(
        "The best complete trials by recorded value, each re-evaluated with the same parameters "
        "on fresh seed sets (other training seeds, same data). IQR of the values of the "
        f"{len(inp.completed)} complete trials: {_num(inp.value_iqr)}. The selected trial is the "
        "best by the mean over fresh seeds, not by its recorded value."
    )


RENDERERS = {
    "summary": _summary,
    "verdict": lambda inp: f'<p class="verdict">{_esc(inp.verdict)}</p>',
    "history": _history,
    "importances": _importances,
    "parallel": _parallel,
    "folds": _folds,
    "equity": _equity,
    "holdout": _holdout,
    "seed_noise": _seed_noise,
    "overfitting": _overfitting,
}


def render(inp: ReportInputs) -> str:
    """The whole page."""
    parts = []
    for sid, title in SECTIONS.items():
        try:
            body = RENDERERS[sid](inp)
        except Exception as exc:  # one broken section must not lose the whole report
            logger.exception("report section %s failed", sid)
            body = note(f"this section failed: {type(exc).__name__}: {exc}", "warn")
        parts.append(f'<section id="{sid}"><h2>{_esc(title)}</h2>\n{body}\n</section>')
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    name = _esc(inp.study.study_name)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>lstm-optuna report: {name}</title><style>{_CSS}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>\n<body>\n'
        f'<h1>Study {name}</h1><p class="note">lstm-optuna {_esc(__version__)}, '
        f"generated {stamp}</p>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def render_report(
    study: optuna.Study, *, trial_number: int | None = None, holdout: bool = True
) -> str:
    """The report as one HTML string (plotly.js inline)."""
    return render_inputs(collect(study, trial_number=trial_number, holdout=holdout))


def render_inputs(inp: ReportInputs) -> str:
    """The page of already collected inputs."""
    return render(inp)


def default_report_path(study_name: str) -> Path:
    """``reports/<study>.html`` (characters unsafe in file names replaced by ``_``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study_name) or "study"
    return DEFAULT_REPORT_DIR / f"{safe}.html"


def write_report(
    study: optuna.Study,
    out: Path | str | None = None,
    *,
    trial_number: int | None = None,
    holdout: bool = True,
) -> Path:
    """Write the report of ``study`` to ``out`` (default ``reports/<study>.html``); returns the
    path."""
    return write_inputs(collect(study, trial_number=trial_number, holdout=holdout), out)


def write_inputs(inp: ReportInputs, out: Path | str | None = None) -> Path:
    """Write the page of collected inputs to ``out`` (default ``reports/<study>.html``)."""
    study = inp.study
    path = Path(out) if out is not None else default_report_path(study.study_name)
    page = render_inputs(inp)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    logger.info(
        "report of study %s written to %s (%.1f MB)", study.study_name, path, len(page) / 1e6
    )
    return path
