"""Synthetic candles and signals of the engine's hand-computed cases (exact arithmetic only)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def candles(
    rows: list[tuple[float, float, float, float]], start: str = "2024-01-01"
) -> pd.DataFrame:
    """Hourly candles from (open, high, low, close) tuples, volume 1."""
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close"])
    frame.insert(0, "date", pd.date_range(start, periods=len(rows), freq="1h", tz="UTC"))
    frame["volume"] = 1.0
    return frame


def sig(n: int, *idx: int) -> np.ndarray:
    """(n,) bool signals, True at ``idx``."""
    out = np.zeros(n, dtype=bool)
    out[list(idx)] = True
    return out
