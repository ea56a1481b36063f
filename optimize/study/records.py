"""What a study stores: one typed, versioned record per finished trial and one for the study.

Every writer and reader of a trial's user attributes goes through :class:`TrialRecord`; the study's
own attributes (the run config and search space it was created with, the version that created it)
go through :class:`StudyRecord`. optuna-dashboard shows the same attributes as plain JSON.

Versions: :data:`TRIAL_SCHEMA` is written with every trial (user attr ``"schema"``). Trials written
before the attribute existed are schema 1, which had the same keys; they still load. A trial of a
newer schema, or one that lacks a key, gets a :class:`RecordError` naming the trial and the key.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from base.errors import StudyError
from optimize.config import RunConfig, parse_config

TRIAL_SCHEMA = 4
"""Version of :class:`TrialRecord`'s layout (1: before ``schema`` was stored; 2: adds
``trades``; 3: ``params`` may hold FreqAI pipeline keys (``features``) an older reader would
ignore, a fold with the dissimilarity index on holds ``di_blocked``, ``worker_host`` is stored
beside ``worker_pid``, and ``sampler_seed``; 4: ``params`` hold the direction
(``signal.direction``) and may hold backtest keys (``backtest.leverage``), every span's metrics
hold the long and short trade counts and the funding paid (:class:`SideCounts`), every trade its
side, leverage and funding fees)."""


class RecordError(StudyError):
    """A stored record that this version cannot read; the message names the trial/study and key."""


_ATTR_NAMES = {
    "params": "resolved_params",
    "daily_returns": "oos_daily_returns",
    "daily_equity": "oos_daily_equity",
}
"""Field -> user attr name where they differ (the attr names predate the record)."""


def _attr(name: str) -> str:
    return _ATTR_NAMES.get(name, name)


@dataclass(frozen=True)
class SideCounts:
    """A span's trades by side and the funding they paid.

    Attributes:
        long_trades, short_trades: the trades of each side.
        funding_paid: funding the trades paid, stake currency (``-sum(funding_fees)`` with
            freqtrade's sign: > 0 paid, < 0 received; 0 in spot mode).
    """

    long_trades: int
    short_trades: int
    funding_paid: float

    @classmethod
    def of(cls, metrics: dict[str, Any]) -> SideCounts:
        """Read a span's stored metrics (a fold's, the out-of-sample span's, a holdout's).

        Metrics stored before the counts existed (trial schema <= 3, holdout records of that
        time) come from spot studies, which traded longs only without funding: their
        ``total_trades`` are long trades.
        """
        if "long_trades" in metrics:
            return cls(
                int(metrics["long_trades"]),
                int(metrics["short_trades"]),
                float(metrics["funding_paid"]),
            )
        return cls(int(metrics.get("total_trades", 0)), 0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrialRecord:
    """Everything a finished trial stores besides Optuna's own params and values.

    Attributes:
        params: the resolved parameters (:meth:`optimize.search.space.TrialParams.to_dict`), written
            when the trial starts so a failed or pruned trial keeps them too.
        folds: one dict per walk-forward fold: dates, ``score`` (the fold alone),
            ``value_so_far`` (folds 0..k back to back: what the pruner saw), ``metrics``,
            ``no_model``, ``buy_and_hold``, ``pairs`` (thresholds, seeds, training info) and,
            with the dissimilarity index on, ``di_blocked`` (:attr:`di_blocked`).
        oos_metrics: metrics of the backtest over all test windows back to back.
        baselines: ``buy_and_hold`` and ``no_model`` over the same span.
        daily_returns: the model's daily returns over the span (DSR, PBO).
        daily_equity: end-of-day equity of the model and both baselines (report plots).
        duration_s: seconds the evaluation took.
        worker_pid: the worker process that ran it.
        worker_host: the host name of the machine that ran it (:func:`socket.gethostname`);
            None in schemas 1 and 2. With ``worker_pid`` it names the process across machines.
        sampler_seed: the seed of the sampler that drew its parameters
            (:mod:`optimize.study.sampling`; None: before it was stored).
        trades: the model's trades over the span (pair, dates, exit reason, profits); empty in
            schema 1.
        schema: :data:`TRIAL_SCHEMA` of the writer.
    """

    params: dict[str, Any]
    folds: list[dict[str, Any]] = field(default_factory=list)
    oos_metrics: dict[str, float] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    daily_returns: list[float] = field(default_factory=list)
    daily_equity: dict[str, Any] = field(default_factory=dict)
    duration_s: float = math.nan
    worker_pid: int | None = None
    worker_host: str | None = None
    sampler_seed: int | None = None
    trades: list[dict[str, Any]] = field(default_factory=list)
    schema: int = TRIAL_SCHEMA

    @property
    def trade_count(self) -> int:
        return int(self.oos_metrics.get("total_trades", 0))

    @property
    def sides(self) -> list[SideCounts]:
        """Per fold: its trades by side and the funding they paid."""
        return [SideCounts.of(fold.get("metrics", {})) for fold in self.folds]

    @property
    def sides_total(self) -> SideCounts:
        """The same over the whole out-of-sample span (the backtest the value comes from)."""
        return SideCounts.of(self.oos_metrics)

    @property
    def di_blocked(self) -> list[float | None]:
        """Per fold: the share of the test window's candles with a prediction (all pairs) on which
        the dissimilarity index blocked the entry; None where it was off."""
        return [fold.get("di_blocked") for fold in self.folds]

    @property
    def di_blocked_total(self) -> float | None:
        """The same share over all folds (None: the index was off)."""
        pairs = [
            info
            for fold in self.folds
            for info in fold.get("pairs", {}).values()
            if "di_predicted_candles" in info
        ]
        n = sum(info["di_predicted_candles"] for info in pairs)
        if not pairs:
            return None
        return sum(info["di_blocked_candles"] for info in pairs) / n if n else math.nan

    def to_user_attrs(self) -> dict[str, Any]:
        """The user attrs to set (``trade_count`` included for the dashboard's table)."""
        out = {_attr(f.name): getattr(self, f.name) for f in dataclasses.fields(self)}
        out["trade_count"] = self.trade_count
        return out

    @staticmethod
    def start_attrs(
        params: dict[str, Any],
        worker_pid: int,
        worker_host: str,
        sampler_seed: int | None = None,
    ) -> dict[str, Any]:
        """The attrs a trial stores when it starts (before it may be pruned or fail)."""
        return {
            _attr("params"): params,
            "worker_pid": worker_pid,
            "worker_host": worker_host,
            "sampler_seed": sampler_seed,
            "schema": TRIAL_SCHEMA,
        }

    @staticmethod
    def worker_of(trial: FrozenTrial) -> int | None:
        """The pid of the worker that started ``trial`` (None: it never started one of ours)."""
        return trial.user_attrs.get("worker_pid")

    @staticmethod
    def host_of(trial: FrozenTrial) -> str | None:
        """The host name of the machine whose worker started ``trial`` (None: unknown, e.g. a
        trial of schema 1 or 2)."""
        return trial.user_attrs.get("worker_host")

    @classmethod
    def of(cls, trial: FrozenTrial, *, complete: bool = True) -> TrialRecord:
        """Read a trial's record.

        Args:
            trial: a trial run by this project's worker.
            complete: require the keys a COMPLETE trial has (False: only ``params``).

        Raises:
            RecordError: a newer schema, or a missing key (names the trial and the key).
        """
        attrs = trial.user_attrs
        schema = attrs.get("schema", 1)
        if not isinstance(schema, int) or schema > TRIAL_SCHEMA:
            raise RecordError(
                f"trial {trial.number} was stored with record schema {schema!r}, newer than this "
                f"version reads ({TRIAL_SCHEMA}); upgrade lstm-optuna to read it."
            )
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name
            not in ("schema", "trades", "worker_pid", "worker_host", "sampler_seed", "duration_s")
        ]
        if not complete:
            required = ["params"]
        missing = [_attr(n) for n in required if _attr(n) not in attrs]
        if missing:
            raise RecordError(
                f"trial {trial.number} ({trial.state.name}) has no {missing[0]!r} user attr; it "
                f"was not run to the end by this project's worker (it has {sorted(attrs)})."
            )
        values = {
            f.name: attrs[_attr(f.name)] for f in dataclasses.fields(cls) if _attr(f.name) in attrs
        }
        values["schema"] = schema
        return cls(**values)


