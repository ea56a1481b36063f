"""Trials/hour of the ``configs/gpu.yaml`` study run by the command line with 4 workers on one
GPU for 600 s (full mode only; information, no reference); unfinished trials count with the share
of their folds already reported. GPU utilisation read with ``nvidia-smi`` every 0.5 s.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd

from benchmarks import REPO_ROOT, Row, row
from benchmarks.workers import gpu_utilisation, run_cli_study
from optimize.config import load_config
from optimize.walkforward import make_folds
from strategy.timeframes import timeframe_to_timedelta


def bench_gpu_study(*, seconds: float = 600, workers: int = 4) -> list[Row]:
    """Trials/hour (info, no reference) of the configs/gpu.yaml study over ``seconds``, and the
    mean GPU utilisation in %."""
    config_path = REPO_ROOT / "configs" / "gpu.yaml"
    config = load_config(config_path)
    start, end = (pd.Timestamp(d, tz="UTC") for d in (config.data.start, config.data.end))
    step = timeframe_to_timedelta(config.data.timeframe)
    dates = pd.date_range(start, end, freq=step, inclusive="left")
    n_folds = len(make_folds(dates, config.walkforward, config.data.timeframe).folds)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-study-") as tmp:
        shutil.copy(config_path, Path(tmp) / "bench-config.yaml")
        shutil.copy(REPO_ROOT / "search_spaces" / "gpu.yaml", Path(tmp) / "bench-space.yaml")
        trials, util = run_cli_study(
            Path(tmp),
            workers,
            10_000,
            "--timeout",
            str(seconds),
            timeout_s=seconds + 60,
            sample=gpu_utilisation,
        )
        end = time.time()
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = sum(t.state in finished for t in trials)
    partial = sum(len(t.intermediate_values) / n_folds for t in trials if t.state not in finished)
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start is not None]
    rate = (done + partial) / ((end - min(starts)) / 3600) if starts else 0.0
    name = (
        f"trials/hour of the configs/gpu.yaml study, {workers} workers on one GPU "
        f"({n_folds} folds per trial, {done} finished in {seconds:.0f} s)"
    )
    rows = [row(name, rate, float("nan"), "trials/h")]
    if util:
        name = f"mean GPU utilisation during the configs/gpu.yaml study ({workers} workers)"
        rows.append(row(name, sum(util) / len(util), float("nan"), "% GPU"))
    return rows
