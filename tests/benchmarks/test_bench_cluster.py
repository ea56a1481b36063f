"""The cluster benchmark: its scheduler timing on a real LocalCluster, and its rows."""

from __future__ import annotations

import pytest

from benchmarks.cluster import bench_cluster, submit_to_start_ms
from tests.conftest import assert_rows


def test_submit_to_start_is_timed_on_the_workers(tmp_path):
    from optimize.study.cluster import connect

    with connect("local", workers=1, storage=f"sqlite:///{tmp_path / 's.db'}") as cluster:
        times = submit_to_start_ms(cluster.client, n=5)
    assert len(times) == 5
    assert all(0 <= t < 10_000 for t in times)  # ms: same clock on both sides


@pytest.mark.slow  # 1 to 2.5 minutes on 2 loaded cores (two CLI runs and a LocalCluster)
def test_bench_cluster_rows():
    rows = bench_cluster(trials_per_worker=3, rounds=1)
    assert_rows(rows)
    assert [r.unit for r in rows[:3]] == ["trials/h", "ms", "ms"]
    assert rows[0].goal == "ratio >= 0.95" and rows[0].met is not None
    assert rows[1].reference == rows[2].reference  # both against the same mean trial
    assert rows[2].value < rows[1].value  # one task serves several trials
