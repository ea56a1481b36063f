"""The PBO benchmark's two paths (vectorised CSCV, per-combination reference) agree."""

from __future__ import annotations

import math

from benchmarks.pbo import bench_pbo
from tests.conftest import assert_rows


def test_bench_pbo_paths_agree() -> None:
    (only,) = bench_pbo(n_obs=240, n_trials=10, n_splits=8, repeat=1)
    assert_rows([only])
    assert f"{math.comb(8, 4)} combinations" in only.name
    assert only.value > 0 and only.reference > 0 and only.goal == "info"
