"""Holdout evaluation: window geometry, trial selection, evaluated once and reused, never selects.

One real smoke study (2 pairs, 3 folds, real candles, real Lightning training): this module's copy
of conftest's ``smoke_study``.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

import optimize.evaluation.holdout as holdout_mod
import optimize.evaluation.walk as walk_mod
from optimize.backtest.metrics import buy_and_hold
from optimize.config import load_config
from optimize.data import load_candles
from optimize.evaluation.holdout import holdout_fold
from optimize.evaluation.inputs import StudyData
from optimize.evaluation.records import HOLDOUT_FORMAT
from optimize.study.holdout import evaluate_holdout, stored_holdout
from optimize.study.records import (
    HOLDOUT_ATTR,
    HoldoutTouched,
    store_holdout,
    stored_holdouts,
    study_config,
)
from optimize.study.selection import select_trial
from optimize.walkforward import WalkForwardSettings, holdout_windows, make_folds
from tests.optimize.study.helpers import copy_study, fresh_pg_database, pg_unreachable

SMOKE_CONFIG = Path(__file__).resolve().parents[3] / "configs" / "smoke.yaml"
STUDY = "smoke"  # the study of conftest's smoke_study, this module's copy


def _load(storage: str) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=storage)


def _span_dates(config) -> pd.DatetimeIndex:
    candles = load_candles(
        config.data.pairs[0],
        config.data.timeframe,
        datadir=config.data.path,
        end=pd.Timestamp(config.data.end, tz="UTC"),
    )
    return pd.DatetimeIndex(
        candles["date"][candles["date"] >= pd.Timestamp(config.data.start, tz="UTC")]
    )


# --------------------------------------------------------------------------- fold geometry


@pytest.mark.parametrize("purge", [0, 24, 60])
def test_holdout_windows_continue_the_schedule_over_the_holdout(purge):
    """The holdout is traded like FreqAI does: test_days windows from its start (the last one
    ends with the span), each trained on the train_days ending purge candles before it."""
    config = load_config(SMOKE_CONFIG)
    dates = _span_dates(config)
    settings = WalkForwardSettings(train_days=20, test_days=7, purge_candles=purge, holdout_days=9)
    plan = make_folds(dates, settings, "1h")
    windows = holdout_windows(plan, dates)
    assert [w.index for w in windows] == [len(plan.folds), len(plan.folds) + 1]
    assert windows[0].test_start == plan.holdout.start and windows[-1].test_end == plan.holdout.end
    assert windows[0].test_end == windows[1].test_start == plan.holdout.start + pd.Timedelta(days=7)
    assert windows[0].test.start == plan.holdout.slice.start
    assert windows[-1].test.stop == plan.holdout.slice.stop
    for a, b in itertools.pairwise(windows):
        assert a.test.stop == b.test.start  # back to back, every holdout candle traded once
    for fold in windows:
        assert fold.train.stop + purge <= fold.test.start  # purge on positions
        assert fold.train_end == fold.test_start - pd.Timedelta(hours=purge)
        assert fold.train_end - fold.train_start == pd.Timedelta(days=20)
        train_dates = dates[fold.train]
        assert train_dates[0] == fold.train_start and train_dates[-1] < fold.train_end
        # same length as the walk-forward folds' train windows (the span has no gaps)
        assert (
            fold.train.stop - fold.train.start
            == plan.folds[0].train.stop - plan.folds[0].train.start
        )
    assert holdout_fold(plan, dates) == windows[0]


def test_holdout_fold_without_holdout_says_so():
    config = load_config(SMOKE_CONFIG)
    dates = _span_dates(config)
    plan = make_folds(dates, WalkForwardSettings(train_days=20, test_days=7, holdout_days=0), "1h")
    with pytest.raises(ValueError, match="holdout_days"):
        holdout_fold(plan, dates)


# --------------------------------------------------------------------------- trial selection


def _tell(study, values, *, params=True, state=TrialState.COMPLETE):
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    if params:
        trial.set_user_attr("resolved_params", {})
    study.tell(trial, values if state == TrialState.COMPLETE else None, state=state)


def test_select_trial_multi_objective_picks_best_first_objective_on_the_front():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for values in [(1, 5), (3, 9), (2, 1), (3, 2), (3, 2)]:
        _tell(study, values)
    # front: (2,1), (3,2) twice; best first objective 3, lowest number among ties: 3
    assert select_trial(study).number == 3
    assert select_trial(study, 1).number == 1  # explicit: any COMPLETE trial


def test_select_trial_minimize_single_objective():
    study = optuna.create_study(direction="minimize")
    for v in (3.0, -1.0, 2.0):
        _tell(study, v)
    assert select_trial(study).number == 1


def test_select_trial_errors_name_the_problem():
    study = optuna.create_study(study_name="sel")
    _tell(study, None, state=TrialState.FAIL)
    with pytest.raises(ValueError, match="no COMPLETE trial"):
        select_trial(study)
    with pytest.raises(ValueError, match="trial 0 of study 'sel' is FAIL"):
        select_trial(study, 0)
    with pytest.raises(ValueError, match=r"trial_number=5"):
        select_trial(study, 5)
    with pytest.raises(ValueError, match="integer or None"):
        select_trial(study, "0")
    _tell(study, 1.0, params=False)
    with pytest.raises(ValueError, match="resolved_params"):
        select_trial(study)


def test_study_without_fingerprint_is_refused():
    study = optuna.create_study()
    with pytest.raises(ValueError, match="fingerprint"):
        study_config(study)


def test_purge_shorter_than_window_is_refused_before_training(smoke_study):
    real = _load(smoke_study)
    config = load_config(SMOKE_CONFIG)
    fingerprint = copy.deepcopy(real.user_attrs["fingerprint"])
    fingerprint["config"]["walkforward"]["purge_candles"] = 1
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("fingerprint", fingerprint)
    best = real.best_trial
    study.add_trial(
        optuna.trial.create_trial(
            value=best.value,
            params=best.params,
            distributions=best.distributions,
            user_attrs={"resolved_params": best.user_attrs["resolved_params"]},
        )
    )
    window = best.user_attrs["resolved_params"]["lstm"]["window_size"]
    assert window > 1 and config.walkforward.purge_candles >= window
    with pytest.raises(ValueError, match="purge_candles=1 is shorter"):
        evaluate_holdout(study)
    assert stored_holdouts(study) == {}


# --------------------------------------------------------------------------- evaluated once


def test_holdout_is_evaluated_once_then_reused(smoke_study, monkeypatch):
    study = _load(smoke_study)
    before = {t.number: (t.values, copy.deepcopy(t.user_attrs)) for t in study.get_trials()}
    best_before = study.best_trial.number
    calls = {"fit": 0, "load": 0}
    real_fit, real_load = walk_mod.fit_pair_fold, StudyData.load

    def counting_fit(*args, **kwargs):
        calls["fit"] += 1
        return real_fit(*args, **kwargs)

    def counting_load(config, **kwargs):
        calls["load"] += 1
        return real_load(config, **kwargs)

    monkeypatch.setattr(walk_mod, "fit_pair_fold", counting_fit)
    monkeypatch.setattr(holdout_mod.StudyData, "load", staticmethod(counting_load))
    record = evaluate_holdout(study)
    config = study_config(study)
    assert calls == {"fit": len(config.data.pairs), "load": 1}
    assert record.trial == best_before

    fresh = _load(smoke_study)  # another process would see it in the storage
    assert stored_holdout(fresh, best_before) == record
    assert HoldoutTouched.of(fresh).trials == (best_before,)
    again = evaluate_holdout(fresh)
    explicit = evaluate_holdout(fresh, best_before)
    assert again == record and explicit == record
    assert calls == {"fit": len(config.data.pairs), "load": 1}  # nothing retrained, nothing loaded

    # never used to select: trials, their values and attrs, and the best trial are untouched
    after = {t.number: (t.values, t.user_attrs) for t in fresh.get_trials()}
    assert after == before
    assert fresh.best_trial.number == best_before


def test_holdout_record_matches_independent_figures(smoke_study):
    study = _load(smoke_study)
    record = evaluate_holdout(study)  # stored by the test above or computed now
    config = study_config(study)
    data_dates = _span_dates(config)
    plan = make_folds(data_dates, config.walkforward, config.data.timeframe)
    start, end = plan.holdout.start, plan.holdout.end
    assert record.holdout["start"] == str(start) and record.holdout["end"] == str(end)
    assert record.holdout["candles"] == int(((data_dates >= start) & (data_dates < end)).sum())
    purge = pd.Timedelta(hours=config.walkforward.purge_candles)
    assert pd.Timestamp(record.train["end"]) == start - purge
    assert pd.Timestamp(record.train["end"]) - pd.Timestamp(record.train["start"]) == pd.Timedelta(
        days=config.walkforward.train_days
    )
    # buy-and-hold from the candles, computed here without the study code
    per_pair = [
        buy_and_hold(
            load_candles(p, "1h", datadir=config.data.path), start, end, fee=config.backtest.fee
        )
        for p in config.data.pairs
    ]
    bh = record.baselines["buy_and_hold"]["profit_total"]
    assert bh == pytest.approx(np.mean([m["profit_total"] for m in per_pair]), rel=1e-12)
    eq = record.daily_equity
    assert eq["start"] == str(start.date())
    assert len(eq["model"]) == (end - start).days
    assert eq["model"][-1] == pytest.approx(1 + record.metrics["profit_total"], abs=2e-6)
    assert eq["buy_and_hold"][-1] == pytest.approx(1 + bh, abs=2e-6)
    assert eq["no_model"][-1] == pytest.approx(
        1 + record.baselines["no_model"]["profit_total"], abs=2e-6
    )
    assert set(record.pairs) == set(config.data.pairs)
    # the trades verify compares with freqtrade's
    assert len(record.trades) == record.metrics["total_trades"]
    assert sum(
        t["profit_abs"] for t in record.trades
    ) / config.backtest.dry_run_wallet == pytest.approx(record.metrics["profit_total"], abs=1e-9)
    assert record.windows[0].test_start == str(start)
    assert record.objective == config.study.objective and len(record.values) == 1


def test_a_record_of_an_older_format_is_recomputed_identically(
    smoke_study_file, smoke_study, tmp_path
):
    record = evaluate_holdout(_load(smoke_study))  # stored by the tests above or computed now
    # a study of the older layout (one attr for every record) whose record has an older format
    pristine = copy_study(smoke_study_file, tmp_path / "old.db")
    old = {k: v for k, v in record.to_dict().items() if k != "trades"}
    old["format"] = 1
    _load(pristine).set_user_attr(HOLDOUT_ATTR, {str(record.trial): old})
    assert stored_holdout(_load(pristine), record.trial) is None
    again = evaluate_holdout(_load(pristine))
    assert again.format == HOLDOUT_FORMAT
    # the same seeds on the same data: the same trades and figures (CPU)
    assert again.trades == record.trades and again.metrics == record.metrics
    assert stored_holdout(_load(pristine), record.trial) == again


def test_records_of_the_older_single_attr_are_read_without_retraining(
    smoke_study_file, smoke_study, tmp_path, monkeypatch
):
    """Studies made before each record had its own key keep every record in one attr: they are
    read as they are (nothing recomputed), and a record stored now joins them."""
    record = evaluate_holdout(_load(smoke_study))  # stored by the tests above or computed now
    pristine = copy_study(smoke_study_file, tmp_path / "old.db")
    study = _load(pristine)
    study.set_user_attr(HOLDOUT_ATTR, {str(record.trial): record.to_dict()})
    study.set_user_attr(
        "holdout_touched",
        {"first_at": record.computed_at, "last_at": record.computed_at, "trials": [record.trial]},
    )
    fits = []
    monkeypatch.setattr(walk_mod, "fit_pair_fold", lambda *a, **k: fits.append(1))
    assert evaluate_holdout(_load(pristine), record.trial) == record
    assert fits == []
    touched = HoldoutTouched.of(_load(pristine))
    assert touched == HoldoutTouched(record.computed_at, record.computed_at, (record.trial,))


# --------------------------------------------------------------------------- concurrent writers

WRITERS, RECORDS_EACH = 2, 20


def _store_holdouts(url: str, study_name: str, numbers: list[int], start) -> None:
    """One writer process: open the study, wait for the others, store a record per trial."""
    study = optuna.load_study(study_name=study_name, storage=url)
    start.wait()
    for number in numbers:
        record = {"format": HOLDOUT_FORMAT, "trial": number, "computed_at": f"t{number:03d}"}
        store_holdout(study, number, record)


def _stored_by_concurrent_writers(url: str) -> optuna.Study:
    """``WRITERS`` real processes store holdout records of different trials at the same time."""
    import multiprocessing

    optuna.create_study(study_name="holdouts", storage=url)
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(WRITERS)
    numbers = [list(range(k, WRITERS * RECORDS_EACH, WRITERS)) for k in range(WRITERS)]
    procs = [
        spawn.Process(target=_store_holdouts, args=(url, "holdouts", numbers[k], start))
        for k in range(WRITERS)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    return optuna.load_study(study_name="holdouts", storage=url)


def _assert_none_lost(study: optuna.Study) -> None:
    stored = stored_holdouts(study)
    assert sorted(stored) == list(range(WRITERS * RECORDS_EACH))
    assert all(record["trial"] == n for n, record in stored.items())
    assert HoldoutTouched.of(study).trials == tuple(range(WRITERS * RECORDS_EACH))


def test_writers_storing_holdouts_at_once_lose_none_on_sqlite(tmp_path):
    _assert_none_lost(_stored_by_concurrent_writers(f"sqlite:///{tmp_path / 'h.db'}"))


@pytest.mark.postgres
def test_writers_storing_holdouts_at_once_lose_none_on_postgres():
    if reason := pg_unreachable():
        pytest.skip(reason)
    with fresh_pg_database("lstm_optuna_holdouts") as url:
        _assert_none_lost(_stored_by_concurrent_writers(url))
