"""The backtest benchmark runs end to end and reports well-formed rows (no timing asserted)."""

from __future__ import annotations

import math

import pytest

from optimize.bench.backtest import bench_backtest

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


def test_bench_backtest_rows(datadir):
    rows = bench_backtest(repeats=2, rounds=1, datadir=datadir)
    assert [r["goal"] for r in rows] == [">= 200x", "info"]
    for row in rows:
        assert set(row) == {"name", "value", "reference", "ratio", "unit", "goal"}
        assert row["unit"] == "candles/s"
        assert row["value"] > 0 and row["reference"] > 0
        assert math.isclose(row["ratio"], row["value"] / row["reference"], rel_tol=0.01)
    with pytest.raises(ValueError, match="repeats"):
        bench_backtest(repeats=0)
