"""Benchmark of whole trials: per-trial overhead outside training (workers: :mod:`.workers`).

The benchmark studies are real ones: ``configs/smoke.yaml`` (2 pairs, 3 walk-forward folds of 30
training days on 1h candles) with the pruner off, and ``search_spaces/smoke.yaml`` with the LSTM's
window, dropout and learning rate fixed (:func:`bench_study_files`), so that every trial does the
same amount of training and throughput figures compare like with like. Weights and thresholds are
still sampled by the study's sampler.

* :func:`bench_trial_overhead` runs trials in this process through the study's own objective
  (:class:`optimize.study.runner.TrialRunner` on an SQLite storage with heartbeats, as a worker
  does) and times, with ``perf_counter``, the whole trial cycle (sampling, evaluation, storage
  writes) and the calls of ``lstm.train.fit_ensemble`` inside it
  (``optimize.study.evaluate.fit_ensemble`` is wrapped by a
  timer for the duration of the benchmark: a measurement, the calls still train the real models).
* :func:`benchmarks.workers.bench_workers` runs the same tiny study through the command line
  with 1 and N worker processes.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import optuna
import yaml

import optimize.study.evaluate as evaluate_module
import optimize.study.runner as study_module
from benchmarks import make_row
from optimize.config import load_config, parse_config
from optimize.data import REPO_ROOT
from optimize.search.space import load_space, parse_space
from optimize.study.evaluate import StudyData
from optimize.study.runner import TrialRunner, open_study

log = logging.getLogger(__name__)

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


Interval = tuple[float, float]


@contextlib.contextmanager
def timed_attribute(owner: Any, name: str) -> Iterator[list[Interval]]:
    """Wrap ``owner.name`` (a function or method) with a timer while the context is open.

    Yields:
        A list that receives ``(start, end)`` (``perf_counter`` seconds) of every completed call.
    """
    original = getattr(owner, name)
    spans: list[Interval] = []

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spans.append((t0, time.perf_counter()))

    setattr(owner, name, timed)
    try:
        yield spans
    finally:
        setattr(owner, name, original)


@contextlib.contextmanager
def gc_timer() -> Iterator[list[Interval]]:
    """Time every garbage collection (``gc.callbacks``) while the context is open.

    Yields:
        A list that receives ``(start, end)`` (``perf_counter`` seconds) of each collection.
    """
    spans: list[Interval] = []
    started: list[float] = []

    def callback(phase: str, _info: dict) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            spans.append((started.pop(), time.perf_counter()))

    gc.callbacks.append(callback)
    try:
        yield spans
    finally:
        gc.callbacks.remove(callback)


def seconds_within(
    spans: Sequence[Interval], start: float, end: float, *, outside: Sequence[Interval] = ()
) -> float:
    """Total length of the ``spans`` that begin in ``[start, end)``, skipping those that lie
    inside one of the ``outside`` intervals (e.g. collections during an ``evaluate`` call)."""
    return sum(
        b - a
        for a, b in spans
        if start <= a < end and not any(lo <= a and b <= hi for lo, hi in outside)
    )


def bench_trial_overhead(
    *,
    n_trials: int = 6,
    warmup: int = 1,
    seed: int = 0,
    lstm: dict[str, Any] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    label: str = "smoke space",
    goal: str = "ratio < 0.05",
) -> list[dict]:
    """Share of a trial's time spent outside ``fit_predict``, on the tiny benchmark study.

    Args:
        n_trials: timed trials (after ``warmup`` untimed ones that load the backtest kernel and
            Lightning's lazy imports, which a worker pays once).
        warmup: untimed trials first.
        seed: the study's sampler seed.
        lstm: the LSTM constants of the space (default :data:`FIXED_LSTM`, a tiny model;
            :data:`DEFAULT_SIZE_LSTM` for a default-study-sized one).
        overrides: run-config sections updated key by key (see :func:`bench_study_files`);
            :data:`DEFAULT_SIZE_CONFIG` gives the default study's fold shape.
        label: names the model size in the rows.
        goal: goal of the first row ("info" where the trial is too small to judge).

    Returns:
        Rows, all in seconds per trial against the whole trial cycle: time outside
        ``fit_predict`` (goal: ratio < 0.05); then, as info, its parts, which add up to it:
        inside ``evaluate`` but outside ``fit_predict`` (thresholds, backtests, baselines, and
        collections that happen there), garbage collection outside ``evaluate`` (Optuna's
        ``gc_after_trial``), and the rest (sampling, storage writes, user attributes); last, time
        inside ``fit_predict`` but outside Lightning's ``Trainer.fit`` vs the whole ``fit_predict``.

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
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-trial-") as tmp:
        config_path, space_path = bench_study_files(Path(tmp), lstm=lstm, overrides=overrides)
        config, space = load_config(config_path), load_space(space_path)
        fits = stack.enter_context(timed_attribute(evaluate_module, "fit_ensemble"))
        trainer_fits = stack.enter_context(timed_attribute(L.Trainer, "fit"))
        evaluations = stack.enter_context(timed_attribute(study_module, "evaluate"))
        study = open_study(f"sqlite:///{tmp}/trials.db", "overhead", config, space, seed=seed)
        data = StudyData.load(config)
        runner = TrialRunner(data=data, space=space)
        collections = stack.enter_context(gc_timer())
        marks.append(time.perf_counter())
        study.optimize(
            runner,
            n_trials=warmup + n_trials,
            catch=(),
            gc_after_trial=True,
            callbacks=[lambda _s, _t: marks.append(time.perf_counter())],
        )
    start, end = marks[warmup], marks[-1]
    per = {
        "cycle": end - start,
        "fit": seconds_within(fits, start, end),
        "trainer": seconds_within(trainer_fits, start, end),
        "evaluate": seconds_within(evaluations, start, end),
        "gc": seconds_within(collections, start, end, outside=evaluations),
    }
    per = {k: v / n_trials for k, v in per.items()}
    log.info("bench_trial_overhead: %s s per trial", {k: round(v, 3) for k, v in per.items()})
    size = f"{len(data.pairs)} pairs x {len(data.plan.folds)} folds, {label}, {n_trials} trials"
    cycle = per["cycle"]
    return [
        make_row(
            f"per-trial time outside fit_predict vs whole trial ({size})",
            cycle - per["fit"],
            cycle,
            "s/trial",
            goal,
        ),
        make_row(
            "  part: evaluate() outside fit_predict (thresholds, backtests, baselines) "
            "vs whole trial",
            per["evaluate"] - per["fit"],
            cycle,
            "s/trial",
            "info",
        ),
        make_row(
            "  part: garbage collection outside evaluate() (gc_after_trial) vs whole trial",
            per["gc"],
            cycle,
            "s/trial",
            "info",
        ),
        make_row(
            "  part: rest (Optuna sampling, storage writes, user attrs) vs whole trial",
            cycle - per["evaluate"] - per["gc"],
            cycle,
            "s/trial",
            "info",
        ),
        make_row(
            f"fit_predict time outside Lightning Trainer.fit vs whole fit_predict ({size})",
            per["fit"] - per["trainer"],
            per["fit"],
            "s/trial",
            "info",
        ),
    ]
