"""Installed like a library: the package list, the shipped files, and a non-editable install that
runs a study from outside the source tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from base.paths import SHIPPED, resolve_path, shipped, source_root

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _tree_packages() -> set[str]:
    """What ``pyproject.toml`` must list: every Python package of the four installed packages,
    the replay strategy folder, and the shipped folders (with their sub-folders) as ``base._*``."""
    found = set()
    for top in ("base", "lstm", "strategy", "optimize"):
        for init in (REPO_ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(REPO_ROOT).parts))
    found.add("strategy.freqtrade.replay")
    for folder, inside in SHIPPED.items():
        root = REPO_ROOT / folder
        for sub in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            found.add(".".join(("base", inside, *sub.relative_to(root).parts)))
    return found


def test_pyproject_lists_every_package_of_the_tree():
    setuptools = PYPROJECT["tool"]["setuptools"]
    assert set(setuptools["packages"]) == _tree_packages()
    assert setuptools["package-dir"] == {f"base.{v}": k for k, v in SHIPPED.items()}


def test_shipped_files_are_found_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert source_root() == REPO_ROOT  # a source checkout reads its own folders
    for name in ("configs/smoke.yaml", "search_spaces/smoke.yaml"):
        assert resolve_path(name) == REPO_ROOT / name
    assert shipped("configs/markets/binance_futures.json").is_file()
    assert shipped("configs/freqtrade/freqai_template.json").is_file()
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "smoke.yaml").write_text("{}\n")  # a user's own copy wins
    assert resolve_path("configs/smoke.yaml") == Path("configs/smoke.yaml")


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow  # about 2 min (machine loaded, warm pip cache): fresh virtualenv, 1-trial study
def test_a_non_editable_install_runs_a_smoke_study_outside_the_source_tree(tmp_path):
    """``pip install .`` (not editable) into a fresh virtualenv; from another directory, with
    the shipped config and space named as in the source tree and the candles given with
    ``--data-dir``: a study runs, reports and exports; the package never reads the source tree."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, dict(os.environ), 120)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    # the pinned CPU build first (from the local wheels), as `make install` does
    _run([python, "-m", "pip", "install", "-q", "torch==2.13.0"], tmp_path, env, 900)
    _run([python, "-m", "pip", "install", "-q", str(REPO_ROOT)], tmp_path, env, 1800)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run(
        [
            python,
            "-c",
            "import base.paths as p, optimize; print(p.source_root(), optimize.__file__)",
        ],
        work,
        env,
        120,
    ).split()
    assert where[0] == "None" and str(venv) in where[1], where  # the installed copy, no checkout
    storage = f"sqlite:///{work / 'study.db'}"
    study = ["--storage", storage, "--study-name", "installed"]
    run = [python, "-m", "optimize", "run", "--config", "configs/smoke.yaml"]
    run += ["--space", "search_spaces/smoke.yaml", "--data-dir", str(REPO_ROOT / "data")]
    out = _run([*run, *study, "--n-trials", "1", "--workers", "1"], work, env, 900)
    assert "trials: complete 1" in out, out
    report = json.loads(
        _run([python, "-m", "optimize", "report", *study, "--json", "--no-holdout"], work, env, 300)
    )
    assert report["selected_trial"] == 0 and report["study"] == "installed"
    exported = _run(
        [python, "-m", "optimize", "export", *study, "--out", str(work / "export")], work, env, 600
    )
    assert "exported trial 0" in exported
    config = json.loads((work / "export" / "config.json").read_text())
    assert config["lstm_optuna"]["datadir"] == str(REPO_ROOT / "data")
    assert str(venv) in config["lstm_optuna"]["markets"]  # the installed copy of the markets
