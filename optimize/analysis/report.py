"""The study report: one self-contained HTML file that says honestly what a study found.

:func:`write_report` reads everything from the study (the trials' stored walk-forward results;
nothing is re-run except the holdout, once, through :func:`optimize.study.holdout.evaluate_holdout`)
and writes one HTML file with plotly.js embedded, so it opens offline. Sections: summary and
verdict, optimization history, parameter importances, parallel coordinates, the selected trial's
per-fold table, its out-of-sample equity and drawdown against buy-and-hold and the no-model
baseline, the holdout, and the overfitting statistics (DSR, PBO). ``docs/report.md`` explains how
to read it.

The statistics use each completed trial's ``oos_daily_returns`` (one simple return per day of the
walk-forward test span; all trials of a study share the span):

* DSR (:func:`optimize.analysis.stats.deflated_sharpe_ratio`): SR, skew, raw kurtosis and T from the
  selected trial's daily returns; N = the number of completed trials; V = the sample variance of
  the completed trials' per-day Sharpe ratios.
* PBO (:func:`optimize.analysis.pbo.probability_of_backtest_overfitting`): CSCV over the T x N
  matrix of those returns, with ``S = pbo_splits(T)``: the largest even number <= 16 that leaves
  every block at least :data:`MIN_BLOCK_DAYS` days.

:func:`overfitting_stats` and :func:`verdict` are pure functions of plain numbers and lists.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from base.checks import check_int
from optimize.analysis import stats
from optimize.analysis.pbo import probability_of_backtest_overfitting
from optimize.evaluation.records import HoldoutRecord
from optimize.search.space import TrialParams
from optimize.study.holdout import evaluate_trial_holdout, stored_holdout
from optimize.study.racing import Race
from optimize.study.records import (
    HoldoutTouched,
    SideCounts,
    StudyRecord,
    TrialRecord,
    study_config,
)
from optimize.study.seednoise import (
    RaceRecord,
    SeedNoise,
    direction_sign,
    noise_sentence,
    race_noise,
    value_iqr,
)
from optimize.study.selection import select_trial

logger = logging.getLogger(__name__)

MAX_SPLITS = 16
"""CSCV blocks when the span is long enough (the paper's S)."""
MIN_BLOCK_DAYS = 7
"""Fewest days per CSCV block: a week, so every block sees each weekday."""
DSR_THRESHOLD = 0.95
"""DSR at or above which the selected trial's Sharpe is unlikely to be luck (the paper's level)."""
DAYS_PER_YEAR = 365
"""Crypto trades every day: per-day Sharpe x sqrt(365) is the annual figure shown."""
DEFAULT_REPORT_DIR = Path("reports")


def pbo_splits(
    n_days: int, *, max_splits: int = MAX_SPLITS, min_block_days: int = MIN_BLOCK_DAYS
) -> int:
    """Number of CSCV blocks S for ``n_days`` daily returns.

    The largest even ``S <= max_splits`` with ``S * min_block_days <= n_days``; 0 when not even
    two blocks fit (PBO is then not computed).
    """
    s = min(max_splits, check_int("n_days", n_days, 0) // min_block_days)
    s -= s % 2
    return s if s >= 2 else 0


@dataclass
class OverfittingStats:
    """DSR and PBO of the selected trial; ``*_reason`` says why a figure is missing (None:
    present)."""

    n_trials: int
    n_days: int
    sharpe: float | None = None
    sharpe_annual: float | None = None
    sharpe_variance: float | None = None
    sr0: float | None = None
    skew: float | None = None
    kurtosis: float | None = None
    dsr: float | None = None
    dsr_reason: str | None = None
    pbo: float | None = None
    pbo_reason: str | None = None
    pbo_splits: int = 0
    pbo_combinations: int = 0
    pbo_columns: int = 0
    pbo_rows: int = 0
    pbo_logits: list[float] = field(default_factory=list)


def overfitting_stats(
    selected: Sequence[float], trials: Sequence[Sequence[float]]
) -> OverfittingStats:
    """DSR of the selected trial and PBO over all trials, from daily returns.

    Args:
        selected: the selected trial's daily returns.
        trials: every completed trial's daily returns (the selected one included), same span.
            N (for the DSR) is ``len(trials)``; only series as long as ``selected`` enter V and PBO.

    Returns:
        The figures; a figure that cannot be computed is None with a reason (a trial that never
        traded has constant returns and no skew/kurtosis; PBO needs 2 trials and 2 blocks).
    """
    sel = np.asarray(selected, dtype=np.float64)
    n_days = int(sel.size)
    out = OverfittingStats(n_trials=len(trials), n_days=n_days)
    aligned = [np.asarray(r, dtype=np.float64) for r in trials if len(r) == n_days]
    aligned = [r for r in aligned if np.all(np.isfinite(r))]
    if n_days < 2 or not np.all(np.isfinite(sel)):
        out.dsr_reason = out.pbo_reason = (
            f"the selected trial has {n_days} usable daily returns (need >= 2)"
        )
        return out
    out.sharpe = stats.sharpe_from_returns(sel)
    out.sharpe_annual = out.sharpe * math.sqrt(DAYS_PER_YEAR)
    sharpes = np.array([stats.sharpe_from_returns(r) for r in aligned])
    sharpes = sharpes[np.isfinite(sharpes)]
    out.sharpe_variance = float(sharpes.var(ddof=1)) if sharpes.size > 1 else 0.0
    out.sr0 = stats.expected_max_sharpe(max(out.n_trials, 1), out.sharpe_variance)
    if np.ptp(sel) == 0.0:
        out.dsr_reason = (
            "the selected trial's daily returns are constant (it never traded): no skew/kurtosis"
        )
    else:
        out.skew, out.kurtosis = stats.returns_moments(sel)
        try:
            out.dsr = stats.deflated_sharpe_ratio(
                out.sharpe,
                n_trials=max(out.n_trials, 1),
                sharpe_variance=out.sharpe_variance,
                n_obs=n_days,
                skew=out.skew,
                kurtosis=out.kurtosis,
            )
        except ValueError as exc:
            out.dsr_reason = str(exc)
    out.pbo_splits = pbo_splits(n_days)
    if len(aligned) < 2:
        out.pbo_reason = (
            "needs at least 2 completed trials with aligned returns, but the study has "
            f"{len(aligned)}"
        )
    elif out.pbo_splits == 0:
        out.pbo_reason = f"{n_days} days are too few for 2 blocks of {MIN_BLOCK_DAYS} days"
    else:
        res = probability_of_backtest_overfitting(np.column_stack(aligned), out.pbo_splits)
        out.pbo = res.pbo
        out.pbo_combinations = res.n_combinations
        out.pbo_columns = int(res.kept_columns.size)
        out.pbo_rows = res.n_rows_used
        out.pbo_logits = [float(x) for x in res.logits]
    return out


def _pct(x: float) -> str:
    return f"{x:+.2%}"


def verdict(
    *,
    trial_number: int,
    profit: float,
    buy_and_hold: float,
    no_model: float | None,
    dsr: float | None,
    pbo: float | None,
    holdout: dict[str, float] | None = None,
) -> str:
    """One line in words: does the selected trial beat the baselines, and is it luck?

    Args:
        trial_number: the selected trial.
        profit, buy_and_hold, no_model: out-of-sample total profit ratios (model, equal-weight
            buy-and-hold, thresholds on T); ``no_model`` None when unknown.
        dsr: Deflated Sharpe Ratio or None (not computable).
        pbo: Probability of Backtest Overfitting or None.
        holdout: ``{"profit", "buy_and_hold"}`` on the holdout, or None when not evaluated.
    """
    beats_bh = profit > buy_and_hold
    head = (
        f"Trial #{trial_number} {'beats' if beats_bh else 'does not beat'} buy-and-hold "
        f"out of sample ({_pct(profit)} vs {_pct(buy_and_hold)})"
    )
    parts = [head]
    if no_model is not None:
        parts[0] += (
            f" and {'beats' if profit > no_model else 'does not beat'} the no-model baseline "
            f"({_pct(no_model)})"
        )
    if dsr is None:
        parts.append("DSR not computable")
    elif dsr >= DSR_THRESHOLD:
        parts.append(f"DSR {dsr:.2f} >= {DSR_THRESHOLD}: unlikely to be luck")
    else:
        parts.append(f"DSR {dsr:.2f} < {DSR_THRESHOLD}: likely luck")
    if pbo is not None:
        judged = (
            "the selection is overfit"
            if pbo >= 0.5
            else "the in-sample ranking mostly holds out of sample"
        )
        parts.append(f"PBO {pbo:.2f}: {judged}")
    if holdout is not None:
        h_beats = holdout["profit"] > holdout["buy_and_hold"]
        parts.append(
            f"holdout {_pct(holdout['profit'])} vs buy-and-hold {_pct(holdout['buy_and_hold'])} "
            f"({'beats' if h_beats else 'does not beat'} it)"
        )
    return "; ".join(parts) + "."


@dataclass
class ReportInputs:
    """Everything the page shows, read from the study (see :func:`collect`)."""

    study: optuna.Study
    trial: FrozenTrial
    chosen: bool
    completed: list[FrozenTrial]
    states: dict[str, int]
    stats: OverfittingStats
    holdout: HoldoutRecord | None
    holdout_note: str | None
    holdout_trials: list[int]
    verdict: str
    noise: list[SeedNoise] = field(default_factory=list)
    """Re-evaluated trials, best recorded value first (empty: the robustness step has not run)."""
    value_iqr: float = math.nan
    """IQR of the values of the complete trials (the spread the seed std is compared with)."""
    noise_sentence: str = ""
    race: Race | None = None
    """The robustness step's race (None: none stored)."""

    @property
    def record(self) -> TrialRecord:
        """The selected trial's stored record (missing keys: empty)."""
        return TrialRecord.of(self.trial, complete=False)

    @property
    def pipeline(self) -> dict[str, Any] | None:
        """The selected trial's FreqAI pipeline keys (the run config's with the trial's own);
        None for a study without a stored run config or a trial without parameters."""
        params = self.record.params
        if StudyRecord.stored(self.study) is None or "weights" not in params:
            return None
        config = study_config(self.study)
        trial = TrialParams.from_dict(params)
        return trial.pipeline(config.features.pipeline).to_feature_parameters()

    @property
    def trading(self) -> dict[str, Any] | None:
        """How the selected trial trades: ``trading_mode``, ``margin_mode``, ``leverage`` and
        ``direction`` (the run config's settings with the trial's own); None for a study without
        a stored run config or a trial without parameters."""
        params = self.record.params
        if StudyRecord.stored(self.study) is None or "weights" not in params:
            return None
        trial = TrialParams.from_dict(params)
        settings = trial.settings(study_config(self.study).backtest)
        return {
            "trading_mode": settings.trading_mode,
            "margin_mode": settings.margin_mode,
            "leverage": float(settings.leverage),
            "direction": trial.signal.direction,
        }

    @property
    def futures(self) -> bool:
        """The study trades futures (the report shows sides and funding)."""
        return (self.trading or {}).get("trading_mode") == "futures"

    def sides(self) -> dict[str, Any]:
        """The selected trial's trades by side and the funding they paid: over the walk-forward
        span (``walkforward``), per fold (``folds``) and on the holdout (``holdout``, None when not
        evaluated), each ``{long_trades, short_trades, funding_paid}`` (:class:`SideCounts`)."""
        record = self.record
        return {
            "walkforward": SideCounts.of(record.oos_metrics).to_dict(),
            "folds": [x.to_dict() for x in record.sides],
            "holdout": None
            if self.holdout is None
            else SideCounts.of(self.holdout.metrics).to_dict(),
        }

    @property
    def trial_noise(self) -> SeedNoise | None:
        """The selected trial's seed noise, if it was re-evaluated."""
        return next((n for n in self.noise if n.trial == self.trial.number), None)


def collect(
    study: optuna.Study, *, trial_number: int | None = None, holdout: bool = True
) -> ReportInputs:
    """Read the study, evaluate the holdout when asked (once: stored after the first time).

    Args:
        study: a study made by this project's runner.
        trial_number: the trial to report on; None: the best trial (see
            :func:`optimize.study.selection.select_trial`).
        holdout: run :func:`~optimize.study.holdout.evaluate_holdout` when no stored record exists;
            False only shows a stored one.

    Raises:
        ValueError: see :func:`optimize.study.selection.select_trial`.
    """
    trial = select_trial(study, trial_number)
    trials = study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    states = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    selected = TrialRecord.of(trial, complete=False)
    figures = overfitting_stats(
        selected.daily_returns, [TrialRecord.of(t, complete=False).daily_returns for t in completed]
    )
    record = stored_holdout(study, trial.number)
    note = None
    if record is None and holdout:
        try:
            record = evaluate_trial_holdout(study, trial)
        except ValueError as exc:  # e.g. holdout_days = 0
            note = f"not evaluated: {exc}"
    elif record is None:
        note = "not evaluated (--no-holdout); run the report without it to score the holdout once."
    touched = HoldoutTouched.of(study)
    oos, base = selected.oos_metrics, selected.baselines
    line = verdict(
        trial_number=trial.number,
        profit=float(oos.get("profit_total", float("nan"))),
        buy_and_hold=float(base.get("buy_and_hold", {}).get("profit_total", float("nan"))),
        no_model=base.get("no_model", {}).get("profit_total"),
        dsr=figures.dsr,
        pbo=figures.pbo,
        holdout=None
        if record is None
        else {
            "profit": float(record.metrics.get("profit_total", float("nan"))),
            "buy_and_hold": float(record.baselines["buy_and_hold"]["profit_total"]),
        },
    )
    noise_by_trial = race_noise(study)
    raced = RaceRecord.stored(study)
    sign = direction_sign(study)
    noise = sorted(noise_by_trial.values(), key=lambda n: (-sign * n.recorded, n.trial))
    iqr = value_iqr(study) if len(study.directions) == 1 else math.nan
    sentence = noise_sentence(noise_by_trial.get(trial.number), iqr)
    if trial.number in noise_by_trial:
        n = noise_by_trial[trial.number]
        line = line[:-1] + (
            f"; over {len(n.values)} fresh seed sets its value is {n.mean:.3f} ± "
            f"{n.std:.3f} (recorded {n.recorded:.3f})."
        )
    return ReportInputs(
        study=study,
        trial=trial,
        chosen=trial_number is not None,
        completed=completed,
        states={k: v for k, v in states.items() if v},
        stats=figures,
        holdout=record,
        holdout_note=note,
        holdout_trials=list(touched.trials) if touched else [],
        verdict=line,
        noise=noise,
        value_iqr=iqr,
        noise_sentence=sentence,
        race=None if raced is None else raced.race(),
    )


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def report_json(inp: ReportInputs) -> dict[str, Any]:
    """The report's figures as one JSON-able object (``python -m optimize report --json``).

    Keys: ``selected_trial`` (int), ``value`` (its recorded value), ``seed_values`` (its values on
    the fresh seed sets; empty when not re-evaluated), ``seed_mean``, ``seed_std`` (None when not
    computable), ``baselines`` (``buy_and_hold``, ``no_model``), ``dsr``, ``pbo`` (None with the
    reason in ``dsr_reason`` / ``pbo_reason``), ``holdout`` (its metrics, or None), ``verdict``,
    ``pipeline`` (the selected trial's FreqAI pipeline keys, :mod:`strategy.pipeline`),
    ``di_blocked`` (the share of predicted candles the dissimilarity index kept from entering:
    ``folds`` one per fold and ``total``; None when the index was off), ``trading`` (trading mode,
    margin mode, leverage and direction of the selected trial), ``sides`` (its long and short
    trade counts and the funding paid, stake currency, > 0 paid: ``walkforward``, ``folds``,
    ``holdout``; see :meth:`ReportInputs.sides`), ``seed_noise`` (the table) and ``race``
    (:func:`race_json`; None without a race).
    """
    n = inp.trial_noise
    return {
        "study": inp.study.study_name,
        "selected_trial": int(inp.trial.number),
        "value": float(inp.trial.values[0]),
        "seed_values": [float(v) for v in n.values] if n else [],
        "seed_mean": _finite(n.mean) if n else None,
        "seed_std": _finite(n.std) if n else None,
        "baselines": inp.record.baselines,
        "dsr": _finite(inp.stats.dsr),
        "dsr_reason": inp.stats.dsr_reason,
        "pbo": _finite(inp.stats.pbo),
        "pbo_reason": inp.stats.pbo_reason,
        "holdout": None if inp.holdout is None else inp.holdout.metrics,
        "verdict": inp.verdict,
        "pipeline": inp.pipeline,
        "trading": inp.trading,
        "sides": inp.sides(),
        "di_blocked": None
        if inp.record.di_blocked_total is None
        else {
            "folds": [_finite(x) if x is not None else None for x in inp.record.di_blocked],
            "total": _finite(inp.record.di_blocked_total),
        },
        "seed_noise": {
            "value_iqr": _finite(inp.value_iqr),
            "sentence": inp.noise_sentence,
            "trials": [noise_row(x, inp.value_iqr, inp.race) for x in inp.noise],
        },
        "race": None if inp.race is None else race_json(inp.race),
    }


def race_json(race: Race) -> dict[str, Any]:
    """The race as plain figures (``report --json``'s ``race``, the page, the dashboard note).

    Keys: ``candidates`` (trial numbers, best recorded value first), ``rounds`` (rounds run),
    ``eliminated`` (``trial``, ``round``, ``reason``, in round order), ``winner`` (None while the
    race is unfinished), ``evaluations`` (values it used), ``budget``, ``max_seed_sets``,
    ``stop`` (why it is over; None: unfinished), ``leader`` (best mean among the survivors),
    ``survivors``, ``level``, ``first_test``, and ``winner_mean``, ``winner_std``,
    ``winner_seed_sets`` (the winner's, else the leader's, figures over its fresh seed sets).
    """
    best = race.winner if race.winner is not None else race.leader
    values = race.values.get(best, ()) if best is not None else ()
    return {
        "candidates": list(race.candidates),
        "rounds": len(race.rounds),
        "eliminated": [
            {"trial": e.trial, "round": e.round, "reason": e.reason} for e in race.eliminated
        ],
        "winner": race.winner,
        "evaluations": race.evaluations,
        "budget": race.budget,
        "max_seed_sets": race.max_blocks,
        "stop": race.stop,
        "leader": race.leader,
        "survivors": list(race.survivors),
        "level": race.rules.level,
        "first_test": race.rules.first_test,
        "winner_mean": _finite(float(np.mean(values))) if values else None,
        "winner_std": _finite(float(np.std(values, ddof=1))) if len(values) > 1 else None,
        "winner_seed_sets": len(values),
    }


def race_status(race: Race | None, trial: int) -> str:
    """A trial's place in the race, in words (empty when it was not a candidate)."""
    if race is None or trial not in race.candidates:
        return ""
    gone = next((e for e in race.eliminated if e.trial == trial), None)
    if gone is not None:
        return f"eliminated after round {gone.round}"
    if trial == race.winner:
        return "winner"
    if race.winner is None and trial == race.leader:
        return "leading (race unfinished)"
    return "survivor"


def race_summary(race: Race) -> str:
    """One sentence: candidates, rounds, evaluations, how it ended and the winner's figures."""
    fig = race_json(race)
    head = (
        f"Race among the best {len(race.candidates)} complete trials by recorded value: "
        f"{fig['rounds']} rounds, {fig['evaluations']} evaluations of a budget of "
        f"{fig['budget']}, {len(fig['eliminated'])} eliminated"
    )
    best = fig["winner"] if fig["winner"] is not None else fig["leader"]
    if best is None:
        return head + "; no round has run yet."
    who = "winner" if fig["winner"] is not None else "leader so far (the race is unfinished)"
    spread = f" ± {fig['winner_std']:.4f}" if fig["winner_std"] is not None else ""
    ended = f" ({fig['stop']})" if fig["stop"] else ""
    return (
        f"{head}{ended}; {who} #{best}: {fig['winner_mean']:.4f}{spread} over "
        f"{fig['winner_seed_sets']} fresh seed sets."
    )


def noise_row(n: SeedNoise, iqr: float, race: Race | None = None) -> dict[str, Any]:
    """One row of the seed-noise table (report page, JSON and dashboard note); ``race`` is the
    trial's place in the race (:func:`race_status`)."""
    ratio = n.std / iqr if math.isfinite(iqr) and iqr > 0 and math.isfinite(n.std) else math.nan
    return {
        "trial": n.trial,
        "recorded": n.recorded,
        "values": list(n.values),
        "mean": _finite(n.mean),
        "std": _finite(n.std),
        "min": _finite(n.min),
        "max": _finite(n.max),
        "std_over_iqr": _finite(ratio),
        "race": race_status(race, n.trial),
    }


def dashboard_note(inp: ReportInputs) -> str:
    """Markdown for optuna-dashboard's study note: the verdict and the seed-noise table."""

    def num(x: float | None) -> str:
        return "–" if x is None else f"{x:.4f}"

    lines = [
        f"## lstm-optuna report: {inp.study.study_name}",
        "",
        f"**Verdict.** {inp.verdict}",
        "",
        "### Seed noise",
        "",
        inp.noise_sentence,
        "",
    ]
    if inp.race is not None:
        lines += [race_summary(inp.race), ""]
        lines += [f"* #{e.trial}, round {e.round}: {e.reason}" for e in inp.race.eliminated]
        lines += [""] if inp.race.eliminated else []
    rows = [noise_row(n, inp.value_iqr, inp.race) for n in inp.noise]
    if rows:
        lines += [
            "| trial | recorded | mean ± std over seeds | seed sets | min .. max | std / IQR "
            "| race |",
            "|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| #{r['trial']}{' (selected)' if r['trial'] == inp.trial.number else ''} | "
            f"{num(r['recorded'])} | {num(r['mean'])} ± {num(r['std'])} | {len(r['values'])} | "
            f"{num(r['min'])} .. {num(r['max'])} | {num(r['std_over_iqr'])} | {r['race']} |"
            for r in rows
        ]
    return "\n".join(lines) + "\n"


def save_dashboard_note(inp: ReportInputs) -> None:
    """Write :func:`dashboard_note` as the study's note in optuna-dashboard (a new version)."""
    from optuna_dashboard import save_note

    save_note(inp.study, dashboard_note(inp))
