"""``python -m benchmarks`` (``make bench``): every benchmark figure against its reference, one run.

Prints a table of ratios and writes ``docs/benchmarks.md`` (date, machine, device, the table,
unmet goals, how each figure is measured). ``--quick`` runs smaller sizes (< 3 minutes on 2 cores);
the default run takes several minutes. GPU figures run only when torch sees a CUDA device.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import report
from optimize.data import REPO_ROOT

logger = logging.getLogger("benchmarks")

DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
NO_CUDA = "no CUDA device: GPU rows skipped"


@dataclass(frozen=True)
class Figure:
    """One figure: how to run it (``quick`` -> rows) and how its rows are judged against the
    goal."""

    key: str
    title: str
    method: str
    run: Callable[[bool], list[dict]]
    judge: Callable[[dict], bool | None]
    gpu: bool = False


def _n_workers() -> int:
    return min(report.usable_cores(), 4)


# --- runners (imports inside: a failing figure must not stop the others) --------------------------


def _backtest(quick: bool) -> list[dict]:
    from benchmarks.backtest import bench_backtest

    return bench_backtest(repeats=10 if quick else 30, rounds=1 if quick else 3)


def _target(quick: bool) -> list[dict]:
    from benchmarks.target import bench_target

    return bench_target(n_weights=5 if quick else 20, repeats=20 if quick else 50)


def _overhead(quick: bool) -> list[dict]:
    from benchmarks.study import DEFAULT_SIZE_CONFIG, DEFAULT_SIZE_LSTM, bench_trial_overhead

    # The goal is judged on a trial shaped like the default study's; the tiny smoke trial shows
    # the fixed per-trial seconds, which dominate a 0.4 s trial and no realistic one.
    rows = bench_trial_overhead(
        n_trials=2 if quick else 3,
        lstm=DEFAULT_SIZE_LSTM,
        overrides=DEFAULT_SIZE_CONFIG,
        label=(
            "default-study trial shape (90-day folds, 1h/2h/4h features, LSTM 2x32, W=12, 6 epochs)"
        ),
    )
    rows += bench_trial_overhead(n_trials=3 if quick else 6, goal="info")
    return rows


def _training(quick: bool, device: str = "cpu") -> list[dict]:
    from benchmarks.training import bench_training

    return bench_training(device, seconds=2 if quick else 20)


def _workers(quick: bool) -> list[dict]:
    from benchmarks.workers import bench_workers

    return bench_workers(
        workers=(1, _n_workers()), trials_per_worker=3 if quick else 8, one_thread_reference=True
    )


def _memory(quick: bool) -> list[dict]:
    from benchmarks.memory import bench_memory

    return bench_memory(train_days=120 if quick else 365)


def _pbo(quick: bool) -> list[dict]:
    from benchmarks.pbo import bench_pbo

    return bench_pbo(n_splits=12, repeat=1) if quick else bench_pbo(n_splits=16, repeat=2)


def _ensemble(quick: bool, device: str = "cpu") -> list[dict]:
    from benchmarks.ensemble import bench_ensemble

    return bench_ensemble(device, rounds=1 if quick else 3)


def _gpu_ensemble(quick: bool) -> list[dict]:
    return _ensemble(quick, "cuda")


def _gpu_training(quick: bool) -> list[dict]:
    return _training(quick, "cuda")


def _gpu_precision(quick: bool) -> list[dict]:
    from benchmarks.gpu import bench_precision

    return bench_precision(seconds=3 if quick else 10)


def _gpu_workers(quick: bool) -> list[dict]:
    from benchmarks.gpu import bench_gpu_workers

    return bench_gpu_workers(trials_per_worker=3 if quick else 4)


def _gpu_study(quick: bool) -> list[dict]:
    from benchmarks.gpu import bench_gpu_study

    return bench_gpu_study(seconds=600, workers=4)


# --- judges --------------------------------------------------------------------------------------


def _ratio_at_least(x: float) -> Callable[[dict], bool | None]:
    return lambda r: None if r["goal"] == "info" else bool(r["ratio"] >= x)


def _ratio_below(x: float) -> Callable[[dict], bool | None]:
    return lambda r: None if r["goal"] == "info" else bool(r["ratio"] < x)


def _info_only(_r: dict) -> None:
    """Judge of a figure whose rows are all information: there is no goal to test."""


def _judge_training(device: str) -> Callable[[dict], bool | None]:
    def judge(r: dict) -> bool | None:
        from benchmarks.training import FIT_GOAL

        if r["goal"] == "info":
            return None
        return (
            bool(r["ratio"] >= FIT_GOAL[device])
            if r["name"].startswith("lstm.fit_predict")
            else bool(r["ratio"] > 1)
        )

    return judge


def _judge_target(r: dict) -> bool | None:
    from benchmarks.target import GOAL_MS

    return None if r["goal"] == "info" else bool(r["value"] >= 1e3 / GOAL_MS)


FIGURES = (
    Figure(
        "backtest",
        "1. backtest engine vs freqtrade's Backtesting",
        "One year (2024) of real BTC/USDT 1h candles with the same precomputed random entry/exit "
        "signals and exit rules (stoploss, ROI table, trailing stop). Reference: freqtrade's own "
        "`Backtesting.backtest` in-process and offline (optimize.freqtrade.offline), median of its "
        "runs; ours: `optimize.backtest.engine.backtest()` (validation, ticks, numba kernel, "
        "result frames, metrics), median of repeated calls after a warm-up; rounds alternate. The "
        "run stops if the two disagree on the trades.",
        _backtest,
        _ratio_at_least(200),
    ),
    Figure(
        "target",
        "2. T(w) for new weights via the precomputed basis",
        "The latest ~50k BTC/USDT 1h candles. Ours: `TargetBasis.score(w)` (built once per pair "
        "and worker; one matrix-vector product per trial); reference: "
        "`strategy.target.target_score(candles, w)`, which recomputes the TA-Lib indicators and "
        "the pandas rolling normalisations for every new weight vector (what a strategy without "
        "the basis does). Same random weight vectors on both sides, results checked equal; the "
        "goal is absolute: under 1 ms per pair.",
        _target,
        _judge_target,
    ),
    Figure(
        "overhead",
        "3. per-trial overhead outside model training",
        "Real trials through the study's own objective (`TrialRunner` on an SQLite storage with "
        "heartbeats), in this process, after one untimed warm-up trial: first trials shaped like "
        "the default study's (configs/default.yaml's 3 pairs, 90/30-day folds, purge and 1h/2h/4h "
        "features, 2 folds instead of 9; an LSTM of the default space's middle size), then a tiny "
        "study (configs/smoke.yaml, smoke space, LSTM window, dropout and learning rate fixed). "
        "The pruner is off. The whole trial cycle (sampling, evaluation, backtests, baselines, "
        "storage writes) is timed between Optuna callbacks; `optimize.study.evaluate.fit_predict` "
        "and Lightning's `Trainer.fit` are wrapped by timers for the measurement, garbage "
        "collections are timed with `gc.callbacks`. Overhead = trial time minus time inside "
        "`fit_predict`. The "
        "goal is judged on the default-shaped trial; the smoke trial trains six tiny models in "
        "~0.4 s, so its fraction shows the fixed seconds per trial, not a share any real study "
        "pays.",
        _overhead,
        _ratio_below(0.05),
    ),
    Figure(
        "training",
        "4. LSTM training throughput vs a plain DataLoader loop",
        "`benchmarks.training.bench_training`: the same LSTMRegressor trained on 4000 rows of real "
        "BTC/USDT features by `lstm.train.fit_predict` (Lightning, device-resident windows, "
        "index-sliced batches) and by a plain PyTorch loop over `DataLoader(TensorDataset(copied "
        "windows))`, rounds alternating for ~20 s, each side's median samples/s per round; plus "
        "batch iteration alone. Goal from issue 8: >= 1x on CPU, >= 2x on a GPU.",
        _training,
        _judge_training("cpu"),
    ),
    Figure(
        "workers",
        "5. trials/hour with 1 vs N worker processes",
        "The real command line `python -m optimize run --workers N` on the tiny study of figure 3 "
        "against a fresh temporary SQLite file, N = min(cores, 4). Trials/hour are computed from "
        "the trials' start/completion times in the storage over the window where all N workers "
        "were busy (process start-up, data loading and the tail excluded; idle gaps between trials "
        "counted). Each worker gets `cores / N` torch threads, as `run` assigns them; one more run "
        "of a single worker with `training.threads_per_worker: 1` separates process scaling from "
        "torch's thread scaling.",
        _workers,
        lambda r: None if r["goal"] == "info" else bool(r["ratio"] >= 0.8 * _n_workers()),
    ),
    Figure(
        "memory",
        "6. peak memory of a worker during a trial vs its data",
        "One real trial (one pair, one fold, 83 features of 1h/2h/4h candles, window 48) in a "
        "fresh subprocess: RSS after imports, after loading the study data, then (after an untimed "
        "short fit that pays Lightning's lazy imports) the peak RSS during the trial (VmHWM after "
        "resetting it via /proc/self/clear_refs) minus the RSS before it. References: the bytes of "
        "a copied (n_train, W, F) float32 window tensor of the fold, and the bytes of the worker's "
        "feature matrix.",
        _memory,
        _ratio_below(1.0),
    ),
    Figure(
        "pbo",
        "7. probability of backtest overfitting, vectorised CSCV",
        "`benchmarks.pbo.bench_pbo`: the vectorised CSCV against the per-combination reference "
        "(the same Sharpe metric passed as a plain callable), best of the repeats, on synthetic "
        "N(0, 1) returns (exact-arithmetic check only); the run stops if the two paths' logits "
        "differ.",
        _pbo,
        _info_only,
    ),
    Figure(
        "ensemble",
        "8. an ensemble of 4 members vs 4 single fits",
        "`benchmarks.ensemble.bench_ensemble`: `lstm.train.fit_ensemble` with 4 seeds (members "
        "share the scaler, windows and device tensors) against 4 `fit_predict` calls with the same "
        "seeds, on 2,880 rows of real BTC/USDT 1h features and the default space's middle-sized "
        "LSTM; the run stops if a member differs from its single fit. Median of alternating "
        "rounds; goal from issue 12: <= 1.0 on CPU, <= 0.35 on a GPU.",
        _ensemble,
        _ratio_below(1.0 + 1e-9),
    ),
    Figure(
        "gpu-ensemble",
        "G5. an ensemble of 4 members vs 4 single fits on the GPU",
        "As figure 8 on the first CUDA device (members train one after another on the shared "
        "tensors).",
        _gpu_ensemble,
        _ratio_below(0.35 + 1e-9),
        gpu=True,
    ),
    Figure(
        "gpu-training",
        "G1. LSTM training throughput on the GPU vs a plain DataLoader loop",
        "As figure 4 on the first CUDA device (the reference copies each batch host-to-device).",
        _gpu_training,
        _judge_training("cuda"),
        gpu=True,
    ),
    Figure(
        "gpu-precision",
        "G2. bf16 vs fp32 training on the GPU",
        "`fit_predict` with `precision: bf16` (autocast) vs `32`, same model and data as figure 4, "
        "rounds alternating.",
        _gpu_precision,
        _info_only,
        gpu=True,
    ),
    Figure(
        "gpu-workers",
        "G3. 1, 2 and 4 workers sharing one GPU",
        "As figure 5 with `training.accelerator: cuda`, N = 1, 2, 4 worker processes on one GPU; "
        "GPU utilisation sampled with nvidia-smi every 0.5 s during each run.",
        _gpu_workers,
        _info_only,
        gpu=True,
    ),
    Figure(
        "gpu-study",
        "G4. configs/gpu.yaml study, trials/hour",
        "The full GPU study (configs/gpu.yaml, search_spaces/gpu.yaml) with 4 workers for 10 "
        "minutes; unfinished trials count with the share of their folds already reported (full "
        "mode only).",
        _gpu_study,
        _info_only,
        gpu=True,
    ),
)


def run_figure(fig: Figure, quick: bool) -> report.FigureResult:
    """Run one figure; an exception becomes the figure's error (the others still run)."""
    result = report.FigureResult(fig.key, fig.title, fig.method)
    t0 = time.perf_counter()
    try:
        rows = fig.run(quick)
    except Exception as exc:  # reported in the table, the run goes on
        logger.exception("%s failed", fig.title)
        result.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    else:
        for row in rows:
            row["met"] = fig.judge(row)
        result.rows = rows
    result.seconds = time.perf_counter() - t0
    return result


