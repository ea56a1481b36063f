"""The plotly figures of the study report (:mod:`optimize.analysis.html` places them).

Each figure is built from stored records or the study alone and drawn by :func:`figure_div` as a
``<div>`` whose plotly.js comes once from the page head. Colours and labels of the three curves
(model, no-model baseline, buy-and-hold) are shared by every figure.
"""

from __future__ import annotations

from typing import Any

import optuna
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

COLORS = {"model": "#1f77b4", "no_model": "#ff7f0e", "buy_and_hold": "#2ca02c"}
LABELS = {
    "model": "model",
    "no_model": "no-model (thresholds on T)",
    "buy_and_hold": "buy-and-hold",
}
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def figure_div(fig: go.Figure, name: str) -> str:
    """The figure as a div (plotly.js comes once from the page head)."""
    return fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=f"fig-{name}", config=PLOT_CONFIG
    )


def study_target(study: optuna.Study) -> dict[str, Any]:
    """Keyword arguments of optuna's plots: a multi-objective study is plotted by its first
    objective (none for a single objective)."""
    if len(study.directions) == 1:
        return {}
    return {"target": lambda t: t.values[0], "target_name": "objective 1"}


def history_figure(study: optuna.Study) -> go.Figure:
    """optuna's optimization history of ``study`` (first objective when several)."""
    return optuna.visualization.plot_optimization_history(study, **study_target(study))


def parallel_figure(study: optuna.Study) -> go.Figure:
    """optuna's parallel coordinates of ``study`` (first objective when several)."""
    return optuna.visualization.plot_parallel_coordinate(study, **study_target(study))


def importance_figure(importances: dict[str, float]) -> go.Figure:
    """Horizontal bars of fANOVA importances (``parameter -> share``), the largest on top."""
    names = list(importances)[::-1]
    fig = go.Figure(
        go.Bar(
            x=[importances[k] for k in names],
            y=names,
            orientation="h",
            marker_color=COLORS["model"],
        )
    )
    fig.update_layout(
        title="fANOVA importance (share of the objective's variance)",
        height=120 + 22 * len(names),
        margin={"l": 140},
        xaxis_title="importance",
    )
    return fig


def pbo_figure(logits: list[float]) -> go.Figure:
    """Histogram of the CSCV logits of the in-sample winner's out-of-sample rank, with the
    overfitting line at 0 (``<= 0``: the winner ranks in the lower half out of sample)."""
    fig = go.Figure(go.Histogram(x=logits, nbinsx=30, marker_color=COLORS["model"]))
    fig.add_vline(x=0.0, line_dash="dash", line_color="#a00")
    fig.update_layout(
        title="CSCV logits of the in-sample winner's out-of-sample rank (<= 0: overfit)",
        xaxis_title="logit",
        yaxis_title="combinations",
        height=320,
    )
    return fig


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


__all__ = [
    "COLORS",
    "LABELS",
    "equity_figure",
    "figure_div",
    "history_figure",
    "importance_figure",
    "parallel_figure",
    "pbo_figure",
    "study_target",
]
