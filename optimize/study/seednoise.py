"""Seed noise of a study: what its best trials score on fresh seed sets, the race among them,
and the selection it drives.

A trial's value comes from models trained with one seed set
(:func:`optimize.evaluation.walk.fold_seeds`, set 0). The robustness step
(:mod:`optimize.study.robustness`) races the best complete trials on fresh seed sets 1, 2, ...
(:mod:`optimize.study.racing`) and stores one :class:`SeedValue` per trial and set, and the race
itself as one :class:`RaceRecord`. This module reads them back (:func:`read_noise`,
:meth:`RaceRecord.stored`), summarises the values per trial (:class:`SeedNoise`), and picks the
trial the report, the holdout and the export use by default: the race's winner, the best by the
mean over fresh seed sets (:func:`best_by_seed_mean`). Optuna's own values and ranking are never
changed.

Storage: Optuna does not let a finished trial's user attrs change, so the values live in the
study's user attrs, one key per trial and seed set (``"seed_noise:<trial>:<set>"``): every value
is written once, by one process, and never rewritten, so workers never race on a shared record.
The race record (``"seed_race"``) is rewritten by the process that runs the race after each round;
it is a pure function of the stored values and the race's settings (a rerun replays it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from optimize.study.racing import Elimination, Race, RaceRules, Round
from optimize.study.records import RecordError

ATTR_PREFIX = "seed_noise:"
RECORD_FORMAT = 1
"""Version of :class:`SeedValue`'s stored layout."""


def attr_key(trial: int, seed_set: int) -> str:
    """The study user attr that holds trial ``trial``'s value on seed set ``seed_set``."""
    return f"{ATTR_PREFIX}{int(trial)}:{int(seed_set)}"


@dataclass(frozen=True)
class SeedValue:
    """One trial's objective on one fresh seed set, as stored in the study.

    Attributes:
        trial: the trial number.
        seed_set: the seed set (>= 1; 0 is the trial's own value).
        value: the objective of the walk-forward backtest with that seed set.
        ensemble_size: members per pair and fold the models had.
        duration_s: seconds the evaluation took.
        computed_at: ISO time (UTC).
        version: lstm-optuna version that computed it.
        format: :data:`RECORD_FORMAT`.
    """

    trial: int
    seed_set: int
    value: float
    ensemble_size: int
    duration_s: float
    computed_at: str
    version: str
    format: int = RECORD_FORMAT

    def to_attr(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_attr(cls, key: str, raw: Any) -> SeedValue:
        """Read a stored record back.

        Raises:
            RecordError: a record of another format or with missing fields (names the key).
        """
        if not isinstance(raw, dict) or raw.get("format") != RECORD_FORMAT:
            got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise RecordError(
                f"study user attr {key!r} is not a seed-noise record of format {RECORD_FORMAT}, "
                f"but got format={got!r}; rerun `python -m optimize robustness` with this version."
            )
        try:
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__})
        except KeyError as exc:
            raise RecordError(f"study user attr {key!r} lacks field {exc.args[0]!r}.") from None


@dataclass(frozen=True)
class SeedNoise:
    """A trial's values on its fresh seed sets.

    Attributes:
        trial: the trial number.
        recorded: the trial's own value (seed set 0), as Optuna ranks it.
        seed_sets: the fresh sets evaluated, ascending.
        values: the objective on each of them (same order).
    """

    trial: int
    recorded: float
    seed_sets: tuple[int, ...]
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over the fresh seed sets (NaN with fewer than two)."""
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else math.nan

    @property
    def min(self) -> float:
        return float(np.min(self.values)) if self.values else math.nan

    @property
    def max(self) -> float:
        return float(np.max(self.values)) if self.values else math.nan


RACE_ATTR = "seed_race"
"""Study user attr holding the :class:`RaceRecord`."""
RACE_FORMAT = 1
"""Version of :class:`RaceRecord`'s stored layout."""


