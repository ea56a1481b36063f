"""Both sides train the same K = 4 models (same seeds, same real BTC/USDT 1h features; the run
stops if any member's predictions differ): ours, ``lstm.train.fit_ensemble``, shares the scaler,
the windows and the device tensors between the members; the reference runs K ``fit_predict``
calls one after another, each preparing everything again. Rounds alternate; the figure is the
ratio of the median seconds per round (< 1: the ensemble is cheaper).
"""

from __future__ import annotations

import numpy as np

from benchmarks import Row, alternate, row
from benchmarks.training import BENCH_PARAMS, bench_features
from lstm.train import FitSpec, fit_ensemble, fit_predict

ENSEMBLE_PARAMS = BENCH_PARAMS.replace(hidden_dim=32, window_size=12, learning_rate=3e-3)
"""The default space's middle-sized model (configs/default.yaml's folds train ~2,000 rows)."""
GOAL = {"cpu": 1.0, "cuda": 0.35}
"""K members together cost at most this share of K single fits."""


def bench_ensemble(
    device: str = "cpu", *, k: int = 4, rounds: int = 5, rows: int = 2880
) -> list[Row]:
    """Seconds per round of ``fit_ensemble`` with ``k`` seeds vs ``k`` ``fit_predict`` calls,
    on ``rows`` candles (75 % train); ``device`` "cpu" or "cuda"."""
    features, labels = bench_features(rows)
    n_train, seeds = int(rows * 0.75), tuple(range(1, k + 1))
    spec = FitSpec(slice(0, n_train), slice(n_train, rows), ENSEMBLE_PARAMS, accelerator=device)
    together = fit_ensemble(features, labels, spec, seeds).members  # also the warm-up
    for member, seed in zip(together, seeds, strict=True):
        alone = fit_predict(features, labels, spec, seed).predictions
        if not np.array_equal(member.predictions, alone, equal_nan=True):
            raise RuntimeError(f"fit_ensemble's member {seed} differs from fit_predict.")
    rate, ref_rate = alternate(
        [
            lambda: fit_ensemble(features, labels, spec, seeds) and 1.0,
            lambda: [fit_predict(features, labels, spec, s) for s in seeds] and 1.0,
        ],
        rounds=rounds,
        cuda=device != "cpu",
        warmup=False,
    )
    p = ENSEMBLE_PARAMS
    return [
        row(
            f"ensemble of {k} (fit_ensemble) vs {k} fit_predict calls ({device}, {n_train} train "
            f"rows, W={p.window_size}, h={p.hidden_dim}, {p.epochs} epochs)",
            1.0 / rate,
            1.0 / ref_rate,
            "s per round",
            f"<= {GOAL[device]}",
            below=GOAL[device] + 1e-9,
        )
    ]
