"""``python -m benchmarks`` (``make bench``): every benchmark figure against its reference, one run.

Prints each section's rows and writes ``docs/benchmarks.md`` (date, machine, the table, unmet
goals, and how each figure is measured: the docstring of the module that measures it).
``--quick`` runs smaller sizes; the GPU sections run only when torch sees a CUDA device.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import os
import platform
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from benchmarks import Row
from optimize.data import REPO_ROOT

DEFAULT_OUT = REPO_ROOT / "docs" / "benchmarks.md"
NO_CUDA = "no CUDA device: the GPU sections (G1-G5) were skipped"
PACKAGES = ("torch", "lightning", "optuna", "freqtrade", "numba", "numpy", "pandas", "TA-Lib")


class Skipped(Exception):
    """A section that cannot run here; the message says why."""


def _n_workers() -> int:
    return min(len(os.sched_getaffinity(0)), 4)


def backtest(quick: bool) -> list[Row]:
    from benchmarks.backtest import bench_backtest

    return bench_backtest(repeats=10 if quick else 30, rounds=1 if quick else 3)


def target(quick: bool) -> list[Row]:
    from benchmarks.target import bench_target

    return bench_target(n_weights=5 if quick else 20, repeats=20 if quick else 50)


def overhead(quick: bool) -> list[Row]:
    from benchmarks.study import DEFAULT_SIZE_CONFIG, DEFAULT_SIZE_LSTM, bench_trial_overhead

    label = "default-study trial shape (90-day folds, 1h/2h/4h features, LSTM 2x32, W=12, 6 epochs)"
    rows = bench_trial_overhead(
        n_trials=2 if quick else 3,
        lstm=DEFAULT_SIZE_LSTM,
        overrides=DEFAULT_SIZE_CONFIG,
        label=label,
    )
    return rows + bench_trial_overhead(n_trials=3 if quick else 6, judged=False)


def training(quick: bool, device: str = "cpu") -> list[Row]:
    from benchmarks.training import bench_training

    return bench_training(device, seconds=2 if quick else 20)


def workers(quick: bool, accelerator: str = "cpu") -> list[Row]:
    from benchmarks.workers import bench_workers

    if accelerator == "cuda":
        from benchmarks.gpu import gpu_utilisation

        counts, sample = (1, 2, 4), gpu_utilisation
    elif _n_workers() < 2:
        raise Skipped("one usable core: no scaling to measure")
    else:
        counts, sample = (1, _n_workers()), None
    return bench_workers(
        workers=counts,
        trials_per_worker=3 if quick else (4 if accelerator == "cuda" else 8),
        accelerator=accelerator,
        one_thread_reference=sample is None,
        sample=sample,
    )


def memory(quick: bool) -> list[Row]:
    from benchmarks.memory import bench_memory

    return bench_memory(train_days=120 if quick else 365)


def pbo(quick: bool) -> list[Row]:
    from benchmarks.pbo import bench_pbo

    return bench_pbo(n_splits=12, repeat=1) if quick else bench_pbo(n_splits=16, repeat=2)


def ensemble(quick: bool, device: str = "cpu") -> list[Row]:
    from benchmarks.ensemble import bench_ensemble

    return bench_ensemble(device, rounds=1 if quick else 3)


def gpu_precision(quick: bool) -> list[Row]:
    from benchmarks.gpu import bench_precision

    return bench_precision(seconds=3 if quick else 10)


def gpu_study(quick: bool) -> list[Row]:
    from benchmarks.gpu import bench_gpu_study

    if quick:
        raise Skipped("full mode only")
    return bench_gpu_study(seconds=600, workers=4)


SECTIONS: dict[str, tuple[str, str, Callable[[bool], list[Row]]]] = {
    "backtest": ("1. backtest engine vs freqtrade's Backtesting", "backtest", backtest),
    "target": ("2. T(w) for new weights via the precomputed basis", "target", target),
    "overhead": ("3. per-trial overhead outside model training", "study", overhead),
    "training": ("4. LSTM training throughput vs a plain DataLoader loop", "training", training),
    "workers": ("5. trials/hour with 1 vs N worker processes", "workers", workers),
    "memory": ("6. peak memory of a worker during a trial vs its data", "memory", memory),
    "pbo": ("7. probability of backtest overfitting, vectorised CSCV", "pbo", pbo),
    "ensemble": ("8. an ensemble of 4 members vs 4 single fits", "ensemble", ensemble),
    "gpu-training": (
        "G1. LSTM training throughput on the GPU vs a DataLoader loop",
        "gpu",
        lambda quick: training(quick, "cuda"),
    ),
    "gpu-precision": ("G2. bf16 vs fp32 training on the GPU", "gpu", gpu_precision),
    "gpu-workers": (
        "G3. 1, 2 and 4 workers sharing one GPU",
        "gpu",
        lambda quick: workers(quick, "cuda"),
    ),
    "gpu-study": ("G4. configs/gpu.yaml study, trials/hour", "gpu", gpu_study),
    "gpu-ensemble": (
        "G5. an ensemble of 4 members vs 4 single fits on the GPU",
        "gpu",
        lambda quick: ensemble(quick, "cuda"),
    ),
}
"""Key -> (title, module ``benchmarks.<module>`` whose docstring says how it is measured, run)."""


@dataclass
class Result:
    """One section of the run: its rows, or why it did not run (``skipped``) or failed."""

    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    skipped: str | None = None

    @property
    def method(self) -> str:
        """The measuring module's docstring as one Markdown paragraph."""
        doc = importlib.import_module(f"benchmarks.{SECTIONS[self.key][1]}").__doc__ or ""
        return " ".join(re.sub(r":\w+:`~?|``", "`", doc).split())


