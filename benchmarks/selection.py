"""Selection regret on real small studies (values, not timings). Each study: configs/smoke.yaml's
2 pairs and tiny LSTM (1 epoch; window, dropout and learning rate searched) on 2025-01-01 ..
2025-06-12 with 8 walk-forward folds of 15 days, ensembles of 2, TPE with 6 start-up trials and
no pruner; the studies differ only in the sampler's seed. Every complete trial is then evaluated
on M fresh seed sets. For each of many random splits of those M sets into a selection half and a
truth half (one split for all trials, so candidates keep sharing seed sets): a trial's true value
is its mean over the truth half; each method selects a trial from the selection half only, its
sets taken in the split's order: Optuna's best recorded trial (0 evaluations), the best 3 by
recorded value x 3 seed sets (9), and the production race (optimize.study.racing: the best N by
recorded value, Friedman test then paired t-tests against the leader) at the same 9 evaluations
(N = 4), with the config defaults (robustness_top / robustness_budget / robustness_seed_sets of
optimize.config.StudyConfig) and with configs/default.yaml's. Regret = true value of the truly
best trial - true value of the selected one, in units of the inter-quartile range of the true
values of the study's complete trials; averaged over splits, then over studies (± the standard
error over studies). The truth half is finite: its noise inflates every method's regret alike.
Goal: the race's regret at most half of the best-3 x 3 regret at no more evaluations. The
*floor* row shows how far any rule can get: every complete trial judged by its mean over all the
selection half's sets (trials x M/2 evaluations); a rule with 9 evaluations cannot be expected to
beat it, so a goal below the floor cannot be met on these studies. Also shown: the median seed
std over that IQR and the share of a value's variance that the seed set shares across trials
(from the fresh values).
"""

from __future__ import annotations

import logging
import math
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from benchmarks import REPO_ROOT, Row, row, study_files
from optimize.config import StudyConfig, load_config
from optimize.search.space import load_space
from optimize.study.racing import Race, run_race
from optimize.study.records import TrialRecord
from optimize.study.robustness import Evaluator
from optimize.study.runner import run_worker

log = logging.getLogger(__name__)

CONFIG = {
    "data": {"start": "2025-01-01", "end": "2025-06-12"},
    "walkforward": {"train_days": 30, "test_days": 15, "purge_candles": 24, "holdout_days": 10},
    "study": {"pruner": "none", "n_startup_trials": 6, "robustness_top": 0},
    "training": {"ensemble_size": 2},
}
"""Overrides of configs/smoke.yaml: 8 folds of 15 days (120 days out of sample), 2 members."""
SAME_BUDGET = 9
"""The best-3 x 3 design's evaluations: the race's budget in the judged row."""


@dataclass(frozen=True)
class StudyValues:
    """One study's complete trials: recorded values and fresh values (trials x seed sets)."""

    numbers: list[int]
    recorded: np.ndarray
    fresh: np.ndarray


def make_study(folder: Path, index: int, trials: int, seed_sets: int, workers: int) -> StudyValues:
    """Run study ``index`` (sampler seed offset ``index``), then evaluate every complete trial on
    fresh seed sets ``1..seed_sets``."""
    config_path, space_path = study_files(folder, overrides=CONFIG, lstm={})
    config, space = load_config(config_path), load_space(space_path)
    storage = f"sqlite:///{folder / 'selection.db'}"
    name = f"selection-{index}"
    run_worker(config, space, storage=storage, study_name=name, n_trials=trials, worker_index=index)
    study = optuna.load_study(study_name=name, storage=storage)
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if math.isfinite(t.values[0])
    ]
    jobs = [(t.number, TrialRecord.of(t).params, m) for t in done for m in range(1, seed_sets + 1)]
    fresh = {}
    with Evaluator(config, workers) as evaluator:
        for number, seed_set, value, _ in evaluator.run(jobs):
            fresh[number, seed_set] = value
    log.info("study %d: %d complete trials x %d seed sets evaluated", index, len(done), seed_sets)
    return StudyValues(
        [t.number for t in done],
        np.array([t.values[0] for t in done]),
        np.array([[fresh[t.number, m] for m in range(1, seed_sets + 1)] for t in done]),
    )


def _best(means: np.ndarray, rows: np.ndarray) -> int:
    """The row (of ``rows``) with the best mean; ties: the first."""
    return int(rows[int(np.argmax(means[rows]))])


Design = tuple[int, int, int]
"""A race's (candidates, budget, most seed sets per candidate)."""


def select(sv: StudyValues, blocks: np.ndarray, races: dict[str, Design]) -> dict[str, tuple]:
    """Each method's selected row and evaluations, using the seed-set columns ``blocks`` in order:
    ``recorded``, ``top3x3`` and one entry per race of ``races``.

    Rows are ordered by trial number; candidates by recorded value (ties: lower number).
    """
    order = np.lexsort((np.array(sv.numbers), -sv.recorded))
    top3 = order[:3]
    three = sv.fresh[:, blocks[:3]].mean(axis=1)
    everything = sv.fresh[:, blocks].mean(axis=1)
    out = {
        "recorded": (int(order[0]), 0),
        "top3x3": (_best(three, top3), 3 * len(top3)),
        "floor": (_best(everything, order), len(order) * len(blocks)),
    }
    for key, (n, budget, most) in races.items():
        race = _race(sv, order[:n], blocks[:most], budget)
        out[key] = (int(race.winner), race.evaluations)
    return out


