"""The training benchmark returns well-formed ratio rows (the run itself is a slow test)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.training import bench_features, bench_training
from tests.conftest import assert_rows


def test_bench_features_are_real_and_causal() -> None:
    feats, labels = bench_features(rows=300)
    assert feats.shape == (300, 20) and feats.dtype == np.float32
    assert np.isfinite(feats).all()  # warm-up rows are dropped before the tail is taken
    assert np.isnan(labels[-1]) and np.isfinite(labels[:-1]).all()
    # The label at t is the next candle's log return, which is feature 0 (1-candle return) at t+1.
    np.testing.assert_allclose(labels[:-1], feats[1:, 0], rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_bench_training_rows() -> None:
    rows = bench_training("cpu", seconds=2)
    assert len(rows) == 2
    assert [r.goal for r in rows] == [
        ">= 1 on cpu",
        "> 1 (index slices on the device vs DataLoader + copy)",
    ]
    assert_rows(rows)
    for row in rows:
        assert row.value > 0 and row.reference > 0 and row.unit == "samples/s"


@pytest.mark.slow
def test_bench_ensemble_rows() -> None:
    from benchmarks.ensemble import bench_ensemble

    (only,) = bench_ensemble(k=2, rounds=1, rows=800)
    assert_rows([only])
    assert only.unit == "s per round" and only.goal == "<= 1.0"
