"""GPU benchmarks, run only when a CUDA device is present.

* :func:`bench_precision`: ``fit_predict`` training throughput with bf16 autocast vs float32, same
  model, same real features (:func:`benchmarks.training.bench_features`), rounds alternating.
* :func:`bench_gpu_workers`: trials/hour and GPU utilisation with 1, 2 and 4 worker processes
  sharing one GPU on the tiny benchmark study (:func:`benchmarks.workers.bench_workers`).
* :func:`bench_gpu_study`: trials/hour of the full ``configs/gpu.yaml`` study
  (``search_spaces/gpu.yaml``) with several workers for a fixed time; trials still running at
  the end count with the share of their folds already reported.

GPU utilisation is read with ``nvidia-smi`` (the ``utilization.gpu`` query, in %) every half
second; without ``nvidia-smi`` the utilisation rows are left out.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd

from benchmarks import make_row
from benchmarks.workers import bench_workers, run_cli_study
from optimize.data import REPO_ROOT

log = logging.getLogger(__name__)

GPU_CONFIG = REPO_ROOT / "configs" / "gpu.yaml"
GPU_SPACE = REPO_ROOT / "search_spaces" / "gpu.yaml"


def cuda_available() -> bool:
    """True when torch sees a CUDA device."""
    import torch

    return bool(torch.cuda.is_available())


def device_name() -> str:
    """The first CUDA device's name, or ``"none"``."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"


def gpu_utilisation(index: int = 0) -> float | None:
    """Current utilisation of GPU ``index`` in % from ``nvidia-smi``; None when unavailable."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", str(index)],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
        return float(out.strip().splitlines()[0])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


def bench_precision(*, seconds: float = 10, device: str = "cuda") -> list[dict]:
    """Training samples/s of ``fit_predict`` with ``precision="bf16"`` vs ``"32"``.

    On a CPU both sides train in float32 (bf16 is used only on CUDA), so the ratio is ~1 there.

    Raises:
        ValueError: ``seconds`` is not positive.
    """
    import dataclasses

    from benchmarks.training import BENCH_PARAMS, bench_features
    from lstm.train import fit_predict

    if not seconds > 0:
        raise ValueError(f"bench_precision needs seconds > 0, but got {seconds=}.")
    features, labels = bench_features()
    n_train = int(features.shape[0] * 0.75)
    params = {p: dataclasses.replace(BENCH_PARAMS, precision=p) for p in ("bf16", "32")}

    def round_(p: str) -> int:
        res = fit_predict(
            features,
            labels,
            train=slice(0, n_train),
            predict=slice(n_train, features.shape[0]),
            params=params[p],
            seed=0,
            accelerator=device,
        )
        return res.n_fit_samples * len(res.history)

    for p in params:  # warm-up
        round_(p)
    counts, spent = {p: 0 for p in params}, {p: 0.0 for p in params}
    deadline = time.perf_counter() + seconds
    while min(counts.values()) == 0 or time.perf_counter() < deadline:
        for p in params:
            t0 = time.perf_counter()
            counts[p] += round_(p)
            spent[p] += time.perf_counter() - t0
    bp = BENCH_PARAMS
    return [
        make_row(
            f"fit_predict train samples/s, bf16 vs fp32 ({device}, W={bp.window_size}, "
            f"H={bp.hidden_dim}x{bp.num_lstm_layers}, batch {bp.batch_size})",
            counts["bf16"] / spent["bf16"],
            counts["32"] / spent["32"],
            "samples/s",
            "info",
        )
    ]


def bench_gpu_workers(
    *, trials_per_worker: int = 4, workers: tuple[int, ...] = (1, 2, 4)
) -> list[dict]:
    """Trials/hour and GPU utilisation with 1, 2 and 4 workers sharing the GPU (tiny study)."""
    rows = bench_workers(
        workers=workers,
        trials_per_worker=trials_per_worker,
        accelerator="cuda",
        sample=gpu_utilisation,
        sample_unit="% GPU",
    )
    for row in rows:
        row["goal"] = "info"
    return rows


def _n_folds(config_path: Path) -> int:
    from optimize.config import load_config
    from optimize.walkforward import make_folds
    from strategy.timeframes import timeframe_to_timedelta

    config = load_config(config_path)
    step = timeframe_to_timedelta(config.data.timeframe)
    dates = pd.date_range(
        pd.Timestamp(config.data.start, tz="UTC"),
        pd.Timestamp(config.data.end, tz="UTC"),
        freq=step,
        inclusive="left",
    )
    return len(make_folds(dates, config.walkforward, config.data.timeframe).folds)


def bench_gpu_study(
    *, seconds: float = 600, workers: int = 4, config: Path = GPU_CONFIG, space: Path = GPU_SPACE
) -> list[dict]:
    """Trials/hour of the full GPU study run for ``seconds`` with ``workers`` processes.

    The study is stopped after ``seconds`` (workers start no trial after that and the run is
    interrupted a minute later); trials/hour = (finished trials + reported folds of unfinished
    trials / folds per trial) / hours from the first trial's start to the end of the run.

    Raises:
        FileNotFoundError: the config or space file is missing.
    """
    for path in (config, space):
        if not Path(path).is_file():
            raise FileNotFoundError(f"bench_gpu_study needs {path}, which does not exist.")
    n_folds = _n_folds(Path(config))
    with tempfile.TemporaryDirectory(prefix="bench-gpu-study-") as tmp:
        trials, util = run_cli_study(
            Path(tmp),
            Path(config),
            Path(space),
            workers=workers,
            n_trials=10_000,
            name="gpu",
            timeout_s=seconds + 60,
            extra_args=["--timeout", str(seconds)],
            sample=gpu_utilisation,
        )
        end_wall = time.time()
    states = optuna.trial.TrialState
    done = sum(1 for t in trials if t.state in (states.COMPLETE, states.PRUNED))
    partial = sum(
        len(t.intermediate_values) / n_folds
        for t in trials
        if t.state not in (states.COMPLETE, states.PRUNED)
    )
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start is not None]
    hours = (end_wall - min(starts)) / 3600 if starts else float("nan")
    rate = (done + partial) / hours if starts else 0.0
    log.info(
        "bench_gpu_study: %d finished, %.2f fold-equivalent unfinished, %.2f h",
        done,
        partial,
        hours,
    )
    rows = [
        make_row(
            f"trials/hour of the configs/gpu.yaml study, {workers} workers on one GPU "
            f"({n_folds} folds per trial, {done} finished in {seconds:.0f} s)",
            rate,
            float("nan"),
            "trials/h",
            "info",
        )
    ]
    if util:
        rows.append(
            make_row(
                f"mean GPU utilisation during the configs/gpu.yaml study ({workers} workers)",
                sum(util) / len(util),
                float("nan"),
                "% GPU",
                "info",
            )
        )
    return rows
