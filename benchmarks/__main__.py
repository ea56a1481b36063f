"""``python -m benchmarks`` (``make bench``): run the sections, print them, write the page.

``--quick`` runs smaller sizes; the GPU sections (G1-G5) run only when torch sees a CUDA device;
the sections of ``NAMED_ONLY`` (hours of training in full) only when ``--only`` names them.
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
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from benchmarks import REPO_ROOT, Skipped

log = logging.getLogger("benchmarks")
NO_CUDA = "no CUDA device: the GPU sections (G1-G5) were skipped"
PACKAGES = ("torch", "lightning", "optuna", "freqtrade", "numba", "numpy", "pandas", "TA-Lib")


TITLES = {
    "backtest": "1. backtest engine vs freqtrade's Backtesting",
    "target": "2. T(w) for new weights via the precomputed basis",
    "overhead": "3. per-trial overhead outside model training",
    "training": "4. LSTM training throughput vs a plain DataLoader loop",
    "workers": "5. trials/hour with 1 vs N worker processes",
    "memory": "6. peak memory of a worker during a trial vs its data",
    "pbo": "7. probability of backtest overfitting, vectorised CSCV",
    "ensemble": "8. an ensemble of 4 members vs 4 single fits",
    "futures": "9. futures backtest engine vs freqtrade's futures Backtesting",
    "cluster": "10. run --cluster local (Dask) vs run --workers, and the scheduler's overhead",
    "selection": "11. choosing the winner under seed noise: regret of the race vs best 3 x 3",
    "gpu-training": "G1. LSTM training throughput on the GPU vs a DataLoader loop",
    "gpu-precision": "G2. bf16 vs fp32 training on the GPU",
    "gpu-workers": "G3. 1, 2 and 4 workers sharing one GPU",
    "gpu-study": "G4. configs/gpu.yaml study, trials/hour",
    "gpu-ensemble": "G5. an ensemble of 4 members vs 4 single fits on the GPU",
}
SECTIONS = {  # key: (module, quick arguments or None to skip the quick run, full arguments)
    "backtest": ("backtest", {"repeats": 10, "rounds": 1}, {}),
    "target": ("target", {"n_weights": 5, "repeats": 20}, {}),
    "overhead": ("overhead", {"default_trials": 2, "smoke_trials": 3}, {}),
    "training": ("training", {"seconds": 2}, {}),
    "workers": ("workers", {"trials_per_worker": 3}, {}),
    "memory": ("memory", {"train_days": 120}, {}),
    "pbo": ("pbo", {"n_splits": 12, "repeat": 1}, {}),
    "ensemble": ("ensemble", {"rounds": 1}, {}),
    "futures": ("futures", {"repeats": 10, "rounds": 1}, {}),
    "cluster": ("cluster", {"trials_per_worker": 3, "rounds": 1}, {}),
    "selection": ("selection", {"studies": 2, "trials": 10, "seed_sets": 8, "splits": 50}, {}),
    "gpu-training": ("training", {"device": "cuda", "seconds": 2}, {"device": "cuda"}),
    "gpu-precision": ("precision", {"seconds": 3}, {}),
    "gpu-workers": ("workers", {"cuda": True, "trials_per_worker": 3}, {"cuda": True}),
    "gpu-study": ("gpu_study", None, {}),
    "gpu-ensemble": ("ensemble", {"device": "cuda", "rounds": 1}, {"device": "cuda"}),
}
"""A section runs ``benchmarks.<module>.bench_<module>``; that module's docstring is its method."""
NAMED_ONLY = ("selection",)
"""Sections a run includes only when ``--only`` names them: the selection figure trains 4 studies
of 20 trials and 16 fresh seed sets of every trial (1,360 evaluations) in its full size."""


def fmt(x: float) -> str:
    """A table figure: thousands separators from 1000 on, 3 significant digits below."""
    if not math.isfinite(x):
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


VERDICT = {True: "yes", False: "**no**", None: "info"}


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout


def machine() -> dict[str, str]:
    """The page's header: machine, device, software, code revision, load."""
    import torch

    cpu = re.findall(r"model name\s*: (.+)", Path("/proc/cpuinfo").read_text())[:1] or ["CPU"]
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    device = "CPU only (no CUDA device)"
    if torch.cuda.is_available():
        device = f"CUDA: {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    versions = [f"{name} {metadata.version(name)}" for name in PACKAGES]
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs")
    return {
        "machine": f"{cpu[0]}, {os.cpu_count()} logical ({len(os.sched_getaffinity(0))} usable), "
        f"{ram:.1f} GiB RAM; {platform.system()} {platform.release()}",
        "device": device,
        "software": f"Python {platform.python_version()}; {', '.join(versions)}",
        "code": f"revision {_git('rev-parse', '--short', 'HEAD').strip()}" + "+dirty" * bool(dirty),
        "load average (1/5/15 min) at start": "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg()),
    }


