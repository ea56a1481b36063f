"""Shared fixtures: the embedded real candles (never synthetic prices)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EMBEDDED_DATADIR = REPO_ROOT / "data"


@pytest.fixture(scope="session")
def datadir() -> Path:
    """The embedded freqtrade-layout data directory (``data/binance/*.feather``)."""
    return EMBEDDED_DATADIR


def assert_rows(rows: list[dict]) -> None:
    """Benchmark rows are well formed: the keys of ``optimize.bench.ROW_KEYS`` in order, a name,
    unit and goal, a value >= 0 and ``ratio`` = value / reference (up to rounding)."""
    import math

    from optimize.bench import ROW_KEYS

    assert rows
    for row in rows:
        assert tuple(row) == ROW_KEYS, row
        assert isinstance(row["name"], str) and row["name"]
        assert row["unit"] and row["goal"]
        assert row["value"] >= 0
        if row["reference"] > 0:
            assert math.isclose(row["ratio"], row["value"] / row["reference"], rel_tol=2e-3)
