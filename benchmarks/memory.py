"""Benchmark: a worker's peak memory during one trial vs the size of its data.

The design keeps one copy of each pair's feature matrix per worker and builds the LSTM's input
windows as views (``torch.unfold``), never as an ``(n, W, F)`` copy. This benchmark runs one real
trial (:func:`optimize.study.evaluate.evaluate`) in a fresh subprocess (``python -m
benchmarks.memory CONFIG PARAMS``) and reads the process's resident set size from
``/proc/self/status``:

1. after the imports (torch, Lightning, freqtrade's dependencies);
2. after :meth:`StudyData.load` (candles, target basis, feature matrices: the worker's data);
3. then one short untimed ``fit_predict`` (Lightning's lazy imports and torch's thread pools,
   paid once per worker), the peak is reset (``/proc/self/clear_refs``), and one trial runs;
   the peak RSS during the trial (``VmHWM``) minus the RSS before it is the trial's memory.

The references are the bytes of the worker's feature matrices and the bytes a copied float32
window tensor of the fold's training rows, ``n_train x W x F x 4``, would take. Linux only
(``/proc``); elsewhere the peak falls back to ``ru_maxrss`` since process start and says so.
"""

from __future__ import annotations

import gc
import json
import logging
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmarks import Row, row
from optimize.data import REPO_ROOT

log = logging.getLogger(__name__)

MIB = 1024 * 1024
RESULT_PREFIX = "BENCH_MEMORY_RESULT "


def memory_config(*, train_days: int, window: int) -> tuple[dict, dict]:
    """Run config and trial params of the memory benchmark: one pair, one fold, a long window.

    BTC/USDT 1h with 1h/2h/4h features over periods 10, 20 and 50; one walk-forward fold of
    ``train_days`` training days and 30 test days (no holdout); a one-layer, 16-unit LSTM with
    window ``window`` trained for one epoch (the figure is about memory, not accuracy).

    Returns:
        ``(raw run config dict, TrialParams.to_dict())``.
    """
    from lstm.params import LSTMParams
    from optimize.search.space import TrialParams
    from strategy.signals import SignalParams

    span_days = train_days + 30 + 2 + window // 24
    start = "2023-01-01"
    end = (pd.Timestamp(start) + pd.Timedelta(days=span_days)).strftime("%Y-%m-%d")
    config = {
        "data": {"pairs": ["BTC/USDT"], "timeframe": "1h", "start": start, "end": end},
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
    params = TrialParams(
        lstm=LSTMParams(
            num_lstm_layers=1,
            hidden_dim=16,
            dropout_percent=0.1,
            window_size=window,
            batch_size=256,
            epochs=1,
            early_stopping_patience=1,
        ),
        weights=(0.5,) * 9,
        signal=SignalParams(mode="quantile", entry=0.8, exit_gap=0.2),
    )
    return config, params.to_dict()


def bench_memory(*, train_days: int = 365, window: int = 48, timeout_s: float = 600) -> list[Row]:
    """Peak RSS of one trial in a fresh worker process vs its data and a copied window tensor.

    Args:
        train_days: training days of the single fold (sets n_train).
        window: the LSTM window W (and the purge gap).
        timeout_s: the subprocess is killed after this many seconds.

    Returns:
        Rows (MiB): trial peak increase vs a copied ``(n_train, W, F)`` float32 window tensor
        (goal: ratio < 1, windows are views), trial peak increase vs the feature matrices (info),
        RSS added by loading the data vs the feature matrices (info).

    Raises:
        ValueError: ``train_days`` < 30 or ``window`` < 2.
        RuntimeError: the subprocess failed or printed no result.
    """
    if train_days < 30 or window < 2:
        raise ValueError(
            f"bench_memory needs train_days >= 30 and window >= 2, but got {train_days=}, "
            f"{window=}."
        )
    config, params = memory_config(train_days=train_days, window=window)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        config_path, params_path = Path(tmp) / "config.yaml", Path(tmp) / "params.json"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        params_path.write_text(json.dumps(params))
        cmd = [sys.executable, "-m", "benchmarks.memory", str(config_path), str(params_path)]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, cwd=REPO_ROOT, check=False
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"`{' '.join(cmd)}` exited with {proc.returncode}; stderr tail:\n{proc.stderr[-2000:]}"
        )
    res = json.loads(lines[-1][len(RESULT_PREFIX) :])
    log.info("bench_memory: %s", res)
    trial = res["peak_trial"] - res["rss_before_trial"]
    copy_bytes = res["n_train"] * res["window"] * res["n_features"] * 4
    since = "" if res["peak_reset"] else ", peak since process start"
    size = (
        f"BTC/USDT 1h, {res['n_rows']} rows x {res['n_features']} features, "
        f"n_train {res['n_train']}, W {res['window']}{since}"
    )
    return [
        row(
            "worker peak RSS increase during one trial vs a copied (n_train, W, F) float32 window "
            f"tensor ({size})",
            trial / MIB,
            copy_bytes / MIB,
            "MiB",
            "ratio < 1 (windows are views)",
            below=1.0,
        ),
        row(
            f"worker peak RSS increase during one trial vs its feature matrices ({size})",
            trial / MIB,
            res["feature_bytes"] / MIB,
            "MiB",
        ),
        row(
            f"worker RSS added by loading the study data vs its feature matrices ({size})",
            (res["rss_data"] - res["rss_imports"]) / MIB,
            res["feature_bytes"] / MIB,
            "MiB",
        ),
    ]


def _status_bytes(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in bytes (from ``/proc/self/status``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field} line.")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child(config_path: str, params_path: str) -> dict[str, Any]:
    """The measured worker: load the data, warm up, run one trial; sizes and RSS readings."""
    from lstm.train import fit_predict
    from optimize.config import load_config
    from optimize.search.objectives import get_objective
    from optimize.search.space import TrialParams
    from optimize.study.evaluate import StudyData, evaluate
    from strategy.target import make_labels

    gc.collect()
    rss_imports = _status_bytes("VmRSS")
    config = load_config(config_path)
    params = TrialParams.from_dict(json.loads(Path(params_path).read_text()))
    data = StudyData.load(config)
    gc.collect()
    rss_data = _status_bytes("VmRSS")

    pair = next(iter(data.pairs.values()))
    labels = make_labels(pair.basis.score(params.weights), params.label_horizon)
    warm = min(600, pair.features.shape[0] // 2)
    fit_predict(
        pair.features,
        labels,
        train=slice(0, warm),
        predict=slice(warm, warm + 50),
        params=params.lstm,
        seed=0,
        accelerator="cpu",
    )
    gc.collect()
    reset = _reset_peak()
    rss_before = _status_bytes("VmRSS")
    evaluate(data, params, get_objective(config.study.objective))
    peak = (
        _status_bytes("VmHWM")
        if reset
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    folds = data.plan.folds
    return {
        "rss_imports": rss_imports,
        "rss_data": rss_data,
        "rss_before_trial": rss_before,
        "peak_trial": peak,
        "peak_reset": reset,
        "feature_bytes": int(sum(p.features.nbytes for p in data.pairs.values())),
        "n_rows": int(pair.features.shape[0]),
        "n_features": int(pair.features.shape[1]),
        "n_train": int(max(f.train.stop - f.train.start for f in folds)),
        "window": params.lstm.window_size,
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m benchmarks.memory CONFIG.yaml PARAMS.json")
    print(RESULT_PREFIX + json.dumps(_child(sys.argv[1], sys.argv[2])), flush=True)
