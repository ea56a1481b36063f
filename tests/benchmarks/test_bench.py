"""`make bench` pieces: the entry points run on tiny sizes and return well-formed rows; exact
arithmetic of rows and of the trials/hour window on hand-computed cases. No timing is asserted."""

from __future__ import annotations

import gc
import math
from types import SimpleNamespace

import pytest

from benchmarks import ROW_KEYS, make_row, report
from benchmarks import __main__ as bench_main
from benchmarks import study as bench_study
from benchmarks.study import (
    FIXED_LSTM,
    bench_study_files,
    bench_trial_overhead,
    gc_timer,
    seconds_within,
    timed_attribute,
)
from benchmarks.target import bench_target
from benchmarks.workers import bench_workers, steady_trials_per_hour
from optimize.config import load_config
from optimize.search.space import load_space
from tests.conftest import assert_rows

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


# --- exact arithmetic -------------------------------------------------------------------------


def test_make_row_ratio_and_significant_digits():
    row = make_row("x", 123456.789, 1234.5678, "candles/s", ">= 200x")
    assert tuple(row) == ROW_KEYS
    assert row["value"] == 123457.0  # integer digits are kept
    assert row["reference"] == 1235.0
    assert row["ratio"] == 100.0  # 123456.789 / 1234.5678 = 100.0000073
    small = make_row("y", 0.000123456, 0.5, "s", "info", digits=3)
    assert small["value"] == 0.000123 and small["ratio"] == 0.0002469
    assert math.isnan(make_row("z", 1.0, 0.0, "s", "info")["ratio"])
    assert math.isnan(make_row("z", 1.0, math.nan, "s", "info")["ratio"])


def test_steady_rate_one_worker_counts_gaps():
    # two 10 s trials with a 5 s gap: 2 trials in 25 s
    trials = [("a", 0.0, 10.0), ("a", 15.0, 25.0)]
    assert steady_trials_per_hour(trials) == pytest.approx(3600 * 2 / 25)


def test_steady_rate_counts_only_the_window_where_all_workers_are_busy():
    # worker a: [0, 10], [10, 20]; worker b starts late: [5, 15], [15, 25].
    # window [5, 20]: a's trials count 0.5 + 1, b's 1 + 0.5 -> 3 trials in 15 s.
    trials = [("a", 0.0, 10.0), ("a", 10.0, 20.0), ("b", 5.0, 15.0), ("b", 15.0, 25.0)]
    assert steady_trials_per_hour(trials) == pytest.approx(3600 * 3 / 15)
    # the order of the trials does not matter
    assert steady_trials_per_hour(trials[::-1]) == pytest.approx(3600 * 3 / 15)


def test_steady_rate_rejects_bad_input():
    with pytest.raises(ValueError, match="none"):
        steady_trials_per_hour([])
    with pytest.raises(ValueError, match="end after it starts"):
        steady_trials_per_hour([("a", 5.0, 5.0)])
    with pytest.raises(ValueError, match="never all busy"):
        steady_trials_per_hour([("a", 0.0, 10.0), ("b", 10.0, 20.0)])


def test_timed_attribute_times_calls_and_restores(monkeypatch):
    # a fake clock where timed_attribute reads it: each call's span is known exactly
    ticks = iter([1.0, 1.5, 4.0, 7.25, 8.0, 8.5])
    monkeypatch.setattr(bench_study, "time", SimpleNamespace(perf_counter=lambda: next(ticks)))

    class Owner:
        @staticmethod
        def work(x):
            if x is None:
                raise ValueError("no x")
            return 2 * x

    original = Owner.work
    with timed_attribute(Owner, "work") as spans:
        assert Owner.work(3) == 6
        assert Owner.work(4) == 8
        with pytest.raises(ValueError, match="no x"):
            Owner.work(None)  # a call that raises is timed too
    assert spans == [(1.0, 1.5), (4.0, 7.25), (8.0, 8.5)]
    assert Owner.work is original


def test_gc_timer_records_collections_and_detaches():
    before = len(gc.callbacks)
    with gc_timer() as spans:
        gc.collect()
        gc.collect()
    assert len(spans) >= 2 and all(b >= a for a, b in spans)
    assert len(gc.callbacks) == before