def run_section(key: str, quick: bool) -> Result:
    """Run one section; an exception becomes its error (the other sections still run)."""
    title, _, fn = SECTIONS[key]
    result = Result(key, title)
    t0 = time.perf_counter()
    try:
        result.rows = fn(quick)
    except Skipped as exc:
        result.skipped = str(exc)
    except Exception as exc:
        logging.getLogger("benchmarks").exception("%s failed", key)
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - t0
    return result


def fmt(x: float) -> str:
    """A figure for a table: thousands separators from 1000 on, 3 significant digits below."""
    if not math.isfinite(x):
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def verdict(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "info"}[met]


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True)
    except OSError:
        return ""
    return out.stdout.strip()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def machine() -> dict[str, str]:
    """What the page records about the run's machine and code."""
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln]
    cpu = models[0] if models else platform.machine()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    device = "CPU only (no CUDA device)"
    if torch.cuda.is_available():
        device = f"CUDA: {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    versions = [f"{name} {_version(name)}" for name in PACKAGES if _version(name)]
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/benchmarks.md")
    return {
        "machine": f"{cpu}, {os.cpu_count()} logical ({len(os.sched_getaffinity(0))} usable), "
        f"{ram:.1f} GiB RAM; {platform.system()} {platform.release()}",
        "device": device,
        "software": f"Python {platform.python_version()}; {', '.join(versions)}",
        "code": f"revision {_git('rev-parse', '--short', 'HEAD') or 'unknown'}"
        + ("+dirty" if dirty else ""),
        "load average (1/5/15 min) at start": "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg()),
    }


def markdown(results: list[Result], run: dict[str, str], notes: list[str]) -> str:
    """The whole ``docs/benchmarks.md`` page."""
    out = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m benchmarks`); rerun it to refresh this page, do not "
        "edit the figures by hand. Every figure is a ratio against a reference measured in the "
        "same run on the same machine; absolute values depend on the machine and its load, the "
        "ratios much less.",
        "",
        "## Run",
        "",
        *(f"- {k}: {v}" for k, v in run.items()),
        "",
        "## Figures",
        "",
        "`ratio` = ours / reference. For throughputs (per second) > 1 means ours is faster; for "
        "costs (seconds, MiB) < 1 means ours is cheaper. `met` compares the ratio with the goal.",
        "",
        "| # | figure | ours | reference | unit | ratio | goal | met |",
        "|---|---|---:|---:|---|---:|---|---|",
    ]
    missed = []
    for res in results:
        number = res.title.split(".", 1)[0]
        if res.skipped or res.error:
            what = f"skipped: {res.skipped}" if res.skipped else f"failed: {res.error}"
            out.append(f"| {number} | {res.title.split('. ', 1)[-1]}: {_cell(what)} |||||||")
            if res.error:
                missed.append(f"- {res.title}: the benchmark failed ({res.error}).")
        for r in res.rows:
            out.append(
                f"| {number} | {_cell(r.name)} | {fmt(r.value)} | {fmt(r.reference)} | {r.unit} | "
                f"{fmt(r.ratio)} | {_cell(r.goal)} | {verdict(r.met)} |"
            )
            if r.met is False:
                missed.append(f"- {res.title}: {r.name}: ratio {fmt(r.ratio)}, goal {r.goal}.")
    out += ["", "## Goals not met", ""]
    out += missed or ["None: every figure with a goal met it in this run."]
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    out += ["", "## How each figure is measured", ""]
    for res in results:
        out += [f"**{res.title}** ({res.seconds:.0f} s). {res.method}", ""]
    return "\n".join(out).rstrip() + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _print(res: Result) -> None:
    print(f"{res.title}  [{res.seconds:.0f} s]" + (f"  skipped: {res.skipped}" * bool(res.skipped)))
    if res.error:
        print(f"    ERROR: {res.error}")
    for r in res.rows:
        print(
            f"    ratio {fmt(r.ratio):>9}  ours {fmt(r.value)} vs ref {fmt(r.reference)} {r.unit}"
        )
        print(f"        {r.name}  (goal {r.goal}: {verdict(r.met).strip('*')})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="page to write ('' to skip)")
    parser.add_argument("--only", help="comma-separated keys: " + ", ".join(SECTIONS))
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    args = parser.parse_args(argv)
    keys = list(SECTIONS) if args.only is None else [k.strip() for k in args.only.split(",")]
    if unknown := sorted(set(keys) - set(SECTIONS)):
        parser.error(f"--only must name sections among {list(SECTIONS)}, but got {unknown}.")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    import torch

    cuda = torch.cuda.is_available()
    run = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **machine()}
    mode = "quick" if args.quick else "full"
    print(f"benchmarks ({mode}) on {run['machine']}; device: {run['device']}", flush=True)
    notes = [] if cuda else [NO_CUDA]
    print(*notes, sep="\n", flush=True)
    t0 = time.perf_counter()
    results = []
    with warnings.catch_warnings():
        if not args.verbose:
            warnings.simplefilter("ignore")
        for key in keys:
            if key.startswith("gpu-") and not cuda:
                continue
            results.append(run_section(key, args.quick))
            _print(results[-1])
    run["mode"] = (
        f"{mode} (`python -m benchmarks {' '.join(sys.argv[1:] if argv is None else argv)}`)"
    )
    run["mode"] += f", {time.perf_counter() - t0:.0f} s in total"
    run["load average at end"] = "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())
    if args.out:
        Path(args.out).write_text(markdown(results, run, notes))
        print(f"wrote {args.out}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
