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

from benchmarks import Row, row
from optimize.data import REPO_ROOT

MIB = 1024 * 1024
RESULT_PREFIX = "BENCH_MEMORY_RESULT "


def memory_config(*, train_days: int, window: int) -> tuple[dict, dict]:
    """``(run config, trial params)``: BTC/USDT 1h, one fold, a 1x16 LSTM trained one epoch."""
    from lstm.params import LSTMParams
    from optimize.search.space import TrialParams
    from strategy.signals import SignalParams

    end = pd.Timestamp("2023-01-01") + pd.Timedelta(days=train_days + 32 + window // 24)
    config = {
        "data": {
            "pairs": ["BTC/USDT"],
            "timeframe": "1h",
            "start": "2023-01-01",
            "end": f"{end:%Y-%m-%d}",
        },
        "features": {
            "include_timeframes": ["1h", "2h", "4h"],
            "indicator_periods_candles": [10, 20, 50],
        },
        "walkforward": {
            "train_days": train_days,
            "test_days": 30,
            "purge_candles": window,
            "holdout_days": 0,
        },
        "backtest": {
            "fee": 0.001,
            "stoploss": -0.10,
            "stake_amount": "unlimited",
            "max_open_trades": 1,
        },
        "study": {"pruner": "none"},
        "training": {"accelerator": "cpu", "cache_dir": None},
    }
    lstm = LSTMParams(
        num_lstm_layers=1,
        hidden_dim=16,
        dropout_percent=0.1,
        window_size=window,
        batch_size=256,
        epochs=1,
        early_stopping_patience=1,
    )
    signal = SignalParams(mode="quantile", entry=0.8, exit_gap=0.2)
    return config, TrialParams(lstm=lstm, weights=(0.5,) * 9, signal=signal).to_dict()


def bench_memory(*, train_days: int = 365, window: int = 48, timeout_s: float = 600) -> list[Row]:
    """Peak RSS increase (MiB) of one trial vs a copied window tensor (goal < 1) and vs the
    feature matrix; RSS added by loading the data vs the feature matrix."""
    arg = json.dumps(memory_config(train_days=train_days, window=window))
    cmd = [sys.executable, "-m", "benchmarks.memory", arg]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=REPO_ROOT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"the memory subprocess exited with {proc.returncode}; stderr tail:\n"
            f"{proc.stderr[-2000:]}"
        )
    res = json.loads(lines[-1][len(RESULT_PREFIX) :])
    trial = (res["peak_trial"] - res["rss_before_trial"]) / MIB
    copy = res["n_train"] * res["window"] * res["n_features"] * 4 / MIB
    features = res["feature_bytes"] / MIB
    size = (
        f"(BTC/USDT 1h, {res['n_rows']} rows x {res['n_features']} features, n_train "
        f"{res['n_train']}, W {res['window']}{'' if res['peak_reset'] else ', peak since start'})"
    )
    return [
        row(
            f"worker peak RSS increase during one trial vs a copied (n_train, W, F) float32 window "
            f"tensor {size}",
            trial,
            copy,
            "MiB",
            "ratio < 1 (windows are views)",
            below=1.0,
        ),
        row(
            f"worker peak RSS increase during one trial vs its feature matrices {size}",
            trial,
            features,
            "MiB",
        ),
        row(
            f"worker RSS added by loading the study data vs its feature matrices {size}",
            (res["rss_data"] - res["rss_imports"]) / MIB,
            features,
            "MiB",
        ),
    ]


def _status_bytes(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in bytes."""
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith(field + ":"))


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child(config_dict: dict, params_dict: dict) -> dict[str, int | bool]:
    """The measured worker: load the data, warm up, run one trial; sizes and RSS readings."""
    from lstm.train import fit_predict
    from optimize.config import parse_config
    from optimize.search.objectives import get_objective
    from optimize.search.space import TrialParams
    from optimize.study.evaluate import StudyData, evaluate
    from strategy.target import make_labels

    gc.collect()
    rss_imports = _status_bytes("VmRSS")
    config = parse_config(config_dict, "<memory benchmark>")
    params = TrialParams.from_dict(params_dict)
    data = StudyData.load(config)
    gc.collect()
    rss_data = _status_bytes("VmRSS")
    pair = next(iter(data.pairs.values()))
    labels = make_labels(pair.basis.score(params.weights), params.label_horizon)
    warm = min(600, pair.features.shape[0] // 2)
    warm_rows = {"train": slice(0, warm), "predict": slice(warm, warm + 50)}
    fit_predict(pair.features, labels, **warm_rows, params=params.lstm, seed=0, accelerator="cpu")
    gc.collect()
    reset = _reset_peak()
    rss_before = _status_bytes("VmRSS")
    evaluate(data, params, get_objective(config.study.objective))
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "rss_imports": rss_imports,
        "rss_data": rss_data,
        "rss_before_trial": rss_before,
        "peak_trial": _status_bytes("VmHWM") if reset else maxrss,
        "peak_reset": reset,
        "feature_bytes": int(sum(p.features.nbytes for p in data.pairs.values())),
        "n_rows": int(pair.features.shape[0]),
        "n_features": int(pair.features.shape[1]),
        "n_train": int(max(f.train.stop - f.train.start for f in data.plan.folds)),
        "window": params.lstm.window_size,
    }


if __name__ == "__main__":
    print(RESULT_PREFIX + json.dumps(_child(*json.loads(sys.argv[1]))), flush=True)
