"""An ensemble of K members trained by ``fit_ensemble`` vs K separate ``fit_predict`` calls.

Both sides train the same K models (same seeds, same data; the run stops if any member's
predictions differ): ours shares the scaler, the windows and the device tensors between the
members; the reference runs the K single fits one after another, each preparing everything again.
Rounds alternate; the figure is the ratio of the median round times (< 1: the ensemble is cheaper).
"""

from __future__ import annotations

import numpy as np

from benchmarks import Row, alternate, row
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
) -> list[Row]:
    """Seconds per round of ``fit_ensemble`` with ``k`` seeds vs ``k`` ``fit_predict`` calls.

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
    seeds = tuple(range(1, k + 1))
    kw = {
        "train": slice(0, n_train),
        "predict": slice(n_train, rows),
        "params": ENSEMBLE_PARAMS,
        "accelerator": "cpu" if device == "cpu" else "cuda",
    }
    together = fit_ensemble(features, labels, seeds=seeds, **kw).members
    alone = [fit_predict(features, labels, seed=s, **kw) for s in seeds]
    if not all(
        np.array_equal(a.predictions, b.predictions, equal_nan=True)
        for a, b in zip(together, alone, strict=True)
    ):
        raise RuntimeError("fit_ensemble's members differ from fit_predict with the same seeds.")

    def ours() -> float:
        fit_ensemble(features, labels, seeds=seeds, **kw)
        return 1.0  # one round

    def reference() -> float:
        for s in seeds:
            fit_predict(features, labels, seed=s, **kw)
        return 1.0

    # the check above was the warm-up
    rate, ref_rate = alternate([ours, reference], rounds=rounds, cuda=device != "cpu", warmup=False)
    goal = GOAL["cpu" if device == "cpu" else "cuda"]
    p = ENSEMBLE_PARAMS
    return [
        row(
            f"ensemble of {k} (fit_ensemble) vs {k} fit_predict calls ({device}, {n_train} train "
            f"rows, W={p.window_size}, h={p.hidden_dim}, {p.epochs} epochs)",
            1.0 / rate,
            1.0 / ref_rate,
            "s per round",
            f"<= {goal}",
            below=goal + 1e-9,
        )
    ]