def test_seconds_within_counts_spans_starting_in_the_window_and_skips_nested_ones():
    spans = [(0.0, 1.0), (2.0, 2.5), (4.0, 7.0), (9.0, 9.5)]
    assert seconds_within(spans, 2.0, 9.0) == pytest.approx(0.5 + 3.0)
    # (2.0, 2.5) lies inside (1.5, 3.0): skipped; (4.0, 7.0) overlaps (6.0, 8.0) only partly: kept
    assert seconds_within(spans, 0.0, 10.0, outside=[(1.5, 3.0), (6.0, 8.0)]) == pytest.approx(
        1 + 3 + 0.5
    )
    assert seconds_within([], 0.0, 1.0) == 0


def test_bench_study_files_are_valid_and_fix_the_lstm(tmp_path):
    config_path, space_path = bench_study_files(tmp_path, overrides={"study": {"n_trials": 7}})
    config, space = load_config(config_path), load_space(space_path)
    assert config.study.pruner == "none" and config.study.n_trials == 7
    assert config.training.accelerator == "cpu"
    for key, value in FIXED_LSTM.items():
        assert space.constants[("lstm", key)] == value


# --- entry points on tiny sizes ---------------------------------------------------------------


def test_bench_target_rows(datadir):
    rows = bench_target(n_candles=600, n_weights=2, repeats=2, datadir=datadir)
    assert_rows(rows)
    assert "600 candles" in rows[0]["name"]
    assert rows[0]["goal"] != "info" and all(r["goal"] == "info" for r in rows[1:])
    with pytest.raises(ValueError, match="n_candles"):
        bench_target(n_candles=10)


def test_bench_trial_overhead_rows():
    rows = bench_trial_overhead(n_trials=1, warmup=0)
    assert_rows(rows)
    assert rows[0]["goal"] == "ratio < 0.05"
    whole = rows[0]["reference"]
    # the parts of the overhead share the whole trial as reference and add up to the overhead:
    # true by construction (the last part is the remainder), so this checks that the rows are
    # built from the same per-trial figures, not the measurement
    assert all(r["reference"] == whole for r in rows[1:4])
    assert sum(r["value"] for r in rows[1:4]) == pytest.approx(
        rows[0]["value"], rel=0.01, abs=0.005
    )
    assert 0 < rows[0]["ratio"] < 1
    with pytest.raises(ValueError, match="n_trials"):
        bench_trial_overhead(n_trials=0)


def test_bench_memory_rows():
    from benchmarks.memory import bench_memory

    rows = bench_memory(train_days=30, window=8)
    assert_rows(rows)
    assert [r["unit"] for r in rows] == ["MiB"] * 3
    assert rows[0]["goal"].startswith("ratio < 1")
    assert rows[0]["value"] == rows[1]["value"]  # same trial peak, two references
    with pytest.raises(ValueError, match="train_days"):
        bench_memory(train_days=5)


def test_bench_workers_validates_arguments():
    with pytest.raises(ValueError, match="worker counts"):
        bench_workers(workers=(1,))
    with pytest.raises(ValueError, match="trials_per_worker"):
        bench_workers(workers=(1, 2), trials_per_worker=2)


@pytest.mark.slow
def test_bench_workers_rows():
    rows = bench_workers(workers=(1, 2), trials_per_worker=3, one_thread_reference=True)
    assert_rows(rows)
    assert [r["unit"] for r in rows] == ["trials/h", "trials/h"]
    assert rows[0]["goal"].startswith("ratio >= 1.6")
    assert "1 torch thread" in rows[1]["name"] and rows[1]["goal"] == "info"
    assert rows[0]["reference"] == rows[1]["reference"]  # both against the 1-worker default run


@pytest.mark.slow
def test_bench_precision_runs_on_cpu():
    from benchmarks.gpu import bench_precision

    rows = bench_precision(seconds=0.1, device="cpu")
    assert_rows(rows)


def test_gpu_probes_answer_without_a_gpu():
    from benchmarks.gpu import cuda_available, device_name, gpu_utilisation

    assert isinstance(cuda_available(), bool)
    assert (device_name() == "none") != cuda_available()
    value = gpu_utilisation()
    assert value is None or 0 <= value <= 100


# --- the report and the command line ----------------------------------------------------------


def _figure(key, title, rows=(), **kw):
    return report.FigureResult(key, title, f"how {key} is measured", rows=list(rows), **kw)