@dataclass(frozen=True)
class RaceRecord:
    """The race of the robustness step, as stored in the study (one record, rewritten per round).

    Attributes:
        candidates: trial numbers, best recorded value first.
        budget: the most evaluations the race may use.
        max_blocks: the most fresh seed sets (rounds) per candidate.
        level, first_test: the tests' level and the shared seed sets before the first test.
        maximize: the study's direction.
        rounds: per round: ``number`` (= its seed set), ``entrants``, ``friedman_p`` (None: no
            test) and ``eliminated`` (``trial``, ``round``, ``mean``, ``leader``,
            ``leader_mean``, ``p_value``, ``friedman_p``, ``reason``).
        values: per candidate (str key, JSON), its values on seed sets ``1..``.
        winner: the selected trial once the race is over, else None.
        stop: why it is over (:attr:`optimize.study.racing.Race.stop`), None while it runs.
        evaluations: values the race used (stored earlier or computed by it).
        updated_at: ISO time (UTC) of the last write.
        version: lstm-optuna version that wrote it.
        format: :data:`RACE_FORMAT`.
    """

    candidates: list[int]
    budget: int
    max_blocks: int
    level: float
    first_test: int
    maximize: bool
    rounds: list[dict[str, Any]]
    values: dict[str, list[float]]
    winner: int | None
    stop: str | None
    evaluations: int
    updated_at: str
    version: str
    format: int = RACE_FORMAT

    @classmethod
    def of(cls, race: Race, *, updated_at: str, version: str) -> RaceRecord:
        """The record of ``race``."""
        rounds = [
            {
                "number": r.number,
                "entrants": list(r.entrants),
                "friedman_p": r.friedman_p,
                "eliminated": [{**asdict(e), "reason": e.reason} for e in r.eliminated],
            }
            for r in race.rounds
        ]
        return cls(
            candidates=list(race.candidates),
            budget=race.budget,
            max_blocks=race.max_blocks,
            level=race.rules.level,
            first_test=race.rules.first_test,
            maximize=race.maximize,
            rounds=rounds,
            values={str(t): list(v) for t, v in race.values.items()},
            winner=race.winner,
            stop=race.stop,
            evaluations=race.evaluations,
            updated_at=updated_at,
            version=version,
        )

    def race(self) -> Race:
        """The :class:`~optimize.study.racing.Race` this record describes."""
        fields = set(Elimination.__dataclass_fields__)
        rounds = tuple(
            Round(
                int(r["number"]),
                tuple(int(t) for t in r["entrants"]),
                r["friedman_p"],
                tuple(
                    Elimination(**{k: v for k, v in e.items() if k in fields})
                    for e in r["eliminated"]
                ),
            )
            for r in self.rounds
        )
        return Race(
            tuple(self.candidates),
            self.budget,
            self.max_blocks,
            RaceRules(self.level, self.first_test),
            self.maximize,
            rounds,
            {int(t): tuple(v) for t, v in self.values.items()},
        )

    def to_attr(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def stored(cls, study: optuna.Study) -> RaceRecord | None:
        """The study's race record, or None when no race has run.

        Raises:
            RecordError: a record of another format or with missing fields (names the key).
        """
        raw = study.user_attrs.get(RACE_ATTR)
        if raw is None:
            return None
        if not isinstance(raw, dict) or raw.get("format") != RACE_FORMAT:
            got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise RecordError(
                f"study user attr {RACE_ATTR!r} is not a race record of format {RACE_FORMAT}, "
                f"but got format={got!r}; rerun `python -m optimize robustness` with this version."
            )
        try:
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__})
        except KeyError as exc:
            missing = exc.args[0]
            raise RecordError(f"study user attr {RACE_ATTR!r} lacks field {missing!r}.") from None

    def write(self, study: optuna.Study) -> None:
        """Store this record as the study's race (replacing the previous one)."""
        study.set_user_attr(RACE_ATTR, self.to_attr())


def read_values(study: optuna.Study) -> list[SeedValue]:
    """Every stored :class:`SeedValue` of the study (any order)."""
    return [
        SeedValue.from_attr(k, v) for k, v in study.user_attrs.items() if k.startswith(ATTR_PREFIX)
    ]


