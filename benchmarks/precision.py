"""``fit_predict`` training throughput with bf16 autocast vs float32 on the GPU (information),
same model and features as figure 4, rounds alternating. On a CPU both sides train in float32.
"""

from __future__ import annotations

import dataclasses

from benchmarks import Row, alternate, row
from benchmarks.training import BENCH_PARAMS, bench_features, fit_samples


def bench_precision(*, seconds: float = 10, device: str = "cuda") -> list[Row]:
    """Training samples/s of ``fit_predict`` with ``precision="bf16"`` vs ``"32"`` (info; on a
    CPU both train in float32)."""
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
    name = (
        f"fit_predict train samples/s, bf16 vs fp32 ({device}, W={p.window_size}, "
        f"H={p.hidden_dim}x{p.num_lstm_layers}, batch {p.batch_size})"
    )
    return [row(name, ours, reference, "samples/s")]
