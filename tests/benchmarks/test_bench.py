"""`make bench` pieces: rows and their verdicts, the trials/hour window, the trial-overhead
figure read through the fit timing hook, the page and the command line. No timing is asserted."""

from __future__ import annotations

import importlib
import math

import pytest

import lstm.train
import optimize.evaluation.walk
import strategy.pipeline
from benchmarks import FIXED_LSTM, Row, alternate, row, study_files
from benchmarks import __main__ as bench_main
from benchmarks.overhead import trial_overhead
from benchmarks.target import bench_target
from benchmarks.workers import bench_workers, gpu_utilisation, steady_trials_per_hour
from optimize.config import load_config
from optimize.search.space import load_space
from tests.conftest import assert_rows

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


# --- exact arithmetic -------------------------------------------------------------------------


def test_row_ratio_and_verdicts():
    assert row("x", 300.0, 1.5, "c/s", ">= 200x", at_least=200) == Row(
        "x", 300.0, 1.5, "c/s", ">= 200x", True
    )
    assert row("x", 299.0, 1.5, "c/s", ">= 200x", at_least=200).met is False
    assert row("x", 200.0, 1.0, "c/s", ">= 200x", at_least=200).met is True  # bound included
    assert row("o", 0.04, 1.0, "s", "ratio < 0.05", below=0.05).met is True
    assert row("o", 0.05, 1.0, "s", "ratio < 0.05", below=0.05).met is False  # bound excluded
    info = row("i", 3.0, 2.0, "MiB")
    assert (info.goal, info.met, info.ratio) == ("info", None, 1.5)
    assert math.isnan(row("z", 1.0, 0.0, "s").ratio)
    assert math.isnan(row("z", 1.0, math.nan, "s").ratio)
    assert row("z", 1.0, math.nan, "s", "< 1", below=1.0).met is False  # no reference: not met


def test_alternate_warms_up_then_alternates_for_the_rounds():
    calls = []
    rates = alternate(
        [lambda: calls.append("a") or 10.0, lambda: calls.append("b") or 20.0], rounds=3
    )
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds
    assert len(rates) == 2 and all(r > 0 for r in rates)


def test_steady_rate_one_worker_counts_gaps():
    # two 10 s trials with a 5 s gap: 2 trials in 25 s
    trials = [("a", 0.0, 10.0), ("a", 15.0, 25.0)]
    assert steady_trials_per_hour(trials) == pytest.approx(3600 * 2 / 25)


def test_steady_rate_counts_only_the_window_where_all_workers_are_busy():
    # worker a: [0, 10], [10, 20]; worker b starts late: [5, 15], [15, 25].
    # window [5, 20]: a's trials count 0.5 + 1, b's 1 + 0.5 -> 3 trials in 15 s.
    trials = [("a", 0.0, 10.0), ("a", 10.0, 20.0), ("b", 5.0, 15.0), ("b", 15.0, 25.0)]
    assert steady_trials_per_hour(trials) == pytest.approx(3600 * 3 / 15)
    assert steady_trials_per_hour(trials[::-1]) == pytest.approx(3600 * 3 / 15)
    with pytest.raises(ValueError, match="never all busy"):
        steady_trials_per_hour([("a", 0.0, 10.0), ("b", 10.0, 20.0)])


def test_study_files_are_valid_and_fix_the_lstm(tmp_path):
    config_path, space_path = study_files(tmp_path, overrides={"study": {"n_trials": 7}})
    config, space = load_config(config_path), load_space(space_path)
    assert config.study.pruner == "none" and config.study.n_trials == 7
    assert config.training.accelerator == "cpu"
    for key, value in FIXED_LSTM.items():
        assert space.constants[("lstm", key)] == value


# --- entry points on tiny sizes ---------------------------------------------------------------


def test_bench_target_rows():
    rows = bench_target(n_candles=600, n_weights=2, repeats=2)
    assert_rows(rows)
    assert "600 candles" in rows[0].name
    assert rows[0].met is not None and all(r.goal == "info" for r in rows[1:])


def test_trial_overhead_reads_the_fit_timings_and_patches_nothing():
    fit_ensemble, fit_window = lstm.train.fit_ensemble, strategy.pipeline.fit_window
    rows = trial_overhead(1, warmup=0)
    assert lstm.train.fit_ensemble is fit_ensemble
    assert optimize.evaluation.walk.fit_window is strategy.pipeline.fit_window is fit_window
    assert lstm.train._TIMING_SINKS == []  # the recorder is closed again
    assert_rows(rows)
    outside, in_evaluate, rest, trainer = rows
    assert outside.goal == "ratio < 0.05" and outside.met is not None
    # the parts share the whole trial as reference and add up to the time outside training
    assert in_evaluate.reference == rest.reference == outside.reference
    assert in_evaluate.value + rest.value == pytest.approx(outside.value)
    assert 0 < outside.ratio < 1  # a trial that trained: some of it was training
    assert 0 < trainer.ratio < 1  # Trainer.fit is part of, not all of, each fit
    assert not any(r.met is not None for r in trial_overhead(1, judged=False))