def read_noise(study: optuna.Study) -> dict[int, SeedNoise]:
    """Per trial number, its :class:`SeedNoise` (only trials with at least one fresh value)."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    by_trial: dict[int, list[SeedValue]] = {}
    for record in read_values(study):
        if record.trial in trials:
            by_trial.setdefault(record.trial, []).append(record)
    out = {}
    for number, records in sorted(by_trial.items()):
        records.sort(key=lambda r: r.seed_set)
        out[number] = SeedNoise(
            number,
            float(trials[number].values[0]),
            tuple(r.seed_set for r in records),
            tuple(float(r.value) for r in records),
        )
    return out


def race_noise(study: optuna.Study) -> dict[int, SeedNoise]:
    """Per trial number, its :class:`SeedNoise` over the seed sets of the stored race (only
    candidates with at least one race value), or :func:`read_noise` when no race is stored.

    Values stored outside the race (a longer earlier race, an earlier version's fixed seed sets)
    stay in the study for a later race to reuse but are not part of this one's means.
    """
    record = RaceRecord.stored(study)
    if record is None:
        return read_noise(study)
    trials = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    out = {}
    for number in sorted(record.candidates):
        values = tuple(float(v) for v in record.values.get(str(number), ()))
        if values and number in trials:
            seed_sets = tuple(range(1, len(values) + 1))
            out[number] = SeedNoise(number, float(trials[number].values[0]), seed_sets, values)
    return out


def direction_sign(study: optuna.Study) -> float:
    """+1 when the study's (first) objective is maximised, -1 when minimised."""
    return 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0


def best_by_seed_mean(study: optuna.Study) -> FrozenTrial | None:
    """The complete trial with the best mean over its fresh seed sets.

    With a stored race (:class:`RaceRecord`): its winner, or while it is unfinished (interrupted)
    its leader: the survivor with the best mean over the seed sets all survivors share. Without
    one (studies of earlier versions): the best mean among the trials with the most seed sets
    evaluated (ties: the lower number), so a trial measured on one set does not beat one measured
    on three by luck. None for multi-objective studies and when no trial has fresh values (then
    the caller uses Optuna's best trial).
    """
    if len(study.directions) != 1:
        return None
    record = RaceRecord.stored(study)
    if record is not None:
        race = record.race()
        number = race.winner if race.winner is not None else race.leader
        trials = study.get_trials(deepcopy=False)
        if number is not None and trials[number].state == TrialState.COMPLETE:
            return trials[number]
    noise = {n: s for n, s in read_noise(study).items() if np.isfinite(s.mean)}
    if not noise:
        return None
    most = max(len(s.values) for s in noise.values())
    sign = direction_sign(study)
    number = min(
        (n for n, s in noise.items() if len(s.values) == most),
        key=lambda n: (-sign * noise[n].mean, n),
    )
    return study.get_trials(deepcopy=False)[number]


def value_iqr(study: optuna.Study) -> float:
    """Inter-quartile range of the (first) values of the study's complete trials (NaN: < 2)."""
    values = [
        t.values[0]
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values and math.isfinite(t.values[0])
    ]
    if len(values) < 2:
        return math.nan
    q1, q3 = np.percentile(values, [25, 75])
    return float(q3 - q1)


def noise_sentence(noise: SeedNoise | None, iqr: float) -> str:
    """One plain sentence on what the seed spread of the selected trial means."""
    if noise is None or not math.isfinite(noise.std):
        return (
            "The selected trial was not re-evaluated on fresh seeds (run `python -m optimize "
            "robustness`), so how much of its value is the training seed is unknown."
        )
    if not math.isfinite(iqr) or iqr == 0:
        return (
            f"The selected trial scores {noise.mean:.3f} ± {noise.std:.3f} over fresh seeds; "
            "there are too few complete trials to compare that spread with."
        )
    ratio = noise.std / iqr
    if ratio >= 0.5:
        verdict = (
            "the seed moves a trial's value about as much as the parameters do: the "
            "ranking of trials is mostly noise, and only the seed-mean is worth reading"
        )
    elif ratio >= 0.2:
        verdict = (
            "the seed moves the value by a sizeable part of the spread between trials: "
            "close trials cannot be told apart, only large differences are real"
        )
    else:
        verdict = "the seed moves the value little next to the spread between trials"
    return (
        f"Seed std {noise.std:.3f} is {ratio:.2f} of the IQR {iqr:.3f} of values across "
        f"complete trials: {verdict}."
    )
