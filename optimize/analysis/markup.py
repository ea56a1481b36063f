"""HTML building blocks of the study report: escaping, metric cells, tables, notes, the style.

Cells are formatted by metric (:func:`fmt`: percentages for ratios of money and time), tables
take already-escaped cells, and :data:`PAGE_CSS` is the page's whole style sheet.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

PERCENT_KEYS = {
    "profit_total",
    "max_drawdown_account",
    "max_drawdown_equity",
    "winrate",
    "exposure",
    "cagr",
    "di_blocked",
}
"""Metrics shown as percentages."""

PAGE_CSS = """
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


def esc(value: Any) -> str:
    """``value`` as escaped HTML text."""
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
    return esc(value)


def table(headers: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    """An HTML table (no header row when ``headers`` is None); cells are already-escaped strings."""
    head = (
        ""
        if headers is None
        else "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>"
    )
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


def note(text: str, cls: str = "note") -> str:
    """A paragraph of escaped ``text`` in CSS class ``cls`` (``note`` or ``warn``)."""
    return f'<p class="{cls}">{esc(text)}</p>'


def num(x: float | None, spec: str = ".4f") -> str:
    """``x`` formatted with ``spec`` (an en dash for None)."""
    return "–" if x is None else format(x, spec)


__all__ = ["PAGE_CSS", "PERCENT_KEYS", "esc", "fmt", "note", "num", "table"]
