"""The PBO benchmark's two paths (vectorised CSCV, per-combination reference) agree."""

from __future__ import annotations

import math

from benchmarks.pbo import benchmark_pbo


def test_benchmark_pbo_paths_agree() -> None:
    out = benchmark_pbo(n_obs=240, n_trials=10, n_splits=8, repeat=1)
    assert out["n_combinations"] == math.comb(8, 4)
    assert out["max_abs_logit_diff"] < 1e-9
    assert out["vectorised_s"] > 0 and out["reference_s"] > 0