def write_trial(trial: optuna.Trial, record: TrialRecord) -> None:
    """Store ``record`` as the trial's user attrs."""
    for key, value in record.to_user_attrs().items():
        trial.set_user_attr(key, value)


@dataclass(frozen=True)
class StudyRecord:
    """What a study stores about itself when it is created.

    Attributes:
        fingerprint: ``{"config": RunConfig.to_dict(), "space": ...}``; a resume is checked
            against it.
        version: the lstm-optuna version that created the study.
        config_source, space_source: the files they came from.
        objective: the objective's name.
    """

    fingerprint: dict[str, Any]
    version: str
    config_source: str
    space_source: str
    objective: str

    def to_user_attrs(self) -> dict[str, Any]:
        names = {"version": "lstm_optuna_version"}
        return {names.get(f.name, f.name): getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def stored(cls, study: optuna.Study) -> StudyRecord | None:
        """The study's record, or None when it has none yet (a study being created)."""
        return cls.of(study) if "fingerprint" in study.user_attrs else None

    @classmethod
    def of(cls, study: optuna.Study) -> StudyRecord:
        """Read the study's record.

        Raises:
            RecordError: the study was not created by this project's runner.
        """
        attrs = study.user_attrs
        fingerprint = attrs.get("fingerprint")
        if not isinstance(fingerprint, dict) or "config" not in fingerprint:
            raise RecordError(
                f"study {study.study_name!r} has no stored run config (user attr 'fingerprint'); "
                "only studies created by `python -m optimize run|worker` can be evaluated, "
                f"but got user attrs {sorted(k for k in attrs if ':' not in k)}."
            )
        return cls(
            fingerprint=fingerprint,
            version=str(attrs.get("lstm_optuna_version", "unknown")),
            config_source=str(attrs.get("config_source", "unknown")),
            space_source=str(attrs.get("space_source", "unknown")),
            objective=str(attrs.get("objective", "unknown")),
        )


HOLDOUT_PREFIX = "holdout:"
"""Study user attrs ``"holdout:<trial number>"``: one holdout record each
(:class:`optimize.evaluation.records.HoldoutRecord`, stored by :func:`store_holdout`)."""
HOLDOUT_ATTR = "holdout"
"""The older layout, still read: one study user attr holding every holdout record,
``{str(trial_number): record}`` (read, merged and rewritten by each writer, so two processes
storing at once could lose one)."""
TOUCHED_ATTR = "holdout_touched"
"""The older layout's record of :class:`HoldoutTouched`, still read."""


def holdout_key(trial_number: int) -> str:
    """The study user attr that holds trial ``trial_number``'s holdout record."""
    return f"{HOLDOUT_PREFIX}{int(trial_number)}"


def stored_holdouts(study: optuna.Study) -> dict[int, dict[str, Any]]:
    """The study's stored holdout records (as stored: dicts of any format) by trial number; empty
    when there are none. Both layouts are read; a record under its own key wins over one of the
    older single attr."""
    attrs = study.user_attrs
    out = {int(k): dict(v) for k, v in (attrs.get(HOLDOUT_ATTR) or {}).items()}
    for key, value in attrs.items():
        if key.startswith(HOLDOUT_PREFIX):
            out[int(key[len(HOLDOUT_PREFIX) :])] = dict(value)
    return out


def store_holdout(study: optuna.Study, trial_number: int, record: dict[str, Any]) -> None:
    """Store one holdout record under its own key (one write; other trials' records untouched)."""
    study.set_user_attr(holdout_key(trial_number), record)


@dataclass(frozen=True)
class HoldoutTouched:
    """When the holdout was first and last looked at, and for which trials.

    Every trial whose holdout is evaluated weakens the holdout as untouched evidence: the report
    names these trials and a worker joining the study afterwards warns. Read from the stored
    records (each says when it was computed) and, for studies written before they had a key each,
    from the older record (:data:`TOUCHED_ATTR`).

    Attributes:
        first_at, last_at: ISO timestamps (UTC) of the first and the latest evaluation.
        trials: the trial numbers evaluated, ascending.
    """

    first_at: str
    last_at: str
    trials: tuple[int, ...]

    @classmethod
    def of(cls, study: optuna.Study) -> HoldoutTouched | None:
        """The study's record, or None while the holdout is untouched."""
        times: list[str] = []
        trials: set[int] = set()
        raw = study.user_attrs.get(TOUCHED_ATTR)
        if raw:
            first = str(raw.get("first_at", ""))
            times += [first, str(raw.get("last_at", first))]
            trials.update(int(n) for n in raw.get("trials", []))
        for number, record in stored_holdouts(study).items():
            trials.add(number)
            if record.get("computed_at"):
                times.append(str(record["computed_at"]))
        if not trials:
            return None
        times = sorted(t for t in times if t)
        return cls(times[0] if times else "", times[-1] if times else "", tuple(sorted(trials)))


def study_config(study: optuna.Study) -> RunConfig:
    """The :class:`~optimize.config.RunConfig` a study was created with.

    Raises:
        RecordError: the study was not made by this project's runner (no fingerprint).
    """
    return parse_config(StudyRecord.of(study).fingerprint["config"], f"study {study.study_name!r}")
