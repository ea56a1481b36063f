"""The typed records of what a study stores: round trip, old schema, clear errors."""

from __future__ import annotations

import optuna
import pytest

from optimize.study.records import (
    TOUCHED_ATTR,
    TRIAL_SCHEMA,
    HoldoutTouched,
    RecordError,
    SideCounts,
    StudyRecord,
    TrialRecord,
    holdout_key,
    store_holdout,
    study_config,
    write_trial,
)


def _trial(attrs: dict) -> optuna.trial.FrozenTrial:
    study = optuna.create_study()
    trial = study.ask()
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    study.tell(trial, 1.0)
    return study.trials[0]


RECORD = TrialRecord(
    params={"lstm": {}},
    folds=[{"fold": 0}],
    oos_metrics={"total_trades": 7.0},
    baselines={"buy_and_hold": {}, "no_model": {}},
    daily_returns=[0.0, 0.01],
    daily_equity={"model": [1.0]},
    duration_s=1.5,
    worker_pid=12,
    worker_host="node-7",
    trades=[{"pair": "BTC/USDT"}],
)


def test_trial_record_round_trip_through_a_real_trial() -> None:
    study = optuna.create_study()
    trial = study.ask()
    write_trial(trial, RECORD)
    study.tell(trial, 1.0)
    frozen = study.trials[0]
    assert TrialRecord.of(frozen) == RECORD
    assert frozen.user_attrs["trade_count"] == 7 and frozen.user_attrs["schema"] == TRIAL_SCHEMA
    assert frozen.user_attrs["resolved_params"] == {"lstm": {}}  # the dashboard's names stay


def test_schema_1_trials_still_load() -> None:
    attrs = {k: v for k, v in RECORD.to_user_attrs().items() if k not in ("schema", "trades")}
    record = TrialRecord.of(_trial(attrs))
    assert record.schema == 1 and record.trades == [] and record.folds == RECORD.folds


def test_schema_2_trials_load_without_a_host() -> None:
    attrs = {k: v for k, v in RECORD.to_user_attrs().items() if k != "worker_host"}
    record = TrialRecord.of(_trial({**attrs, "schema": 2}))
    assert record.schema == 2 and record.worker_host is None and record.worker_pid == 12
    assert record.trades == RECORD.trades


def test_start_attrs_name_the_process_across_machines() -> None:
    trial = _trial(TrialRecord.start_attrs({"lstm": {}}, 4321, "node-7"))
    assert TrialRecord.worker_of(trial) == 4321 and TrialRecord.host_of(trial) == "node-7"
    assert TrialRecord.of(trial, complete=False).worker_host == "node-7"
    assert TrialRecord.host_of(_trial({"worker_pid": 1})) is None


def test_missing_key_and_newer_schema_are_named() -> None:
    attrs = RECORD.to_user_attrs()
    del attrs["folds"]
    with pytest.raises(RecordError, match=r"trial 0 \(COMPLETE\) has no 'folds' user attr"):
        TrialRecord.of(_trial(attrs))
    assert TrialRecord.of(_trial(attrs), complete=False).folds == []
    with pytest.raises(RecordError, match="record schema 99, newer"):
        TrialRecord.of(_trial({**RECORD.to_user_attrs(), "schema": 99}))


def test_study_record_and_config(smoke_study) -> None:
    study = optuna.load_study(study_name="smoke", storage=smoke_study)
    record = StudyRecord.of(study)
    assert record.objective == "sharpe" and record.config_source.endswith("smoke.yaml")
    assert study_config(study).data.pairs == ("BTC/USDT", "ETH/USDT")
    with pytest.raises(RecordError, match="no stored run config"):
        StudyRecord.of(optuna.create_study(study_name="bare"))


def test_holdout_touched_is_read_from_both_layouts_and_absent_while_untouched() -> None:
    study = optuna.create_study(study_name="touched")
    assert HoldoutTouched.of(study) is None
    assert StudyRecord.stored(study) is None
    # the older layout: one record of the trials evaluated
    study.set_user_attr(
        TOUCHED_ATTR,
        {"first_at": "2026-01-01T00:00:00", "last_at": "2026-01-02T00:00:00", "trials": [7]},
    )
    touched = HoldoutTouched.of(study)
    assert touched == HoldoutTouched("2026-01-01T00:00:00", "2026-01-02T00:00:00", (7,))
    # a record stored now under its own key: its trial and time join them
    store_holdout(study, 3, {"format": 2, "computed_at": "2026-01-03T00:00:00"})
    assert HoldoutTouched.of(study) == HoldoutTouched(
        "2026-01-01T00:00:00", "2026-01-03T00:00:00", (3, 7)
    )
    assert study.user_attrs[holdout_key(3)]["computed_at"] == "2026-01-03T00:00:00"


def test_sides_per_fold_and_span_and_records_written_before_them() -> None:
    """Schema 4 stores each span's long and short trades and funding paid; metrics stored before
    (spot studies: longs only, no funding) read as that."""
    sides = {"long_trades": 3, "short_trades": 4, "funding_paid": -1.25}
    record = TrialRecord(
        params={"lstm": {}},
        folds=[{"fold": 0, "metrics": {"total_trades": 7.0, **sides}}, {"fold": 1, "metrics": {}}],
        oos_metrics={"total_trades": 7.0, **sides},
    )
    study = optuna.create_study()
    trial = study.ask()
    write_trial(trial, record)
    study.tell(trial, 1.0)
    read = TrialRecord.of(study.trials[0])
    assert read.sides == [SideCounts(3, 4, -1.25), SideCounts(0, 0, 0.0)]
    assert read.sides_total == SideCounts(3, 4, -1.25)
    assert read.sides_total.to_dict() == sides
    old = TrialRecord.of(_trial({**RECORD.to_user_attrs(), "schema": 3}))
    assert old.schema == 3 and old.sides_total == SideCounts(7, 0, 0.0)
    assert SideCounts.of({}) == SideCounts(0, 0, 0.0)
