"""The study report: pure pieces (CSCV splits, DSR/PBO inputs, verdict), the page
on a real smoke study, rendered in headless Chromium without JavaScript errors and offline, the
CLI, and the holdout evaluated once across reports.
"""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pytest
from plotly.offline import get_plotlyjs

import optimize.evaluation.walk as walk_mod
from optimize.analysis import stats
from optimize.analysis.html import SECTIONS, default_report_path, render, write_report
from optimize.analysis.pbo import probability_of_backtest_overfitting
from optimize.analysis.report import DSR_THRESHOLD, collect, overfitting_stats, pbo_splits, verdict
from optimize.cli import main
from optimize.config import load_config
from optimize.study.records import HOLDOUT_PREFIX, stored_holdouts
from optimize.study.storage import load_existing_study
from strategy.pipeline import DataPipeline

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=15000",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
)
FIGURES = ("history", "importances", "parallel", "equity", "holdout", "pbo")
SMOKE_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "smoke.yaml"
STUDY = "smoke"  # the study of conftest's smoke_study


# --------------------------------------------------------------------------- pure pieces


@pytest.mark.parametrize(
    ("days", "splits"),
    [(0, 0), (13, 0), (14, 2), (29, 4), (41, 4), (42, 6), (111, 14), (112, 16), (5000, 16)],
)
def test_pbo_splits_largest_even_with_a_week_per_block(days, splits):
    assert pbo_splits(days) == splits


@pytest.mark.parametrize("bad", [-1, 2.5, True, "10"])
def test_pbo_splits_rejects_bad_day_counts(bad):
    with pytest.raises(ValueError, match="n_days"):
        pbo_splits(bad)


def test_overfitting_stats_use_the_documented_inputs():
    rng = np.random.default_rng(7)
    trials = [rng.normal(0.001 * k, 0.02, 60) for k in range(5)]
    best = trials[4]
    out = overfitting_stats(best, [*trials, np.zeros(30)])  # a misaligned series: counted in N only
    sharpes = np.array([stats.sharpe_from_returns(r) for r in trials])
    skew, kurt = stats.returns_moments(best)
    expected = stats.deflated_sharpe_ratio(
        stats.sharpe_from_returns(best),
        n_trials=6,
        sharpe_variance=float(sharpes.var(ddof=1)),
        n_obs=60,
        skew=skew,
        kurtosis=kurt,
    )
    assert out.n_trials == 6 and out.n_days == 60
    assert out.dsr == pytest.approx(expected, rel=1e-12)
    assert out.sharpe_annual == pytest.approx(out.sharpe * math.sqrt(365))
    pbo = probability_of_backtest_overfitting(np.column_stack(trials), 8)
    assert (out.pbo_splits, out.pbo_columns, out.pbo_rows) == (8, 5, 56)
    assert out.pbo == pbo.pbo and out.pbo_logits == list(pbo.logits)


def test_overfitting_stats_explain_missing_figures():
    flat = overfitting_stats(np.zeros(40), [np.zeros(40)])
    assert flat.dsr is None and "never traded" in flat.dsr_reason
    assert flat.pbo is None and "at least 2 completed trials" in flat.pbo_reason
    short = overfitting_stats([0.01, -0.02, 0.03], [[0.01, -0.02, 0.03], [0.0, 0.01, 0.0]])
    assert short.pbo is None and "too few" in short.pbo_reason and short.dsr is not None
    empty = overfitting_stats([], [[]])
    assert empty.dsr is None and empty.pbo is None