def _race(sv: StudyValues, rows: np.ndarray, blocks: np.ndarray, budget: int) -> Race:
    race = run_race(
        [int(r) for r in rows],
        lambda r, b: float(sv.fresh[r, blocks[b - 1]]),
        budget=budget,
        max_blocks=len(blocks),
    )
    assert race.winner is not None, race
    return race


def regrets(sv: StudyValues, races: dict[str, Design], splits: int, seed: int) -> dict[str, tuple]:
    """Per method: mean regret (IQR units), mean evaluations, share of splits that picked the
    truly best trial."""
    rng = np.random.default_rng(seed)
    m = sv.fresh.shape[1]
    acc: dict[str, list[tuple[float, int, bool]]] = {}
    for _ in range(splits):
        perm = rng.permutation(m)
        chosen, truth_cols = perm[: m // 2], perm[m // 2 :]
        truth = sv.fresh[:, truth_cols].mean(axis=1)
        q1, q3 = np.percentile(truth, [25, 75])
        spread = float(q3 - q1) or 1.0
        best = float(truth.max())
        for key, (picked, evals) in select(sv, chosen, races).items():
            regret = (best - float(truth[picked])) / spread
            acc.setdefault(key, []).append((regret, evals, truth[picked] == best))
    return {k: tuple(float(np.mean(c)) for c in zip(*v, strict=True)) for k, v in acc.items()}


def noise_figures(sv: StudyValues) -> tuple[float, float]:
    """(median seed std / IQR of the trials' mean values, share of variance the seed set shares
    across trials: two-way ANOVA without interaction, trials x seed sets)."""
    fresh = sv.fresh
    means = fresh.mean(axis=1)
    q1, q3 = np.percentile(means, [25, 75])
    std_iqr = float(np.median(fresh.std(axis=1, ddof=1)) / (q3 - q1))
    k, n = fresh.shape
    resid = fresh - means[:, None] - fresh.mean(axis=0)[None, :] + fresh.mean()
    ms_resid = float((resid**2).sum()) / ((k - 1) * (n - 1))
    ms_block = k * float(((fresh.mean(axis=0) - fresh.mean()) ** 2).sum()) / (n - 1)
    block_var = max(0.0, (ms_block - ms_resid) / k)
    return std_iqr, block_var / (block_var + ms_resid)


def designs(trials: int) -> dict[str, Design]:
    """The races compared: the same 9 evaluations as best 3 x 3, the config defaults and
    configs/default.yaml's settings (candidates capped at ``trials``)."""
    defaults = StudyConfig()
    yaml_study = load_config(REPO_ROOT / "configs" / "default.yaml").study
    out = {"race_same": (4, SAME_BUDGET, SAME_BUDGET)}
    for key, st in (("race_defaults", defaults), ("race_default_yaml", yaml_study)):
        out[key] = (min(st.robustness_top, trials), st.robustness_budget, st.robustness_seed_sets)
    return out


def bench_selection(
    *,
    studies: int = 4,
    trials: int = 20,
    seed_sets: int = 16,
    splits: int = 200,
    workers: int = 2,
) -> list[Row]:
    """Regret of each method over ``studies`` studies of ``trials`` trials, ``seed_sets`` fresh
    sets per complete trial (half select, half judge), ``splits`` random splits per study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    races = designs(trials)
    per_study, noise = [], []
    for index in range(studies):
        with tempfile.TemporaryDirectory(prefix="bench-selection-") as tmp:
            sv = make_study(Path(tmp), index, trials, seed_sets, workers)
        per_study.append(regrets(sv, races, splits, seed=index))
        noise.append(noise_figures(sv))
        log.info("study %d: %s", index, per_study[-1])

    def fig(key: str, part: int = 0) -> tuple[float, float]:
        values = [s[key][part] for s in per_study]
        se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
        return float(np.mean(values)), se

    ref, ref_se = fig("top3x3")
    size = f"{studies} studies x {trials} trials, {seed_sets} fresh seed sets"

    def name(label: str, key: str) -> str:
        mean, se = fig(key)
        return (
            f"{label}: regret {mean:.3f} ± {se:.3f} vs best 3 x 3 seed sets {ref:.3f} ± "
            f"{ref_se:.3f} (IQR units; picks the truly best {fig(key, 2)[0]:.0%} vs "
            f"{fig('top3x3', 2)[0]:.0%}; {fig(key, 1)[0]:.1f} evaluations vs 9; {size})"
        )

    labels = {
        "race_same": "race of the best 4, budget 9",
        "race_defaults": "race of the best {}, budget {} (config defaults)",
        "race_default_yaml": "race of the best {}, budget {} (configs/default.yaml)",
        "recorded": "Optuna's best recorded trial",
        "floor": f"floor: every trial on all {seed_sets // 2} selection seed sets",
    }
    rows = []
    for key, label in labels.items():
        label = label.format(*races[key][:2]) if key in races else label
        judged = {"goal": "ratio <= 0.5", "below": 0.5 + 1e-12} if key == "race_same" else {}
        rows.append(row(name(label, key), fig(key)[0], ref, "regret/IQR", **judged))
    std_iqr = float(np.median([n[0] for n in noise]))
    shared = float(np.median([n[1] for n in noise]))
    rows.append(
        row(
            "median seed std vs IQR of the trials' mean values (median over studies; share of "
            f"variance the seed set shares across trials: {shared:.2f})",
            std_iqr,
            1.0,
            "ratio",
        )
    )
    return rows


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    for r in bench_selection():
        print(r)