def markdown(results: list[dict], run: dict[str, str], notes: list[str]) -> str:
    """The ``docs/benchmarks.md`` page from the sections' results (key, rows, error, seconds)."""
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = [
        "# Benchmarks\n\nGenerated by `make bench` (`python -m benchmarks`); rerun it to refresh "
        "this page, do not edit the figures by hand. Every figure is a ratio against a reference "
        "measured in the same run on the same machine; absolute values depend on the machine and "
        "its load, the ratios much less.\n\n## Run\n",
        *(f"- {k}: {v}" for k, v in run.items()),
        "\n## Figures\n\n`ratio` = ours / reference. For throughputs (per second) > 1 means ours "
        "is faster; for costs (seconds, MiB) < 1 means ours is cheaper. `met` compares the ratio "
        "with the goal.\n",
        "| # | figure | ours | reference | unit | ratio | goal | met |",
        "|---|---|---:|---:|---|---:|---|---|",
    ]
    missed, methods = [], []
    for res in results:
        title, module = TITLES[res["key"]], SECTIONS[res["key"]][0]
        number, what = title.split(". ", 1)
        if res["error"]:
            out.append(f"| {number} | {what}: {cell(res['error'])} |||||||")
            if res["error"].startswith("failed"):
                missed.append(f"- {title}: the benchmark {res['error']}.")
        for r in res["rows"]:
            out.append(
                f"| {number} | {cell(r.name)} | {fmt(r.value)} | {fmt(r.reference)} | {r.unit} "
                f"| {fmt(r.ratio)} | {cell(r.goal)} | {VERDICT[r.met]} |"
            )
            if r.met is False:
                missed.append(f"- {title}: {r.name}: ratio {fmt(r.ratio)}, goal {r.goal}.")
        doc = importlib.import_module(f"benchmarks.{module}").__doc__ or ""
        method = " ".join(doc.replace(":func:", "").replace("``", "`").split())
        methods.append(f"**{title}** ({res['seconds']:.0f} s). {method}\n")
    out += ["\n## Goals not met\n", *(missed or ["None: every figure with a goal met it."])]
    out += ["\n## Notes\n", *(f"- {n}" for n in notes)] if notes else []
    out += ["\n## How each figure is measured\n", *methods]
    return "\n".join(out).rstrip() + "\n"


def run_section(key: str, quick: bool) -> dict:
    """Rows of one section; a failure or a skip becomes its ``error`` (the others still run)."""
    res: dict = {"key": key, "rows": [], "error": None}
    t0 = time.perf_counter()
    module, quick_kw, full_kw = SECTIONS[key]
    try:
        if quick and quick_kw is None:
            raise Skipped("full mode only")
        bench = getattr(importlib.import_module(f"benchmarks.{module}"), f"bench_{module}")
        res["rows"] = bench(**(quick_kw if quick else full_kw))
    except Skipped as exc:
        res["error"] = f"skipped: {exc}"
    except Exception as exc:
        log.exception("%s failed", key)
        res["error"] = f"failed: {type(exc).__name__}: {exc}"
    res["seconds"] = time.perf_counter() - t0
    return res


def chosen_sections(only: str | None) -> list[str]:
    """The section keys a run measures: those ``only`` names (comma-separated), else every one
    but :data:`NAMED_ONLY`."""
    return [k for k in SECTIONS if k not in NAMED_ONLY] if only is None else only.split(",")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections; 1 if one failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--only", help="comma-separated keys: " + ", ".join(SECTIONS))
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    args = parser.parse_args(argv)
    keys = chosen_sections(args.only)
    if unknown := sorted(set(keys) - set(SECTIONS)):
        parser.error(f"--only must name sections among {list(SECTIONS)}, but got {unknown}.")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    import torch

    cuda = torch.cuda.is_available()
    run = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **machine()}
    notes = [] if cuda else [NO_CUDA]
    if skipped := [k for k in NAMED_ONLY if k not in keys]:
        notes.append(
            f"run only when named (`--only {','.join(skipped)}`): "
            + ", ".join(TITLES[k] for k in skipped)
        )
    print(f"benchmarks on {run['machine']}; device: {run['device']}", *notes, sep="\n")
    t0, results = time.perf_counter(), []
    with warnings.catch_warnings():
        warnings.simplefilter("default" if args.verbose else "ignore")
        for key in (k for k in keys if cuda or not k.startswith("gpu-")):
            results.append(run_section(key, args.quick))
            print(f"{TITLES[key]}  [{results[-1]['seconds']:.0f} s] {results[-1]['error'] or ''}")
            for r in results[-1]["rows"]:
                print(
                    f"    ratio {fmt(r.ratio):>9}  ours {fmt(r.value)} vs ref {fmt(r.reference)}"
                    f" {r.unit}\n        {r.name}  (goal {r.goal}: {VERDICT[r.met].strip('*')})",
                    flush=True,
                )
    cli = " ".join(sys.argv[1:] if argv is None else argv)
    run["mode"] = f"{'quick' if args.quick else 'full'} (`python -m benchmarks {cli}`), "
    run["mode"] += f"{time.perf_counter() - t0:.0f} s in total"
    run["load average at end"] = "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())
    if args.out:
        Path(args.out).write_text(markdown(results, run, notes))
        print(f"wrote {args.out}")
    return 1 if any((r["error"] or "").startswith("failed") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