def test_bench_memory_rows():
    from benchmarks.memory import bench_memory

    rows = bench_memory(train_days=30, window=8)
    assert_rows(rows)
    assert [r.unit for r in rows] == ["MiB"] * 3
    assert rows[0].goal.startswith("ratio < 1")
    assert rows[0].value == rows[1].value  # same trial peak, two references


@pytest.mark.slow
def test_bench_workers_rows():
    rows = bench_workers(trials_per_worker=3)
    assert_rows(rows)
    assert [r.unit for r in rows] == ["trials/h", "trials/h"]
    assert rows[0].goal.startswith("ratio >= 1.6")
    assert "1 torch thread" in rows[1].name and rows[1].goal == "info"
    assert rows[0].reference == rows[1].reference  # both against the 1-worker default run


@pytest.mark.slow
def test_bench_precision_runs_on_cpu():
    from benchmarks.precision import bench_precision

    assert_rows(bench_precision(seconds=0.1, device="cpu"))


def test_gpu_utilisation_answers_without_a_gpu():
    value = gpu_utilisation()
    assert value is None or 0 <= value <= 100


# --- the page and the command line ------------------------------------------------------------


def test_markdown_page_lists_the_run_rows_unmet_goals_failures_and_methods():
    ok = row("fast thing", 10.0, 1.0, "x/s", ">= 2x", at_least=2)
    slow = row("slow | thing", 1.0, 2.0, "x/s", ">= 2x", at_least=2)
    info = row("info thing", 3.0, 1.0, "x/s")
    results = [
        {"key": "backtest", "rows": [ok, slow, info], "error": None, "seconds": 1.5},
        {"key": "target", "rows": [], "error": "failed: RuntimeError: boom", "seconds": 0},
        {"key": "workers", "rows": [], "error": "skipped: one usable core", "seconds": 0},
    ]
    page = bench_main.markdown(results, {"machine": "CPU-X", "code": "abc123"}, ["no CUDA"])
    for text in ("- machine: CPU-X", "- code: abc123", "- no CUDA", "skipped: one usable core"):
        assert text in page
    assert "| # | figure | ours | reference | unit | ratio | goal | met |" in page
    table = [ln for ln in page.splitlines() if ln.startswith("| 1 |")]
    assert len(table) == 3
    assert "slow \\| thing" in table[1] and "**no**" in table[1]  # pipes in names are escaped
    assert "| yes |" in table[0] and "| info |" in table[2]
    unmet = page.split("## Goals not met", 1)[1].split("##", 1)[0]
    assert "slow | thing" in unmet and "boom" in unmet
    assert "fast thing" not in unmet and "usable core" not in unmet  # a skip is not a miss
    # how each figure is measured: the measuring module's docstring, markup reduced
    method = page.split("**1. backtest engine vs freqtrade's Backtesting** (2 s). ", 1)[1]
    assert method.startswith("One year (2024) of real BTC/USDT 1h") and "``" not in method


def test_every_section_has_a_title_a_bench_function_and_a_method():
    assert bench_main.TITLES.keys() == bench_main.SECTIONS.keys()
    for key, (module_name, _, _) in bench_main.SECTIONS.items():
        module = importlib.import_module(f"benchmarks.{module_name}")
        assert callable(getattr(module, f"bench_{module_name}")), key
        assert len(module.__doc__) > 100, key


def test_main_runs_selected_sections_and_writes_the_page(tmp_path, capsys):
    out = tmp_path / "bench.md"
    assert bench_main.main(["--quick", "--only", "target,pbo", "--out", str(out)]) == 0
    printed, page = capsys.readouterr().out, out.read_text()
    assert "T(w) for new weights" in page and "PBO" in page and "device:" in page
    assert "backtest() vs freqtrade" not in page  # not selected
    import torch

    assert (
        (bench_main.NO_CUDA in printed) == (bench_main.NO_CUDA in page) != torch.cuda.is_available()
    )


def test_the_selection_section_runs_only_when_named(tmp_path):
    assert "selection" in bench_main.NAMED_ONLY
    assert "selection" not in bench_main.chosen_sections(None)
    assert set(bench_main.chosen_sections(None)) | set(bench_main.NAMED_ONLY) == set(
        bench_main.SECTIONS
    )
    assert bench_main.chosen_sections("selection,pbo") == ["selection", "pbo"]
    out = tmp_path / "bench.md"
    assert bench_main.main(["--quick", "--only", "pbo", "--out", str(out)]) == 0
    assert "run only when named (`--only selection`)" in out.read_text()


def test_main_rejects_unknown_sections(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_main.main(["--only", "nonsense", "--out", ""])
    assert exc.value.code == 2
    assert "nonsense" in capsys.readouterr().err
