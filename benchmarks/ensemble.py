"""Benchmark: an ensemble of K members trained by ``fit_ensemble`` vs K separate ``fit_predict``
calls.

Both sides train the same K models (same seeds, same data; the run stops if any member's
predictions differ): ours shares the scaler, the windows and the device tensors between the
members; the reference runs the K single fits one after another, each preparing everything
again. Rounds alternate so background load hits both sides alike; the figure is the ratio of the
median round times (ours / reference; < 1 means the shared ensemble is cheaper).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks import make_row
from benchmarks.training import bench_features
from lstm.params import LSTMParams
from lstm.train import fit_ensemble, fit_predict

ENSEMBLE_PARAMS = LSTMParams(
    num_lstm_layers=2,
    hidden_dim=32,
    dropout_percent=0.2,
    window_size=12,
    learning_rate=3e-3,
    batch_size=256,
    epochs=4,
    early_stopping_patience=4,
)
"""The default space's middle-sized model (configs/default.yaml's folds train ~2,000 rows)."""
GOAL = {"cpu": 1.0, "cuda": 0.35}
"""Issue 12: K = 4 members together cost at most this share of 4 single fits."""


def bench_ensemble(
    device: str = "cpu", *, k: int = 4, rounds: int = 3, rows: int = 2880
) -> list[dict]:
    """Time ``fit_ensemble`` with ``k`` seeds against ``k`` ``fit_predict`` calls.

    Args:
        device: "cpu" or "cuda".
        k: members.
        rounds: timed rounds per side (after one untimed warm-up round of each).
        rows: candles of real BTC/USDT 1h features; the first 75 % train, the rest is predicted.

    Raises:
        RuntimeError: a member of the ensemble differs from the single fit with its seed.
    """
    features, labels = bench_features(rows)
    n_train = int(rows * 0.75)
    accel = "cpu" if device == "cpu" else "cuda"
    seeds = tuple(range(1, k + 1))
    kw = {
        "train": slice(0, n_train),
        "predict": slice(n_train, rows),
        "params": ENSEMBLE_PARAMS,
        "accelerator": accel,
    }

    def ours() -> list[np.ndarray]:
        return [m.predictions for m in fit_ensemble(features, labels, seeds=seeds, **kw).members]

    def reference() -> list[np.ndarray]:
        return [fit_predict(features, labels, seed=s, **kw).predictions for s in seeds]

    first, second = ours(), reference()
    if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(first, second, strict=True)):
        raise RuntimeError("fit_ensemble's members differ from fit_predict with the same seeds.")
    times: list[list[float]] = [[], []]
    for _ in range(rounds):
        for side, fn in enumerate((ours, reference)):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[side].append(time.perf_counter() - t0)
    value, ref = float(np.median(times[0])), float(np.median(times[1]))
    goal = GOAL["cpu" if device == "cpu" else "cuda"]
    return [
        make_row(
            f"ensemble of {k} (fit_ensemble) vs {k} fit_predict calls ({device}, "
            f"{n_train} train rows, W={ENSEMBLE_PARAMS.window_size}, "
            f"h={ENSEMBLE_PARAMS.hidden_dim}, {ENSEMBLE_PARAMS.epochs} epochs)",
            value,
            ref,
            "s per round",
            f"<= {goal}",
        )
    ]
