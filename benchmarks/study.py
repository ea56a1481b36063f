"""Per-trial overhead outside model training, on real trials of a benchmark study.

:func:`bench_trial_overhead` runs trials in this process through the study's own objective
(:class:`optimize.study.runner.TrialRunner` on an SQLite storage, as a worker does). The whole
trial cycle is timed between Optuna callbacks; the time spent training comes from
:func:`lstm.train.record_fit_timings` (each fit's wall time and its time inside Lightning's
``Trainer.fit``), and the time inside ``evaluate`` from the ``duration_s`` every trial stores.
Nothing in the production code is replaced while it runs.

The benchmark studies are ``configs/smoke.yaml`` with the pruner off and
``search_spaces/smoke.yaml`` with the LSTM's window, dropout and learning rate fixed
(:func:`bench_study_files`), so that every trial does the same amount of training; weights and
thresholds are still sampled. ``make bench`` times one untimed warm-up trial, then trials shaped
like the default study's (:data:`DEFAULT_SIZE_CONFIG`: configs/default.yaml's 3 pairs, 90/30-day
folds, purge and 1h/2h/4h features, 2 folds instead of 9; :data:`DEFAULT_SIZE_LSTM`, the default
space's middle size), on which the goal is judged, then the tiny study itself: it trains six tiny
models in ~0.4 s, so its fraction shows the fixed seconds per trial, not a share a real study pays.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import yaml

from benchmarks import Row, row
from lstm.train import record_fit_timings
from optimize.config import load_config, parse_config
from optimize.data import REPO_ROOT
from optimize.search.space import load_space, parse_space
from optimize.study.evaluate import StudyData
from optimize.study.runner import TrialRunner, open_study

SMOKE_CONFIG = REPO_ROOT / "configs" / "smoke.yaml"
SMOKE_SPACE = REPO_ROOT / "search_spaces" / "smoke.yaml"
FIXED_LSTM = {"window_size": 4, "dropout_percent": 0.1, "learning_rate": 3.0e-3}
DEFAULT_SIZE_LSTM = {
    **FIXED_LSTM,
    "num_lstm_layers": 2,
    "hidden_dim": 32,
    "window_size": 12,
    "epochs": 6,
    "early_stopping_patience": 2,
}
"""A model the size of a typical trial of search_spaces/default.yaml (its middle values)."""
DEFAULT_SIZE_CONFIG = {
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


def bench_study_files(
    folder: Path,
    *,
    accelerator: str = "cpu",
    overrides: dict[str, dict[str, Any]] | None = None,
    lstm: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write the benchmark's run config and search space into ``folder``.

    The config is ``configs/smoke.yaml`` with ``study.pruner: none``, the feature cache inside
    ``folder`` and ``training.accelerator`` set; ``overrides`` updates sections key by key. The
    space is ``search_spaces/smoke.yaml`` with :data:`FIXED_LSTM` (or ``lstm``) as constants.

    Returns:
        ``(config_path, space_path)``; both are validated by the project's own parsers.
    """
    raw = yaml.safe_load(SMOKE_CONFIG.read_text())
    raw["study"] = {**raw.get("study", {}), "pruner": "none"}
    raw["training"] = {
        **raw.get("training", {}),
        "accelerator": accelerator,
        "cache_dir": str(folder / "features-cache"),
    }
    for section, values in (overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **values}
    space = yaml.safe_load(SMOKE_SPACE.read_text())
    space["lstm"] = {**space["lstm"], **(FIXED_LSTM if lstm is None else lstm)}
    config_path, space_path = folder / "bench-config.yaml", folder / "bench-space.yaml"
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    space_path.write_text(yaml.safe_dump(space, sort_keys=False))
    parse_config(copy.deepcopy(raw), str(config_path))
    parse_space(copy.deepcopy(space), str(space_path))
    return config_path, space_path


def bench_trial_overhead(
    *,
    n_trials: int = 6,
    warmup: int = 1,
    seed: int = 0,
    lstm: dict[str, Any] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    label: str = "smoke space",
    judged: bool = True,
) -> list[Row]:
    """Share of a trial's time spent outside model training.

    Args:
        n_trials: timed trials (after ``warmup`` untimed ones that load the backtest kernel and
            Lightning's lazy imports, which a worker pays once).
        warmup: untimed trials first.
        seed: the study's sampler seed.
        lstm: the LSTM constants of the space (default :data:`FIXED_LSTM`, a tiny model).
        overrides: run-config sections updated key by key (see :func:`bench_study_files`).
        label: names the trial shape in the rows.
        judged: whether the first row carries the goal (ratio < 0.05) or is information.

    Returns:
        Rows in seconds per trial: time outside the fits vs the whole trial cycle; its two
        parts against the same whole (``evaluate`` outside the fits: thresholds, backtests,
        baselines; the rest: Optuna sampling, storage writes, garbage collection); the fits'
        time outside Lightning's ``Trainer.fit`` vs the fits' time.

    Raises:
        ValueError: ``n_trials`` < 1 or ``warmup`` < 0.
    """
    if n_trials < 1 or warmup < 0:
        raise ValueError(
            "bench_trial_overhead needs n_trials >= 1 and warmup >= 0, but got "
            f"{n_trials=}, {warmup=}."
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    marks: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-trial-") as tmp, record_fit_timings() as fits:
        config_path, space_path = bench_study_files(Path(tmp), lstm=lstm, overrides=overrides)
        config, space = load_config(config_path), load_space(space_path)
        study = open_study(f"sqlite:///{tmp}/trials.db", "overhead", config, space, seed=seed)
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
    goal = {"goal": "ratio < 0.05", "below": 0.05} if judged else {}
    return [
        row(
            f"per-trial time outside model training vs whole trial ({size})",
            cycle - fit,
            cycle,
            "s/trial",
            **goal,
        ),
        row(
            "  part: evaluate() outside training (thresholds, backtests, baselines) vs whole trial",
            evaluate - fit,
            cycle,
            "s/trial",
        ),
        row(
            "  part: rest (Optuna sampling, storage writes, garbage collection) vs whole trial",
            cycle - evaluate,
            cycle,
            "s/trial",
        ),
        row(
            f"training time outside Lightning Trainer.fit vs whole training time ({size})",
            fit - trainer,
            fit,
            "s/trial",
        ),
    ]
