"""What a benchmark run records: the machine, the run, and the table of figures (text, Markdown).

Pure formatting apart from :func:`machine_info` and :func:`run_info`, which read the machine
(``/proc``, ``os``, torch, git) once per run.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from optimize.data import REPO_ROOT

PACKAGES = ("torch", "lightning", "optuna", "freqtrade", "numba", "numpy", "pandas", "TA-Lib")


@dataclass
class FigureResult:
    """One figure of the run: its rows (each with a ``met`` verdict), or the error that stopped it.

    Attributes:
        key: short name (``backtest``, ``target``, ...).
        title: heading, e.g. ``"1. backtest engine vs freqtrade's Backtesting"``.
        method: how it is measured and against which reference (no figures).
        rows: benchmark rows (see :mod:`benchmarks`) plus ``met``: True, False or None (info).
        seconds: wall time of the figure.
        error: ``"ExceptionType: message"`` when the figure failed, else None.
        skipped: why the figure was not run, else None.
    """

    key: str
    title: str
    method: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    skipped: str | None = None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


def machine_info() -> dict[str, str]:
    """CPU model, cores, RAM, OS, the compute device and package versions."""
    import torch

    cores = os.cpu_count() or 1
    usable = usable_cores()
    ram = _ram_bytes()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        device = (
            f"CUDA: {torch.cuda.device_count()} x {props.name} "
            f"({props.total_memory / 2**30:.0f} GiB)"
        )
    else:
        device = "CPU only (no CUDA device)"
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": _cpu_model(),
        "cores": f"{cores} logical ({usable} usable by this process)",
        "ram": f"{ram / 2**30:.1f} GiB" if ram else "unknown",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "device": device,
        "python": platform.python_version(),
        "packages": ", ".join(versions),
    }


def run_info(argv: list[str]) -> dict[str, str]:
    """The command (``argv``: the bench's arguments), the code revision (``+dirty`` when tracked
    files have uncommitted changes) and the load average."""
    try:
        rev = _git("rev-parse", "--short", "HEAD")
        # the page being rewritten does not make the measured code dirty
        dirty = _git(
            "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/benchmarks.md"
        )
        revision = (rev + ("+dirty" if dirty else "")) if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        revision = "unknown"
    return {
        "command": " ".join(["python -m benchmarks", *argv]),
        "revision": revision,
        "load": load_average(),
    }


def _git(*args: str) -> str:
    """Stripped stdout of ``git ARGS`` in the repository (raises OSError/SubprocessError)."""
    return subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False
    ).stdout.strip()


def load_average() -> str:
    """1/5/15-minute load averages as text (``"n/a"`` where the OS has none)."""
    try:
        return "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())
    except (OSError, AttributeError):
        return "n/a"


def fmt(x: Any) -> str:
    """A figure for a table: thousands separators for large values, 3 significant digits else."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    if not math.isfinite(x):
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def verdict(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "info"}[met]


def text_table(figures: list[FigureResult]) -> str:
    """Plain-text table for the console: one line per row, ratio first."""
    lines = []
    for fig in figures:
        lines.append(f"{fig.title}  [{fig.seconds:.0f} s]")
        if fig.skipped:
            lines.append(f"    skipped: {fig.skipped}")
        if fig.error:
            lines.append(f"    ERROR: {fig.error}")
        for r in fig.rows:
            lines.append(
                f"    ratio {fmt(r['ratio']):>9}  ours {fmt(r['value'])} vs ref "
                f"{fmt(r['reference'])} {r['unit']}  goal {r['goal']} -> "
                f"{verdict(r.get('met')).strip('*')}"
            )
            lines.append(f"        {r['name']}")
    return "\n".join(lines)


def shortfalls(
    figures: list[FigureResult],
) -> tuple[list[tuple[FigureResult, dict[str, Any]]], list[FigureResult]]:
    """``(missed, failed)``: each row whose goal was not met with its figure, the failed figures."""
    missed = [(fig, r) for fig in figures for r in fig.rows if r.get("met") is False]
    return missed, [fig for fig in figures if fig.error]


def markdown(
    figures: list[FigureResult],
    machine: dict[str, str],
    run: dict[str, str],
    *,
    date: str,
    mode: str,
    seconds: float,
    load_end: str,
    notes: list[str],
) -> str:
    """The whole ``docs/benchmarks.md`` page."""
    out = [
        "# Benchmarks",
        "",
        (
            "Generated by `make bench` (`python -m benchmarks`); rerun it to refresh this page, do "
            "not edit the figures by hand. Every figure is a ratio against a reference measured in "
            "the same run on the same machine; absolute values depend on the machine and its load, "
            "the ratios much less."
        ),
        "",
        "## Run",
        "",
        f"- date: {date}",
        f"- mode: {mode} (`{run['command']}`), {seconds:.0f} s in total",
        f"- code: revision {run['revision']}",
        f"- machine: {machine['cpu']}, {machine['cores']}, {machine['ram']} RAM; {machine['os']}",
        f"- device: {machine['device']}",
        f"- software: Python {machine['python']}; {machine['packages']}",
        f"- load average (1/5/15 min) at start: {run['load']}; at end: {load_end}",
        "",
        "## Figures",
        "",
        (
            "`ratio` = ours / reference. For throughputs (per second) > 1 means ours is faster; "
            "for costs (seconds, MiB) < 1 means ours is cheaper. `met` compares the figure with "
            "the goal of issue 8."
        ),
        "",
        "| # | figure | ours | reference | unit | ratio | goal | met |",
        "|---|---|---:|---:|---|---:|---|---|",
    ]
    for fig in figures:
        number = fig.title.split(".", 1)[0]
        if fig.skipped or fig.error:
            what = f"skipped: {fig.skipped}" if fig.skipped else f"failed: {fig.error}"
            out.append(f"| {number} | {fig.title.split('. ', 1)[-1]}: {_cell(what)} | | | | | | |")
        for r in fig.rows:
            out.append(
                f"| {number} | {_cell(r['name'])} | {fmt(r['value'])} | {fmt(r['reference'])} | "
                f"{r['unit']} | {fmt(r['ratio'])} | {_cell(r['goal'])} | {verdict(r.get('met'))} |"
            )
    missed, failed = shortfalls(figures)
    out += ["", "## Goals not met", ""]
    if not missed and not failed:
        out.append("None: every figure with a goal met it in this run.")
    for fig, r in missed:
        out.append(f"- {fig.title}: {r['name']}: ratio {fmt(r['ratio'])}, goal {r['goal']}.")
    for fig in failed:
        out.append(f"- {fig.title}: the benchmark failed ({fig.error}).")
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    out += ["", "## How each figure is measured", ""]
    for fig in figures:
        out += [f"**{fig.title}** ({fig.seconds:.0f} s). {fig.method}", ""]
    return "\n".join(out).rstrip() + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