def test_verdict_words_follow_the_numbers():
    lose = verdict(trial_number=3, profit=0.05, buy_and_hold=0.20, no_model=0.10, dsr=0.42, pbo=0.7)
    assert lose.startswith("Trial #3 does not beat buy-and-hold out of sample (+5.00% vs +20.00%)")
    assert "does not beat the no-model baseline (+10.00%)" in lose
    assert (
        f"DSR 0.42 < {DSR_THRESHOLD}: likely luck" in lose
        and "PBO 0.70: the selection is overfit" in lose
    )
    win = verdict(
        trial_number=1,
        profit=0.3,
        buy_and_hold=-0.1,
        no_model=0.0,
        dsr=0.97,
        pbo=0.1,
        holdout={"profit": 0.02, "buy_and_hold": 0.05},
    )
    assert "Trial #1 beats buy-and-hold" in win and "beats the no-model baseline" in win
    assert "unlikely to be luck" in win and "mostly holds" in win
    assert "holdout +2.00% vs buy-and-hold +5.00% (does not beat it)" in win
    assert "\n" not in win and win.endswith(".")
    assert "DSR not computable" in verdict(
        trial_number=0, profit=0, buy_and_hold=0, no_model=None, dsr=None, pbo=None
    )


def test_report_of_a_tiny_in_memory_study_degrades_gracefully():
    study = optuna.create_study(study_name="tiny", direction="maximize")
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial.set_user_attr("resolved_params", {})
    study.tell(trial, 1.0)
    page = render(collect(study, holdout=False))
    assert "need at least 2 completed trials" in page
    assert "not evaluated (--no-holdout)" in page
    assert "this section failed" not in page
    assert all(f'<section id="{sid}">' in page for sid in SECTIONS)


def test_report_of_a_multi_objective_study_uses_the_first_objective():
    study = optuna.create_study(study_name="multi", directions=["maximize", "minimize"])
    rng = np.random.default_rng(3)
    for _ in range(4):
        trial = study.ask()
        x, y = trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)
        trial.set_user_attr("resolved_params", {})
        trial.set_user_attr("oos_daily_returns", list(rng.normal(0.001 * x, 0.01, 30)))
        study.tell(trial, (x + y, y))
    inputs = collect(study, holdout=False)
    best_first = max(study.best_trials, key=lambda t: t.values[0])
    assert inputs.trial.number == best_first.number
    page = render(inputs)
    assert "this section failed" not in page
    for name in ("history", "importances", "parallel", "pbo"):
        assert f'id="fig-{name}"' in page
    assert "Pareto front, best first objective" in page


def test_default_report_path_is_safe():
    assert default_report_path("a/b c") == Path("reports/a_b_c.html")


# --------------------------------------------------------------------------- real study


