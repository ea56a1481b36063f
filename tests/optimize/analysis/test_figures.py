"""The report's plotly figures: equity curves with drawdown, importances, CSCV logits."""

from __future__ import annotations

import pytest

from optimize.analysis.figures import equity_figure, importance_figure, pbo_figure


def test_equity_figure_places_end_of_day_values_and_drawdown():
    fig = equity_figure({"start": "2025-01-01", "model": [1.1, 0.99, 1.21]}, "t")
    equity, drawdown = fig.data
    assert list(equity.y) == [1.0, 1.1, 0.99, 1.21]
    assert [str(x)[:10] for x in equity.x] == [
        "2025-01-01",
        "2025-01-02",
        "2025-01-03",
        "2025-01-04",
    ]
    assert list(drawdown.y) == pytest.approx([0.0, 0.0, 0.99 / 1.1 - 1, 0.0])


def test_equity_figure_skips_missing_curves():
    fig = equity_figure({"start": "2025-01-01", "model": [1.0], "no_model": []}, "t")
    assert [trace.name for trace in fig.data] == ["model", "model"]


def test_importance_figure_puts_the_largest_on_top():
    fig = importance_figure({"lr": 0.7, "dropout": 0.3})
    (bars,) = fig.data
    assert list(bars.y) == ["dropout", "lr"]  # plotly draws the last bar on top
    assert list(bars.x) == [0.3, 0.7]


def test_pbo_figure_marks_the_overfitting_line():
    fig = pbo_figure([-0.5, 0.2, 1.0])
    assert list(fig.data[0].x) == [-0.5, 0.2, 1.0]
    assert [shape.x0 for shape in fig.layout.shapes] == [0.0]
