"""Real trials through the study's own objective (``TrialRunner`` on SQLite), in this process,
after one untimed warm-up: first trials shaped like the default study's (configs/default.yaml's 3
pairs, 90/30-day folds, purge, 1h/2h/4h features, 2 folds instead of 9; the default space's
middle-sized LSTM), then the tiny smoke study (LSTM window, dropout and learning rate fixed);
pruner off. Whole trial cycles are timed between Optuna callbacks; training time comes from
``lstm.train.record_fit_timings`` (each fit's wall time and its time in ``Trainer.fit``), the time
in ``evaluate`` from each trial's stored ``duration_s``; no production code is replaced. The goal
is judged on the default shape; the smoke trial trains six tiny models in ~0.4 s, so its fraction
shows the fixed seconds per trial, not a share a real study pays.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from benchmarks import FIXED_LSTM, Row, row, study_files
from lstm.train import record_fit_timings
from optimize.config import load_config
from optimize.evaluation.inputs import StudyData
from optimize.search.space import load_space
from optimize.study.runner import TrialRunner, open_study

# The middle size of search_spaces/default.yaml's LSTM.
DEFAULT_LSTM = {**FIXED_LSTM, "num_lstm_layers": 2, "hidden_dim": 32, "window_size": 12}
DEFAULT_LSTM |= {"epochs": 6, "early_stopping_patience": 2}
DEFAULT_CONFIG = {
    "data": {
        "pairs": ["BTC/USDT", "ETH/USDT", "SOL/USDT"],
        "start": "2025-01-01",
        "end": "2025-07-15",
    },
    "backtest": {"max_open_trades": 3},
    "features": {"include_timeframes": ["1h", "2h", "4h"], "indicator_periods_candles": [10, 20]},
    "walkforward": {"train_days": 90, "test_days": 30, "purge_candles": 30, "holdout_days": 15},
}
"""configs/default.yaml's pairs, fold shape and features (2 folds instead of 9)."""
DEFAULT_LABEL = (
    "default-study trial shape (90-day folds, 1h/2h/4h features, LSTM 2x32, W=12, 6 epochs)"
)


def bench_overhead(*, default_trials: int = 3, smoke_trials: int = 6) -> list[Row]:
    """The default-shaped trials' rows (judged), then the smoke study's (info)."""
    return trial_overhead(
        default_trials, lstm=DEFAULT_LSTM, overrides=DEFAULT_CONFIG, label=DEFAULT_LABEL
    ) + trial_overhead(smoke_trials, judged=False)


def trial_overhead(
    n_trials: int,
    *,
    lstm: dict[str, Any] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    label: str = "smoke space",
    judged: bool = True,
    warmup: int = 1,
) -> list[Row]:
    """Seconds per trial outside training vs the whole trial, its two parts, and the fits' time
    outside ``Trainer.fit``, over ``n_trials`` after ``warmup`` untimed trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    marks: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-trial-") as tmp, record_fit_timings() as fits:
        config_path, space_path = study_files(Path(tmp), lstm=lstm, overrides=overrides)
        config, space = load_config(config_path), load_space(space_path)
        study = open_study(f"sqlite:///{tmp}/trials.db", "overhead", config, space, seed=0)
        data = StudyData.load(config)
        marks.append(time.perf_counter())
        study.optimize(
            TrialRunner(data=data, space=space),
            n_trials=warmup + n_trials,
            catch=(),
            gc_after_trial=True,
            callbacks=[lambda _s, _t: marks.append(time.perf_counter())],
        )
        timed = study.get_trials(deepcopy=False)[warmup:]
    start, end = marks[warmup], marks[-1]
    inside = [f for f in fits if start <= f.start < end]
    cycle = (end - start) / n_trials
    fit = sum(f.seconds for f in inside) / n_trials
    trainer = sum(f.trainer_seconds for f in inside) / n_trials
    evaluate = sum(t.user_attrs["duration_s"] for t in timed) / n_trials
    size = f"{len(data.pairs)} pairs x {len(data.plan.folds)} folds, {label}, {n_trials} trials"
    names = [
        f"per-trial time outside model training vs whole trial ({size})",
        "  part: evaluate() outside training (thresholds, backtests, baselines) vs whole trial",
        "  part: rest (Optuna sampling, storage writes, garbage collection) vs whole trial",
        f"training time outside Lightning Trainer.fit vs whole training time ({size})",
    ]
    figures = [(cycle - fit, cycle), (evaluate - fit, cycle), (cycle - evaluate, cycle)]
    figures.append((fit - trainer, fit))
    rows = [row(name, *pair, "s/trial") for name, pair in zip(names, figures, strict=True)]
    if judged:
        rows[0] = row(names[0], *figures[0], "s/trial", "ratio < 0.05", below=0.05)
    return rows
