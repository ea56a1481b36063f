"""The study report's page, section by section (:mod:`optimize.analysis.report` gathers the inputs).

One page, one ``<section id=...>`` per part (ids in :data:`SECTIONS`), plotly.js inlined once in
the head (the same bundle ``include_plotlyjs=True`` embeds), every figure a ``<div>`` drawn by
``Plotly.newPlot``. No network access is needed to open the file. The figures come from
:mod:`optimize.analysis.figures`, the cells, tables and style from
:mod:`optimize.analysis.markup`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
from plotly.offline import get_plotlyjs

from optimize._version import __version__
from optimize.analysis.figures import (
    equity_figure,
    figure_div,
    history_figure,
    importance_figure,
    parallel_figure,
    pbo_figure,
    study_target,
)
from optimize.analysis.markup import PAGE_CSS, esc, fmt, note, num, table
from optimize.analysis.report import (
    DEFAULT_REPORT_DIR,
    DSR_THRESHOLD,
    MIN_BLOCK_DAYS,
    ReportInputs,
    collect,
    noise_row,
    race_summary,
)
from optimize.evaluation.scoring import FOLD_METRIC_KEYS, SIDE_KEYS
from optimize.study.records import StudyRecord

logger = logging.getLogger(__name__)

SECTIONS = {
    "summary": "Summary",
    "verdict": "Verdict",
    "history": "Optimization history",
    "importances": "Parameter importances",
    "parallel": "Parallel coordinates",
    "folds": "Walk-forward folds of the selected trial",
    "equity": "Out-of-sample equity and drawdown",
    "holdout": "Holdout",
    "seed_noise": "Seed noise",
    "overfitting": "Overfitting statistics",
}
"""Section id -> heading, in page order."""
MIN_TRIALS_IMPORTANCE = 2
FEW_TRIALS_IMPORTANCE = 20
# --------------------------------------------------------------------------- sections


def _summary(inp: ReportInputs) -> str:
    study, trial = inp.study, inp.trial
    created = StudyRecord.stored(study)  # None: a study not made by this project's runner
    noise = inp.trial_noise
    if inp.chosen:
        how = "chosen with --trial"
    elif len(study.directions) != 1:
        how = "Pareto front, best first objective"
    elif noise is not None:
        how = (
            f"best mean over {len(noise.values)} fresh seed sets: "
            f"{noise.mean:.4g} ± {noise.std:.2g}"
        )
    else:
        how = "best trial"
    rows = [
        ["study", esc(study.study_name)],
        [
            "objective",
            esc(
                f"{created.objective if created else '?'} "
                f"({', '.join(d.name.lower() for d in study.directions)})"
            ),
        ],
        ["trials", esc(", ".join(f"{k.lower()} {v}" for k, v in inp.states.items()))],
        [
            "run config / space",
            esc(f"{created.config_source} / {created.space_source}" if created else "? / ?"),
        ],
        [
            "selected trial",
            esc(f"#{trial.number} ({how}), value {', '.join(f'{v:.4g}' for v in trial.values)}"),
        ],
    ]
    trading = inp.trading
    if inp.futures and trading is not None:
        sides = inp.sides()["walkforward"]
        rows.append(
            [
                "trading",
                esc(
                    f"futures, {trading['margin_mode']} margin, leverage "
                    f"{trading['leverage']:g}, direction {trading['direction']}; walk-forward: "
                    f"{sides['long_trades']} long and {sides['short_trades']} short trades, "
                    f"funding paid {sides['funding_paid']:.2f} (stake currency)"
                ),
            ]
        )
    params = [[esc(k), fmt(k, v)] for k, v in sorted(trial.params.items())]
    return (
        table(None, rows)
        + "<h3>Parameters of the selected trial</h3>"
        + (table(["parameter", "value"], params) if params else note("no sampled parameters"))
    )


def _history(inp: ReportInputs) -> str:
    if not inp.completed:
        return note("no completed trial yet")
    return figure_div(history_figure(inp.study), "history")


def _importances(inp: ReportInputs) -> str:
    n = len(inp.completed)
    if n < MIN_TRIALS_IMPORTANCE:
        return note(
            f"parameter importances need at least {MIN_TRIALS_IMPORTANCE} completed trials; the "
            f"study has {n}."
        )
    kwargs = {"target": study_target(inp.study)["target"]} if len(inp.study.directions) > 1 else {}
    try:
        imp = optuna.importance.get_param_importances(
            inp.study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), **kwargs
        )
    except (ValueError, RuntimeError) as exc:
        return note(f"parameter importances could not be computed: {exc}")
    if not imp:
        return note("no parameter varied across the completed trials.")
    out = figure_div(importance_figure(imp), "importances")
    if n < FEW_TRIALS_IMPORTANCE:
        out += note(f"only {n} completed trials: importances this early are mostly noise.")
    return out


def _parallel(inp: ReportInputs) -> str:
    if not inp.completed:
        return note("no completed trial yet")
    return figure_div(parallel_figure(inp.study), "parallel")


def _folds(inp: ReportInputs) -> str:
    folds = inp.record.folds
    if not folds:
        return note("the selected trial has no per-fold results stored.")
    headers = [
        "fold",
        "train",
        "test",
        "score",
        "trades",
        "profit",
        "max DD",
        "sharpe",
        "winrate",
        "no-model profit",
        "buy-and-hold profit",
    ]
    blocked = inp.record.di_blocked
    with_di = any(b is not None for b in blocked)
    if with_di:  # the dissimilarity index was on: the share of candles it kept from entering
        headers.append("DI blocked")
    with_sides = inp.futures  # futures: trades of each side and the funding they paid
    if with_sides:
        headers += ["long", "short", "funding paid"]
    sides = inp.record.sides

    def side_cells(x: Any) -> list[str]:
        if not with_sides:
            return []
        return [
            fmt("long_trades", x.long_trades),
            fmt("short_trades", x.short_trades),
            esc(f"{x.funding_paid:.2f}"),
        ]

    rows = []
    for f, share, side in zip(folds, blocked, sides, strict=True):
        m, nm, bh = f.get("metrics", {}), f.get("no_model", {}), f.get("buy_and_hold", {})
        rows.append(
            [
                fmt("fold", f["fold"]),
                esc(f"{f['train_start'][:10]} – {f['train_end'][:10]}"),
                esc(f"{f['test_start'][:10]} – {f['test_end'][:10]}"),
                fmt("score", f.get("score")),
                fmt("total_trades", m.get("total_trades")),
                fmt("profit_total", m.get("profit_total")),
                fmt("max_drawdown_account", m.get("max_drawdown_account")),
                fmt("sharpe", m.get("sharpe")),
                fmt("winrate", m.get("winrate")),
                fmt("profit_total", nm.get("profit_total")),
                fmt("profit_total", bh.get("profit_total")),
                *([fmt("di_blocked", share)] if with_di else []),
                *side_cells(side),
            ]
        )
    oos, base = inp.record.oos_metrics, inp.record.baselines
    rows.append(
        [
            "<b>all</b>",
            "",
            esc(f"{folds[0]['test_start'][:10]} – {folds[-1]['test_end'][:10]}"),
            "",
            fmt("total_trades", oos.get("total_trades")),
            fmt("profit_total", oos.get("profit_total")),
            fmt("max_drawdown_account", oos.get("max_drawdown_account")),
            fmt("sharpe", oos.get("sharpe")),
            fmt("winrate", oos.get("winrate")),
            fmt("profit_total", base.get("no_model", {}).get("profit_total")),
            fmt("profit_total", base.get("buy_and_hold", {}).get("profit_total")),
            *([fmt("di_blocked", inp.record.di_blocked_total)] if with_di else []),
            *side_cells(inp.record.sides_total),
        ]
    )
    out = table(headers, rows)
    if with_sides:
        out += note(
            "funding paid: stake currency, > 0 paid by the trades, < 0 received (freqtrade's "
            "funding fees with the opposite sign)."
        )
    return out


def _equity(inp: ReportInputs) -> str:
    daily = inp.record.daily_equity
    if not daily or not daily.get("model"):
        returns = inp.record.daily_returns
        if not returns:
            return note("the selected trial has no stored out-of-sample equity.")
        folds = inp.record.folds or [{"test_start": "1970-01-01"}]
        curve = [1.0]
        for r in returns:
            curve.append(curve[-1] * (1.0 + r))
        daily = {"start": folds[0]["test_start"][:10], "model": curve[1:]}
        msg = note(
            "this trial predates the stored baseline curves: model only, rebuilt from its daily "
            "returns (the first day's move is missing)."
        )
    else:
        msg = ""
    return (
        figure_div(
            equity_figure(daily, f"trial #{inp.trial.number}, walk-forward test windows"), "equity"
        )
        + msg
    )


def _metrics_rows(model: dict, no_model: dict, bh: dict, *, sides: bool = False) -> list[list[str]]:
    keys = (*FOLD_METRIC_KEYS, *SIDE_KEYS) if sides else FOLD_METRIC_KEYS
    rows = [
        [esc(k), fmt(k, model.get(k)), fmt(k, no_model.get(k)), fmt(k, bh.get(k))] for k in keys
    ]
    rows.append(
        ["max_drawdown_equity", "–", "–", fmt("max_drawdown_equity", bh.get("max_drawdown_equity"))]
    )
    return rows


def _holdout(inp: ReportInputs) -> str:
    out = ""
    others = [n for n in inp.holdout_trials if n != inp.trial.number]
    if others:
        out += note(
            f"the holdout was also evaluated for trial(s) {others}: choosing among trials by their "
            "holdout would turn it into one more optimisation fold.",
            "warn",
        )
    rec = inp.holdout
    if rec is None:
        return out + note(f"holdout {inp.holdout_note}")

    def window(w: dict[str, Any]) -> str:
        return esc(f"{w['start'][:16]} – {w['end'][:16]} ({w['candles']} candles)")

    def values(v: list[float]) -> str:
        return ", ".join(f"{x:.4g}" for x in v)

    out += table(
        None,
        [
            ["holdout", window(rec.holdout)],
            ["retrained on", window(rec.train)],
            [
                "objective on the holdout",
                esc(
                    f"{rec.objective} = {values(rec.values)} "
                    f"(walk-forward: {values(rec.trial_values)})"
                ),
            ],
            [
                "computed",
                esc(
                    f"{rec.computed_at} (lstm-optuna {rec.version}, study seed "
                    f"{rec.study_seed}, {rec.ensemble_size} member(s) per pair)"
                ),
            ],
        ],
    )
    out += table(
        ["metric", "model", "no-model", "buy-and-hold"],
        _metrics_rows(
            rec.metrics,
            rec.baselines["no_model"],
            rec.baselines["buy_and_hold"],
            sides=inp.futures,
        ),
    )
    if rec.daily_equity.get("model"):
        out += figure_div(
            equity_figure(rec.daily_equity, f"trial #{rec.trial}, holdout"), "holdout"
        )
    return out


def _overfitting(inp: ReportInputs) -> str:
    s = inp.stats
    rows = [
        ["completed trials N", str(s.n_trials)],
        ["daily returns T", str(s.n_days)],
        [
            "Sharpe per day (annual, x sqrt(365))",
            f"{num(s.sharpe)} ({num(s.sharpe_annual, '.2f')})",
        ],
        ["variance of the trials' daily Sharpe V", num(s.sharpe_variance, ".3g")],
        ["expected max Sharpe of N luck trials SR0", num(s.sr0)],
        ["skew / raw kurtosis", f"{num(s.skew, '.3f')} / {num(s.kurtosis, '.3f')}"],
        [
            f"<b>Deflated Sharpe Ratio</b> (>= {DSR_THRESHOLD}: unlikely luck)",
            f"<b>{num(s.dsr, '.3f')}</b>" + (f" ({esc(s.dsr_reason)})" if s.dsr_reason else ""),
        ],
        ["CSCV blocks S / combinations", f"{s.pbo_splits} / {s.pbo_combinations}"],
        ["trials / days used by PBO", f"{s.pbo_columns} / {s.pbo_rows}"],
        [
            "<b>Probability of Backtest Overfitting</b> (~0.5: no better than chance)",
            f"<b>{num(s.pbo, '.3f')}</b>" + (f" ({esc(s.pbo_reason)})" if s.pbo_reason else ""),
        ],
    ]
    out = table(["statistic", "value"], rows)
    out += note(
        "From each completed trial's daily out-of-sample returns; S is the largest even number <= "
        f"16 leaving at least {MIN_BLOCK_DAYS} days per block. See docs/report.md and "
        "docs/statistics.md."
    )
    if s.pbo_logits:
        out += figure_div(pbo_figure(s.pbo_logits), "pbo")
    return out


def _seed_noise(inp: ReportInputs) -> str:
    out = f"<p>{esc(inp.noise_sentence)}</p>"
    if not inp.noise:
        return out + note(
            "The robustness step has not run for this study: "
            "`python -m optimize robustness --study-name NAME` races the best "
            "trials on fresh seed sets."
        )
    if inp.race is not None:
        out += _race(inp)
    rows = []
    for n in inp.noise:
        r = noise_row(n, inp.value_iqr, inp.race)
        mark = " (selected)" if n.trial == inp.trial.number else ""
        rows.append(
            [
                f"#{n.trial}{mark}",
                num(r["recorded"]),
                f"{num(r['mean'])} ± {num(r['std'])}",
                str(len(n.values)),
                f"{num(r['min'])} .. {num(r['max'])}",
                num(r["std_over_iqr"], ".2f"),
                esc(r["race"]) or "–",
                ", ".join(f"{v:.4f}" for v in n.values),
            ]
        )
    out += table(
        [
            "trial",
            "recorded value",
            "mean ± std over fresh seeds",
            "seed sets",
            "min .. max",
            "seed std / IQR across trials",
            "race",
            "values",
        ],
        rows,
    )
    return out + note(
        "The best complete trials by recorded value, raced on fresh seed sets (other training "
        "seeds, same data, the same seed sets for every candidate; docs/seeds.md). IQR of the "
        f"values of the {len(inp.completed)} complete trials: {num(inp.value_iqr)}. The selected "
        "trial is the race's winner: the best mean over fresh seeds, never its recorded value."
    )


def _race(inp: ReportInputs) -> str:
    """The race: one sentence, then who was eliminated after which round and why."""
    race = inp.race
    assert race is not None
    out = f"<p>{esc(race_summary(race))}</p>"
    rows = [
        [
            str(r.number),
            ", ".join(f"#{t}" for t in r.entrants),
            "–" if r.friedman_p is None else f"{r.friedman_p:.3g}",
            "; ".join(f"#{e.trial}: {esc(e.reason)}" for e in r.eliminated) or "–",
        ]
        for r in race.rounds
    ]
    if rows:
        out += table(["round (seed set)", "evaluated", "Friedman p", "eliminated"], rows)
    return out + note(
        "After each round in which the survivors share at least "
        f"{race.rules.first_test} seed sets: a Friedman test over the survivors on those seed "
        "sets; when it rejects at level "
        f"{race.rules.level}, every survivor whose one-sided paired t-test against the leader "
        f"(the best current mean, never eliminated) has p < {race.rules.level} is eliminated."
    )


RENDERERS = {
    "summary": _summary,
    "verdict": lambda inp: f'<p class="verdict">{esc(inp.verdict)}</p>',
    "history": _history,
    "importances": _importances,
    "parallel": _parallel,
    "folds": _folds,
    "equity": _equity,
    "holdout": _holdout,
    "seed_noise": _seed_noise,
    "overfitting": _overfitting,
}


def render(inp: ReportInputs) -> str:
    """The whole page."""
    parts = []
    for sid, title in SECTIONS.items():
        try:
            body = RENDERERS[sid](inp)
        except Exception as exc:  # one broken section must not lose the whole report
            logger.exception("report section %s failed", sid)
            body = note(f"this section failed: {type(exc).__name__}: {exc}", "warn")
        parts.append(f'<section id="{sid}"><h2>{esc(title)}</h2>\n{body}\n</section>')
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    name = esc(inp.study.study_name)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>lstm-optuna report: {name}</title><style>{PAGE_CSS}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>\n<body>\n'
        f'<h1>Study {name}</h1><p class="note">lstm-optuna {esc(__version__)}, '
        f"generated {stamp}</p>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def default_report_path(study_name: str) -> Path:
    """``reports/<study>.html`` (characters unsafe in file names replaced by ``_``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study_name) or "study"
    return DEFAULT_REPORT_DIR / f"{safe}.html"


def write_report(
    study: optuna.Study,
    out: Path | str | None = None,
    *,
    trial_number: int | None = None,
    holdout: bool = True,
) -> Path:
    """Write the report of ``study`` to ``out`` (default ``reports/<study>.html``); returns the
    path."""
    return write_inputs(collect(study, trial_number=trial_number, holdout=holdout), out)


def write_inputs(inp: ReportInputs, out: Path | str | None = None) -> Path:
    """Write the page of collected inputs to ``out`` (default ``reports/<study>.html``)."""
    study = inp.study
    path = Path(out) if out is not None else default_report_path(study.study_name)
    page = render(inp)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    logger.info(
        "report of study %s written to %s (%.1f MB)", study.study_name, path, len(page) / 1e6
    )
    return path