def test_markdown_page_lists_machine_rows_unmet_goals_and_failures():
    ok = dict(make_row("fast thing", 10.0, 1.0, "x/s", ">= 2x"), met=True)
    slow = dict(make_row("slow | thing", 1.0, 2.0, "x/s", ">= 2x"), met=False)
    info = dict(make_row("info thing", 3.0, 1.0, "x/s", "info"), met=None)
    figures = [
        _figure("a", "1. first", [ok, slow, info], seconds=1.5),
        _figure("b", "2. second", error="RuntimeError: boom"),
        _figure("c", "3. third", skipped="one usable core"),
    ]
    machine = {
        "cpu": "CPU-X",
        "cores": "2 logical",
        "ram": "4.0 GiB",
        "os": "Linux",
        "device": "none",
        "python": "3.11",
        "packages": "torch 0",
    }
    run = {
        "command": "python -m benchmarks --quick",
        "revision": "abc123",
        "load": "0.1 / 0.2 / 0.3",
    }
    page = report.markdown(
        figures,
        machine,
        run,
        date="2026-01-01 00:00 UTC",
        mode="quick",
        seconds=12.0,
        load_end="0.4 / 0.5 / 0.6",
        notes=["no CUDA device: GPU rows skipped"],
    )
    for text in (
        "CPU-X",
        "2 logical",
        "4.0 GiB",
        "device: none",
        "abc123",
        "2026-01-01",
        "0.4 / 0.5 / 0.6",
        "no CUDA device: GPU rows skipped",
        "how a is measured",
    ):
        assert text in page
    table = [ln for ln in page.splitlines() if ln.startswith("| 1 |")]
    assert len(table) == 3
    assert "slow \\| thing" in table[1] and "**no**" in table[1]  # pipes in names are escaped
    assert "| yes |" in table[0] and "| info |" in table[2]
    unmet = page.split("## Goals not met", 1)[1]
    assert "slow \\| thing" not in unmet and "slow | thing" in unmet and "boom" in unmet
    assert "skipped: one usable core" in page
    missed, failed = report.shortfalls(figures)
    assert [(f.key, r["name"]) for f, r in missed] == [("a", "slow | thing")]
    assert [f.key for f in failed] == ["b"]


def test_main_runs_selected_figures_and_writes_the_page(tmp_path, capsys):
    out = tmp_path / "bench.md"
    code = bench_main.main(["--quick", "--only", "target,pbo", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    page = out.read_text()
    assert "T(w) for new weights" in page and "PBO" in page
    assert "## Figures" in page and "device:" in page
    assert "backtest() vs freqtrade" not in page  # not selected
    from benchmarks.gpu import cuda_available

    if not cuda_available():
        assert bench_main.NO_CUDA in printed and bench_main.NO_CUDA in page
    else:
        assert bench_main.NO_CUDA not in printed and bench_main.NO_CUDA not in page


def test_main_rejects_unknown_figures(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_main.main(["--only", "nonsense", "--out", ""])
    assert exc.value.code == 2
    assert "nonsense" in capsys.readouterr().err


def test_judges_leave_info_rows_unjudged_and_apply_the_goals():
    figures = {f.key: f for f in bench_main.FIGURES}
    info = make_row("i", 1.0, 1.0, "x", "info")
    for fig in figures.values():
        assert fig.judge(info) is None
    assert figures["backtest"].judge(make_row("b", 300.0, 1.0, "c/s", ">= 200x")) is True
    assert figures["backtest"].judge(make_row("b", 150.0, 1.0, "c/s", ">= 200x")) is False
    assert figures["overhead"].judge(make_row("o", 0.04, 1.0, "s", "ratio < 0.05")) is True
    assert figures["overhead"].judge(make_row("o", 0.06, 1.0, "s", "ratio < 0.05")) is False
    assert figures["target"].judge(make_row("t", 2000.0, 10.0, "w/s", "< 1 ms")) is True
    assert figures["target"].judge(make_row("t", 500.0, 10.0, "w/s", "< 1 ms")) is False
    fit = make_row("lstm.fit_predict train samples/s", 0.95, 1.0, "samples/s", ">= 1 on cpu")
    assert figures["training"].judge(fit) is False
    fit = make_row("lstm.fit_predict train samples/s", 1.0, 1.0, "samples/s", ">= 1 on cpu")
    assert figures["training"].judge(fit) is True
    # figures whose rows are all information are never judged, whatever a row's goal says
    for key in ("pbo", "gpu-precision", "gpu-workers", "gpu-study"):
        assert figures[key].judge(make_row("g", 0.5, 1.0, "x", ">= 1")) is None
    assert (
        figures["gpu-training"].judge(make_row("lstm.fit_predict x", 2.5, 1.0, "s/s", ">= 2"))
        is True
    )
