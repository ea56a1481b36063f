"""GPU benchmarks, run only when torch sees a CUDA device.

* :func:`bench_precision`: ``fit_predict`` training throughput with bf16 autocast vs float32,
  same model and features as :mod:`benchmarks.training`, rounds alternating.
* G1 and G5 are figures 4 and 8 on the first CUDA device (the training reference copies each
  batch host-to-device; ensemble members train one after another on the shared tensors).
* G3: :func:`benchmarks.workers.bench_workers` with ``training.accelerator: cuda`` and 1, 2 and 4
  worker processes sharing one GPU, with the GPU's utilisation.
* :func:`bench_gpu_study`: trials/hour of the ``configs/gpu.yaml`` study for a fixed time;
  unfinished trials count with the share of their folds already reported.

GPU utilisation is read with ``nvidia-smi`` every half second (left out without it).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import optuna

from benchmarks import Row, alternate, row
from benchmarks.training import BENCH_PARAMS, bench_features, fit_samples
from benchmarks.workers import run_cli_study
from optimize.data import REPO_ROOT

GPU_CONFIG = REPO_ROOT / "configs" / "gpu.yaml"
GPU_SPACE = REPO_ROOT / "search_spaces" / "gpu.yaml"


def gpu_utilisation(index: int = 0) -> float | None:
    """Current utilisation of GPU ``index`` in % from ``nvidia-smi``; None when unavailable."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    query = [exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", str(index)]
    try:
        out = subprocess.run(query, capture_output=True, text=True, timeout=5, check=True).stdout
        return float(out.strip().splitlines()[0])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


def bench_precision(*, seconds: float = 10, device: str = "cuda") -> list[Row]:
    """Training samples/s of ``fit_predict`` with ``precision="bf16"`` vs ``"32"`` (info).

    On a CPU both sides train in float32 (bf16 is used only on CUDA), so the ratio is ~1 there.
    """
    features, labels = bench_features()
    bf16, fp32 = (dataclasses.replace(BENCH_PARAMS, precision=p) for p in ("bf16", "32"))
    ours, reference = alternate(
        [
            lambda: fit_samples(features, labels, bf16, device),
            lambda: fit_samples(features, labels, fp32, device),
        ],
        seconds=seconds,
        cuda=device != "cpu",
    )
    p = BENCH_PARAMS
    return [
        row(
            f"fit_predict train samples/s, bf16 vs fp32 ({device}, W={p.window_size}, "
            f"H={p.hidden_dim}x{p.num_lstm_layers}, batch {p.batch_size})",
            ours,
            reference,
            "samples/s",
        )
    ]


def bench_gpu_study(*, seconds: float = 600, workers: int = 4) -> list[Row]:
    """Trials/hour of the ``configs/gpu.yaml`` study run for ``seconds`` with ``workers``.

    Trials/hour = (finished trials + reported folds of unfinished trials / folds per trial) /
    hours from the first trial's start to the end of the run. Information only: no reference.
    """
    import pandas as pd

    from optimize.config import load_config
    from optimize.walkforward import make_folds
    from strategy.timeframes import timeframe_to_timedelta

    config = load_config(GPU_CONFIG)
    start, end = (pd.Timestamp(d, tz="UTC") for d in (config.data.start, config.data.end))
    step = timeframe_to_timedelta(config.data.timeframe)
    dates = pd.date_range(start, end, freq=step, inclusive="left")
    n_folds = len(make_folds(dates, config.walkforward, config.data.timeframe).folds)
    with tempfile.TemporaryDirectory(prefix="bench-gpu-study-") as tmp:
        trials, util = run_cli_study(
            Path(tmp),
            GPU_CONFIG,
            GPU_SPACE,
            workers=workers,
            n_trials=10_000,
            name="gpu",
            timeout_s=seconds + 60,
            extra_args=["--timeout", str(seconds)],
            sample=gpu_utilisation,
        )
        end = time.time()
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = sum(t.state in finished for t in trials)
    partial = sum(len(t.intermediate_values) / n_folds for t in trials if t.state not in finished)
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start is not None]
    rate = (done + partial) / ((end - min(starts)) / 3600) if starts else 0.0
    rows = [
        row(
            f"trials/hour of the configs/gpu.yaml study, {workers} workers on one GPU "
            f"({n_folds} folds per trial, {done} finished in {seconds:.0f} s)",
            rate,
            float("nan"),
            "trials/h",
        )
    ]
    if util:
        name = f"mean GPU utilisation during the configs/gpu.yaml study ({workers} workers)"
        rows.append(row(name, sum(util) / len(util), float("nan"), "% GPU"))
    return rows
