"""The futures backtest benchmark runs end to end and reports well-formed rows (no timing
asserted)."""

from __future__ import annotations

import pytest

from benchmarks.futures import bench_futures
from tests.conftest import assert_rows

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


def test_bench_futures_rows():
    rows = bench_futures(repeats=2, rounds=1)
    assert [r.goal for r in rows] == [">= 200x", "info"]
    assert_rows(rows)
    for row in rows:
        assert row.unit == "candles/s"
        assert row.value > 0 and row.reference > 0