@pytest.fixture(scope="module")
def reports(smoke_study, tmp_path_factory):
    """The smoke study (this module's copy); a report with --no-holdout, then two with the
    holdout; fit calls counted."""
    root = tmp_path_factory.mktemp("report")
    storage = smoke_study
    study = optuna.load_study(study_name=STUDY, storage=storage)
    calls = []
    real_fit = walk_mod.fit_pair_fold
    mp = pytest.MonkeyPatch()
    mp.setattr(walk_mod, "fit_pair_fold", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    try:
        no_holdout = write_report(study, root / "no_holdout.html", holdout=False)
        attrs_after_no_holdout = dict(study.user_attrs)
        first = write_report(study, root / "first.html")
        fits_first = len(calls)
        second = write_report(study, root / "second.html")
        fits_second = len(calls) - fits_first
    finally:
        mp.undo()
    return {
        "storage": storage,
        "study": study,
        "root": root,
        "no_holdout": no_holdout,
        "first": first,
        "second": second,
        "fits": (fits_first, fits_second),
        "attrs_no_holdout": attrs_after_no_holdout,
    }


def test_holdout_runs_once_across_reports(reports):
    pairs = len(load_config(SMOKE_CONFIG).data.pairs)
    assert reports["fits"] == (pairs, 0)
    assert not any(k.startswith(HOLDOUT_PREFIX) for k in reports["attrs_no_holdout"])
    assert "not evaluated (--no-holdout)" in reports["no_holdout"].read_text()
    study = optuna.load_study(study_name=STUDY, storage=reports["storage"])
    assert list(stored_holdouts(study)) == [study.best_trial.number]


def test_report_has_every_section_and_is_self_contained(reports):
    page = reports["first"].read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    for name in FIGURES:
        assert f'id="fig-{name}"' in page
    assert "this section failed" not in page
    assert get_plotlyjs() in page  # the bundle itself, inline
    rest = page.replace(get_plotlyjs(), "")
    assert not re.search(r"<script[^>]+src=", rest), "scripts must be inline (offline)"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", rest), "no remote resources"
    assert page.count("Plotly.newPlot") >= len(FIGURES)
    study = reports["study"]
    best = study.best_trial
    verdict_line = re.search(r'<p class="verdict">(.*?)</p>', page).group(1)
    assert verdict_line.startswith(f"Trial #{best.number} ")
    assert "holdout " in verdict_line
    for fold in best.user_attrs["folds"]:  # per-fold table rows
        assert f"{fold['test_start'][:10]} – {fold['test_end'][:10]}" in page
    oos = best.user_attrs["oos_metrics"]["profit_total"]
    assert f"{oos:.2%}" in page


def chromium_render(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """DOM after load in headless Chromium (no network) and its console messages."""
    profile = tmp_path / f"profile-{page.stem}"
    profile.mkdir()
    proc = subprocess.run(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


@needs_chromium
def test_chromium_check_catches_javascript_errors(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<html><body><div id="a"></div><script>'
        'setTimeout(function(){ Plotly.newPlot("a", []); }, 10);'
        "</script></body></html>"
    )
    _, console = chromium_render(page, tmp_path)
    assert any("Uncaught ReferenceError" in line for line in console)


@needs_chromium
def test_report_renders_in_headless_chromium_without_errors(reports, tmp_path):
    dom, console = chromium_render(reports["first"], tmp_path)
    assert console == [], console
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in dom
    for name in FIGURES:  # every figure was drawn: its div now holds plotly's SVG
        match = re.search(rf'<div id="fig-{name}"[^>]*>(.*?)</section>', dom, re.DOTALL)
        assert match and 'class="main-svg"' in match.group(1), name


def test_cli_report_writes_the_file_and_reports_errors(reports, capsys):
    out = reports["root"] / "cli" / "r.html"
    assert (
        main(["report", "--storage", reports["storage"], "--study-name", STUDY, "--out", str(out)])
        == 0
    )
    assert out.is_file() and str(out) in capsys.readouterr().out
    assert main(["report", "--storage", reports["storage"], "--study-name", "nope"]) == 2
    assert "no study named 'nope'" in capsys.readouterr().err
    missing = reports["root"] / "missing.db"
    assert main(["report", "--storage", f"sqlite:///{missing}", "--study-name", STUDY]) == 2
    assert "does not exist" in capsys.readouterr().err and not missing.exists()
    # a SQLite URL with query parameters names an existing file too (it was reported missing)
    assert load_existing_study(f"{reports['storage']}?timeout=5", STUDY).study_name == STUDY


def test_report_json_seed_noise_and_dashboard_note(reports, capsys):
    """After the robustness step: `report --json` holds every key with its type, the page has the
    seed-noise table, and the verdict + table are the study's optuna-dashboard note."""
    import json

    from optuna_dashboard._note import get_note_from_system_attrs

    from optimize.study.robustness import run_robustness
    from optimize.study.seednoise import best_by_seed_mean, race_noise

    study = optuna.load_study(study_name=STUDY, storage=reports["storage"])
    race = run_robustness(study, top=2, budget=4, seed_sets=2)
    read_noise = race_noise
    out = reports["root"] / "json" / "r.html"
    assert (
        main(
            [
                "report",
                "--storage",
                reports["storage"],
                "--study-name",
                STUDY,
                "--out",
                str(out),
                "--json",
                "--no-holdout",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    selected = best_by_seed_mean(study).number
    noise = read_noise(study)[selected]
    assert doc["selected_trial"] == selected and isinstance(doc["selected_trial"], int)
    assert doc["value"] == study.trials[selected].value
    assert doc["seed_values"] == list(noise.values) and len(doc["seed_values"]) == 2
    assert doc["seed_mean"] == pytest.approx(noise.mean) and doc["seed_std"] == pytest.approx(
        noise.std
    )
    assert set(doc["baselines"]) == {"buy_and_hold", "no_model"}
    for key in ("dsr", "pbo"):
        assert doc[key] is None or isinstance(doc[key], float)
        assert doc[key] is not None or isinstance(doc[f"{key}_reason"], str)
    assert doc["holdout"] is None or isinstance(doc["holdout"], dict)
    assert doc["di_blocked"] is None  # the smoke study has no dissimilarity index
    assert doc["pipeline"] == DataPipeline().to_feature_parameters()  # every key off
    assert isinstance(doc["verdict"], str) and f"Trial #{selected}" in doc["verdict"]
    assert "fresh seed sets" in doc["verdict"]
    assert [r["trial"] for r in doc["seed_noise"]["trials"]] == sorted(
        read_noise(study), key=lambda n: (-study.trials[n].value, n)
    )
    assert doc["race"] == {
        "candidates": list(race.candidates),
        "rounds": 2,
        "eliminated": [],
        "winner": race.winner,
        "evaluations": 4,
        "budget": 4,
        "max_seed_sets": 2,
        "stop": race.stop,
        "leader": race.winner,
        "survivors": list(race.candidates),
        "level": 0.05,
        "first_test": 2,
        "winner_mean": pytest.approx(noise.mean),
        "winner_std": pytest.approx(noise.std),
        "winner_seed_sets": 2,
    }
    assert race.winner == selected
    assert {r["trial"]: r["race"] for r in doc["seed_noise"]["trials"]} == {
        t: "winner" if t == selected else "survivor" for t in race.candidates
    }
    page = out.read_text()
    assert '<section id="seed_noise">' in page and "mean ± std over fresh seeds" in page
    assert "(selected)" in page and "Race among the best 2 complete trials" in page
    assert "Friedman p" in page
    system_attrs = study._storage.get_study_system_attrs(study._study_id)
    note = get_note_from_system_attrs(system_attrs, None)["body"]
    assert doc["verdict"] in note and "### Seed noise" in note and f"#{selected} (selected)" in note
    assert "Race among the best 2 complete trials" in note and f"winner #{selected}" in note


def test_race_figures_say_who_was_eliminated_when_and_why():
    """The race's figures for the page, the JSON and the note, on a race with eliminations
    (synthetic values: three clearly separated candidates and one close to the best)."""
    from types import SimpleNamespace

    from optimize.analysis.html import _race
    from optimize.analysis.report import race_json, race_status, race_summary
    from optimize.study.racing import run_race

    rng = np.random.default_rng(0)
    means = {5: 1.0, 2: -2.0, 9: 0.98, 4: -1.0}
    table = {(t, b): m + 0.1 * rng.normal() for t, m in means.items() for b in range(1, 9)}
    race = run_race([5, 2, 9, 4], lambda t, b: table[t, b], budget=20, max_blocks=8)
    doc = race_json(race)
    assert doc["candidates"] == [5, 2, 9, 4] and doc["rounds"] == len(race.rounds)
    gone = {e["trial"]: e for e in doc["eliminated"]}
    assert set(gone) >= {2, 4} and 5 not in gone
    for e in doc["eliminated"]:
        assert isinstance(e["round"], int) and e["round"] >= 2
        assert e["reason"].startswith("worse than #") and "paired t-test p = " in e["reason"]
    assert doc["evaluations"] == race.evaluations <= 20 and doc["winner"] == race.winner
    assert doc["winner_seed_sets"] == len(race.rounds)
    assert race_status(race, 2) == f"eliminated after round {gone[2]['round']}"
    assert race_status(race, race.winner) == "winner" and race_status(race, 77) == ""
    assert f"winner #{race.winner}" in race_summary(race)
    page = _race(SimpleNamespace(race=race))
    assert "Friedman p" in page and "#2: worse than #" in page
