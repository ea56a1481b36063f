"""One real trial (one pair, one fold, 83 features of 1h/2h/4h candles, window 48) in a fresh
subprocess (``python -m benchmarks.memory JSON``): RSS after imports, after loading the study
data, then (after an untimed short fit that pays Lightning's lazy imports) the peak RSS during the
trial (``VmHWM`` after resetting it via ``/proc/self/clear_refs``; else ``ru_maxrss`` since start,
and the row says so) minus the RSS before it. References: the bytes of a copied
``(n_train, W, F)`` float32 window tensor of the fold, and the bytes of the feature matrix.
Figures in MiB.
"""

from __future__ import annotations

import gc
import json
import resource
import subprocess
import sys

import pandas as pd

from benchmarks import REPO_ROOT, Row, row

MIB = 1024 * 1024
RESULT = "BENCH_MEMORY_RESULT "


def bench_memory(*, train_days: int = 365, window: int = 48) -> list[Row]:
    """Peak RSS increase (MiB) of one trial vs a copied window tensor (goal < 1) and vs the
    feature matrix; RSS added by loading the data vs the feature matrix."""
    cmd = [sys.executable, "-m", "benchmarks.memory", str(train_days), str(window)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"memory subprocess exited with {proc.returncode}: {proc.stderr[-2000:]}"
        )
    res = json.loads(lines[-1][len(RESULT) :])
    trial = (res["peak_trial"] - res["rss_before_trial"]) / MIB
    copy = res["n_train"] * window * res["n_features"] * 4 / MIB
    features = res["feature_bytes"] / MIB
    size = (
        f"(BTC/USDT 1h, {res['n_rows']} rows x {res['n_features']} features, n_train "
        f"{res['n_train']}, W {window}{'' if res['peak_reset'] else ', peak since start'})"
    )
    peak = "worker peak RSS increase during one trial vs"
    loading, matrices = (res["rss_data"] - res["rss_imports"]) / MIB, f"its feature matrices {size}"
    return [
        row(
            f"{peak} a copied (n_train, W, F) float32 window tensor {size}",
            trial,
            copy,
            "MiB",
            "ratio < 1 (windows are views)",
            below=1.0,
        ),
        row(f"{peak} {matrices}", trial, features, "MiB"),
        row(f"worker RSS added by loading the study data vs {matrices}", loading, features, "MiB"),
    ]


def _rss(field: str = "VmRSS") -> int:
    """``VmRSS`` (or ``VmHWM``, the peak) of this process in bytes, after a garbage collection."""
    gc.collect()
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith(field + ":"))


def _child(train_days: int, window: int) -> dict[str, int | bool]:
    """The measured worker: BTC/USDT 1h, one fold, a 1x16 LSTM trained one epoch; load the data,
    warm up, run one trial; return sizes and RSS readings (bytes)."""
    from lstm.params import LSTMParams
    from lstm.train import FitSpec, fit_predict
    from optimize.config import parse_config
    from optimize.evaluation.inputs import StudyData
    from optimize.evaluation.trial import evaluate
    from optimize.search.space import TrialParams
    from strategy.signals import SignalParams
    from strategy.target import make_labels

    rss_imports = _rss()
    end = pd.Timestamp("2023-01-01") + pd.Timedelta(days=train_days + 32 + window // 24)
    features = {"include_timeframes": ["1h", "2h", "4h"], "indicator_periods_candles": [10, 20, 50]}
    raw = {
        "data": {
            "pairs": ["BTC/USDT"],
            "timeframe": "1h",
            "start": "2023-01-01",
            "end": f"{end:%F}",
        },
        "features": features,
        "walkforward": {"train_days": train_days, "test_days": 30, "purge_candles": window},
        "backtest": {"fee": 0.001, "stoploss": -0.10, "stake_amount": "unlimited"},
        "study": {"pruner": "none"},
        "training": {"accelerator": "cpu", "cache_dir": None},
    }
    raw["walkforward"]["holdout_days"], raw["backtest"]["max_open_trades"] = 0, 1
    config = parse_config(raw, "<memory benchmark>")
    sizes = {"num_lstm_layers": 1, "hidden_dim": 16, "window_size": window, "batch_size": 256}
    lstm = LSTMParams(**sizes, dropout_percent=0.1, epochs=1, early_stopping_patience=1)
    signal = SignalParams(mode="quantile", entry=0.8, exit_gap=0.2)
    params = TrialParams(lstm=lstm, weights=(0.5,) * 9, signal=signal)
    data = StudyData.load(config)
    rss_data = _rss()
    pair = next(iter(data.pairs.values()))
    labels = make_labels(pair.basis.score(params.weights), params.label_horizon)
    warm = min(600, pair.features.shape[0] // 2)  # pays Lightning's lazy imports
    spec = FitSpec(slice(0, warm), slice(warm, warm + 50), lstm, accelerator="cpu")
    fit_predict(pair.features, labels, spec, 0)
    rss_before = _rss()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    evaluate(data, params, config.study.resolved_objective)
    return {
        "rss_imports": rss_imports,
        "rss_data": rss_data,
        "rss_before_trial": rss_before,
        "peak_trial": _rss("VmHWM")
        if reset
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak_reset": reset,
        "feature_bytes": int(sum(p.features.nbytes for p in data.pairs.values())),
        "n_rows": int(pair.features.shape[0]),
        "n_features": int(pair.features.shape[1]),
        "n_train": int(max(f.train.stop - f.train.start for f in data.plan.folds)),
    }


if __name__ == "__main__":
    print(RESULT + json.dumps(_child(int(sys.argv[1]), int(sys.argv[2]))), flush=True)