def _notes(cuda: bool, load_start: str, load_end: str) -> list[str]:
    notes = []
    if not cuda:
        notes.append(
            f"{NO_CUDA}: figures G1-G4 (training throughput and GPU utilisation with 1, 2 and 4 "
            "workers sharing one GPU, bf16 vs fp32, configs/gpu.yaml trials/hour) run only where "
            "torch sees a CUDA device; this run had none."
        )
    cores = report.usable_cores()
    shared = (
        f"Other jobs may share this machine's {cores} cores: the load averages at the start and "
        "the end of the run are listed above. Figures 1, 2, 4 and 7 alternate ours and the "
        "reference (or take medians/best-of over repeats), so both sides see the same load; "
        "figures 3 and 5 run whole trials and move most with the load; figure 5 (N workers "
        "competing with other processes for the same cores) is the most affected."
    )
    try:
        busiest = max(float(x) for part in (load_start, load_end) for x in part.split(" / "))
    except ValueError:
        busiest = None
    if busiest is not None and busiest > 0.5 * cores:
        shared += (
            f" In this run the load average reached {busiest:.2f}: absolute figures are lower than "
            "on an idle machine."
        )
    notes.append(shared)
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes (< 3 minutes on 2 cores)"
    )
    parser.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        help=f"Markdown page to write (default {DEFAULT_OUT.relative_to(REPO_ROOT)}; '' to skip)",
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated figure keys to run: " + ", ".join(f.key for f in FIGURES),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    keys = {f.key for f in FIGURES}
    only = None if args.only is None else {k.strip() for k in args.only.split(",") if k.strip()}
    if only is not None and not only <= keys:
        parser.error(
            f"--only must name figures among {sorted(keys)}, but got {sorted(only - keys)}."
        )

    with warnings.catch_warnings():
        if not args.verbose:
            warnings.simplefilter("ignore")
        return _run(args, only, sys.argv[1:] if argv is None else argv)


def _run(args: argparse.Namespace, only: set[str] | None, argv: list[str]) -> int:
    from benchmarks.gpu import cuda_available

    cuda = cuda_available()
    machine, run = report.machine_info(), report.run_info(argv)
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick" if args.quick else "full"
    print(
        f"benchmarks ({mode}) on {machine['cpu']}, {machine['cores']}, {machine['ram']} RAM; "
        f"device: {machine['device']}",
        flush=True,
    )
    if not cuda:
        print(NO_CUDA, flush=True)
    t_start = time.perf_counter()
    results = []
    for fig in FIGURES:
        if only is not None and fig.key not in only:
            continue
        if fig.gpu and not cuda:
            continue
        if fig.key == "workers" and _n_workers() < 2:
            results.append(
                report.FigureResult(
                    fig.key, fig.title, fig.method, skipped="one usable core: no scaling to measure"
                )
            )
            continue
        if fig.key == "gpu-study" and args.quick:
            results.append(
                report.FigureResult(fig.key, fig.title, fig.method, skipped="full mode only")
            )
            continue
        print(f"running {fig.title} ...", flush=True)
        results.append(run_figure(fig, args.quick))
        print(report.text_table(results[-1:]), flush=True)
    total = time.perf_counter() - t_start
    load_end = report.load_average()
    missed, failed = report.shortfalls(results)
    print(f"\ndone in {total:.0f} s; goals not met: {len(missed)}; failed figures: {len(failed)}")
    if args.out:
        out = Path(args.out)
        report.write(
            out,
            report.markdown(
                results,
                machine,
                run,
                date=date,
                mode=mode,
                seconds=total,
                load_end=load_end,
                notes=_notes(cuda, run["load"], load_end),
            ),
        )
        print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
