"""Declarative search spaces (YAML) and the typed parameters of one trial.

A space file has up to six sections; each key is either a constant or a distribution::

    lstm:                      # LSTMParams fields
      num_lstm_layers: {type: int, low: 1, high: 3}
      hidden_dim: {type: categorical, choices: [32, 64, 128]}
      learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      batch_size: 256          # a constant
    weights:                   # w0..w8 of the target score T
      w0: {type: float, low: 0.0, high: 1.0}
      ...                      # or one spec for all nine: weights: {type: float, low: 0, high: 1}
    target:
      label_horizon: 0         # y_t = T_{t+h}; 0 reproduces the seed
    signal:                    # strategy.signals.SignalParams
      mode: quantile
      entry: {type: float, low: 0.6, high: 0.98}
      exit_gap: {type: float, low: 0.0, high: 0.5}
      direction: both          # long | short | both (short and both: futures only)
    features:                  # FreqAI's data pipeline (strategy.pipeline.DataPipeline)
      DI_threshold: {type: categorical, choices: [0, 0.5, 1.0]}     # 0 = off
      weight_factor: {type: float, low: 0.0, high: 1.0}
      noise_standard_deviation: 0.1
      include_corr_pairlist: {type: categorical, choices: [[], [BTC/USDT]]}
    backtest:                  # the run config's backtest keys a trial may set (futures only)
      leverage: {type: categorical, choices: [1, 2, 3]}

A ``features`` key overrides the run config's key of the same name for the trial; keys the space
does not set keep the run config's value (``buffer_train_data_candles`` is run-config only: it
shapes the folds). A choice of ``include_corr_pairlist`` is a list of pairs (Optuna stores it as
the comma-separated string, ``""`` for none). Likewise a ``backtest`` key (``leverage``, rounded to
:data:`~strategy.freqtrade.rules.LEVERAGE_DECIMALS` decimals as the exported strategy loads it)
overrides the run config's ``backtest.leverage``; :meth:`TrialParams.settings` gives a trial's
backtest settings (``can_short`` when its direction shorts).

:func:`load_space` validates the file (unknown sections or keys, bad distribution specs, values the
typed parameters reject) and names the file, the key and the value in its errors. Each searched key
becomes an ``optuna.distributions`` distribution, which checks its own bounds (low <= high, low > 0
for a log scale, step > 0 and not with a log scale). :meth:`SearchSpace.sample` is the one function
that turns an Optuna trial into :class:`TrialParams`, the type the trainer, the backtester and the
export all take.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from base.checks import WrongTypeError, check_int, check_number, fail, located
from base.errors import ConfigError, InputError
from base.yamlfile import read_yaml
from lstm.params import LSTMParams
from optimize.backtest.settings import BacktestSettings
from strategy.freqtrade.rules import (
    LEVERAGE_DECIMALS,
    THRESHOLD_DECIMALS,
    WEIGHT_DECIMALS,
    round_param,
)
from strategy.pipeline import SEARCHABLE_KEYS, DataPipeline, pair_list
from strategy.signals import SignalParams
from strategy.target import N_WEIGHTS, WEIGHT_NAMES

SECTIONS = ("lstm", "weights", "target", "signal", "features", "backtest")
LSTM_KEYS = tuple(f.name for f in dataclasses.fields(LSTMParams))
TARGET_KEYS = ("label_horizon",)
SIGNAL_KEYS = ("mode", "entry", "exit_gap", "direction")
FEATURE_KEYS = SEARCHABLE_KEYS
BACKTEST_KEYS = ("leverage",)
"""The run config's ``backtest`` keys a search space may set per trial."""
CORR_KEY = ("features", "include_corr_pairlist")
# Optuna parameter names: LSTM fields and w0..w8 keep their names; the others are prefixed.
_OPTUNA_NAME = {
    ("target", "label_horizon"): "label_horizon",
    ("signal", "mode"): "threshold_mode",
    ("signal", "entry"): "entry_threshold",
    ("signal", "exit_gap"): "exit_gap",
    ("signal", "direction"): "trade_direction",
    ("backtest", "leverage"): "leverage",
}
DIST_KEYS = {"type", "low", "high", "step", "log", "choices"}

Key = tuple[str, str]


class SearchSpaceError(ConfigError):
    """A malformed search space; the message names file, key and value."""


def optuna_name(key: Key) -> str:
    """The Optuna parameter name of a ``(section, key)``."""
    return _OPTUNA_NAME.get(key, key[1])


@dataclass(frozen=True)
class TrialParams:
    """Everything one trial decides: the LSTM, the target weights, the label, the thresholds and
    direction, the FreqAI pipeline keys and the backtest keys the space sets.

    Attributes:
        features: the space's ``features`` keys for this trial (``key -> value``, validated by
            :class:`strategy.pipeline.DataPipeline`; ``include_corr_pairlist`` as a tuple); empty
            when the space has no ``features`` section. :meth:`pipeline` merges them into the run
            config's.
        backtest: the space's ``backtest`` keys for this trial (:data:`BACKTEST_KEYS`: the
            leverage, a number >= 1); empty when the space has no ``backtest`` section.
            :meth:`settings` merges them into the run config's.
    """

    lstm: LSTMParams
    weights: tuple[float, ...]
    signal: SignalParams
    label_horizon: int = 0
    features: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    backtest: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if len(self.weights) != N_WEIGHTS:
            fail("weights", self.weights, f"{N_WEIGHTS} finite numbers w0..w8")
        weights = zip(WEIGHT_NAMES, self.weights, strict=True)
        object.__setattr__(self, "weights", tuple(check_number(n, w) for n, w in weights))
        check_int("label_horizon", self.label_horizon, 0)
        unknown = sorted(set(self.features) - set(FEATURE_KEYS))
        if unknown:
            fail("features", dict(self.features), f"keys among {list(FEATURE_KEYS)}")
        checked = DataPipeline(**self.features)
        object.__setattr__(self, "features", {k: getattr(checked, k) for k in self.features})
        unknown = sorted(set(self.backtest) - set(BACKTEST_KEYS))
        if unknown:
            fail("backtest", dict(self.backtest), f"keys among {list(BACKTEST_KEYS)}")
        backtest = dict(self.backtest)
        if "leverage" in backtest:
            backtest["leverage"] = check_number("leverage", backtest["leverage"], 1.0)
        object.__setattr__(self, "backtest", backtest)

    def pipeline(self, base: DataPipeline) -> DataPipeline:
        """The trial's FreqAI pipeline: ``base`` (the run config's) with this trial's keys."""
        return base.replace(**self.features)

    def settings(self, base: BacktestSettings) -> BacktestSettings:
        """The trial's backtest settings: ``base`` (the run config's) with this trial's
        ``backtest`` keys, and ``can_short`` exactly when its direction shorts.

        Raises:
            ValueError: a direction with shorts or a leverage other than 1 in spot mode (the
                message names the key and says that it needs ``trading_mode: futures``).
        """
        if self.signal.shorts and not base.futures:
            raise InputError(
                f"signal.direction={self.signal.direction!r} shorts, which needs "
                "backtest.trading_mode='futures' (freqtrade shorts only futures), but the run "
                f"config trades {base.trading_mode!r}."
            )
        return dataclasses.replace(base, **self.backtest, can_short=self.signal.shorts)

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (JSON-able): ``{"lstm": {...}, "weights": {...}, ...}``
        (``"features"`` only when the trial sets pipeline keys)."""
        out = {
            "lstm": self.lstm.to_dict(),
            "weights": dict(zip(WEIGHT_NAMES, self.weights, strict=True)),
            "target": {"label_horizon": self.label_horizon},
            "signal": self.signal.to_dict(),
        }
        if self.features:
            out["features"] = {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.features.items()
            }
        if self.backtest:
            out["backtest"] = dict(self.backtest)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialParams:
        """Inverse of :meth:`to_dict`."""
        weights = data["weights"]
        return cls(
            lstm=LSTMParams.from_dict(data["lstm"]),
            weights=tuple(weights[name] for name in WEIGHT_NAMES),
            signal=SignalParams(**data["signal"]),
            label_horizon=int(data.get("target", {}).get("label_horizon", 0)),
            features=dict(data.get("features") or {}),
            backtest=dict(data.get("backtest") or {}),
        )


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space.

    Attributes:
        source: the file it came from.
        distributions: the searched keys, ``(section, key) -> optuna distribution``, in file order
            (the order :meth:`sample` asks the trial in).
        constants: the keys held fixed, ``(section, key) -> value``.
        entries: every key as the file states it (``"section.key" -> {type, low, high, log, step,
            choices, value}``), in file order: what a study stores to check a resume against.
    """

    source: str
    distributions: dict[Key, BaseDistribution]
    constants: dict[Key, Any]
    entries: dict[str, dict[str, Any]]

    def sample(self, trial: optuna.Trial) -> TrialParams:
        """Ask ``trial`` for every distribution and return the typed parameters."""
        values = {
            key: _suggest(trial, optuna_name(key), d) for key, d in self.distributions.items()
        }
        return self.build({**self.constants, **values})

    def build(self, values: Mapping[Key, Any]) -> TrialParams:
        """The typed parameters of ``values``.

        Weights and threshold parameters are rounded as freqtrade's ``DecimalParameter`` loads
        them from the exported parameter file (:func:`strategy.freqtrade.rules.round_param`), so
        the study scores exactly the values freqtrade will run.
        """
        lstm = {k: v for (s, k), v in values.items() if s == "lstm"}
        signal = {k: v for (s, k), v in values.items() if s == "signal"}
        for key in ("entry", "exit_gap"):
            if isinstance(signal.get(key), int | float) and not isinstance(signal[key], bool):
                signal[key] = round_param(signal[key], THRESHOLD_DECIMALS)
        weights = tuple(round_param(values[("weights", w)], WEIGHT_DECIMALS) for w in WEIGHT_NAMES)
        features = {k: v for (s, k), v in values.items() if s == "features"}
        if CORR_KEY[1] in features:
            features[CORR_KEY[1]] = pair_list(features[CORR_KEY[1]])
        backtest = {k: v for (s, k), v in values.items() if s == "backtest"}
        leverage = backtest.get("leverage")
        if isinstance(leverage, int | float) and not isinstance(leverage, bool):
            backtest["leverage"] = round_param(leverage, LEVERAGE_DECIMALS)
        return TrialParams(
            lstm=LSTMParams.from_dict(lstm),
            weights=weights,
            signal=SignalParams(**signal),
            label_horizon=int(values.get(("target", "label_horizon"), 0)),
            features=features,
            backtest=backtest,
        )

    def from_optuna_params(self, params: Mapping[str, Any]) -> TrialParams:
        """Rebuild a trial's :class:`TrialParams` from its Optuna params plus this space's
        constants."""
        values = {key: params[optuna_name(key)] for key in self.distributions}
        return self.build({**self.constants, **values})

    def corners(self, key: Key) -> list[Any]:
        """Extreme values of ``key``: its constant, its choices or its bounds (``[]``: not in the
        space)."""
        if key in self.constants:
            return [self.constants[key]]
        dist = self.distributions.get(key)
        if dist is None:
            return []
        if isinstance(dist, CategoricalDistribution):
            return list(dist.choices)
        return [dist.low, dist.high]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain, JSON-able description of every key (see :attr:`entries`)."""
        return {key: dict(entry) for key, entry in self.entries.items()}

    def corr_pairs(self) -> tuple[str, ...]:
        """Every correlated pair a trial of this space can choose (``features.
        include_corr_pairlist``), in first-mention order."""
        found = (p for choice in self.corners(CORR_KEY) for p in pair_list(choice))
        return tuple(dict.fromkeys(found))


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """``dist`` drawn through the trial's public ``suggest_*`` API."""
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_categorical(name, dist.choices)


def _corr_spec(spec: Any) -> Any:
    """``features.include_corr_pairlist`` as the generic parser takes it: a list of pairs becomes
    its comma-separated string (a constant, or each choice of a categorical)."""
    if isinstance(spec, Mapping):
        choices = spec.get("choices")
        if spec.get("type") != "categorical" or not isinstance(choices, list):
            fail("include_corr_pairlist", dict(spec), "a list of pairs or a categorical of lists")
        return {**spec, "choices": [",".join(pair_list(c)) for c in choices]}
    return ",".join(pair_list(spec))


def _entry(kind: str, **given: Any) -> dict[str, Any]:
    entry = {"type": kind, "low": None, "high": None, "log": False, "step": None, "choices": []}
    return {**entry, "value": None, **given}


def _parse_entry(spec: Any) -> tuple[BaseDistribution | None, dict[str, Any]]:
    """One key of a space file: ``(distribution, entry)``; the distribution is None for a
    constant."""
    if not isinstance(spec, Mapping):
        if isinstance(spec, list | tuple | set):
            raise WrongTypeError(f"expected a constant or a mapping with 'type', but got {spec!r}.")
        return None, _entry("constant", value=spec)
    unknown = sorted(set(spec) - DIST_KEYS)
    if unknown:
        raise InputError(f"unknown keys {unknown}; a distribution takes {sorted(DIST_KEYS)}.")
    kind = spec.get("type")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            fail("choices", choices, "a non-empty list")
        return CategoricalDistribution(choices), _entry(kind, choices=list(choices))
    if kind not in ("int", "float"):
        fail("type", kind, "'int', 'float' or 'categorical'")
    for name in ("low", "high"):
        if name not in spec:
            raise InputError(f"{kind} distribution needs '{name}'.")
    number = check_int if kind == "int" else check_number
    low, high = number("low", spec["low"]), number("high", spec["high"])
    step = None if spec.get("step") is None else number("step", spec["step"])
    log = spec.get("log", False)
    if not isinstance(log, bool):
        fail("log", log, "true or false", WrongTypeError)
    if kind == "int":
        dist = IntDistribution(low, high, log=log, step=1 if step is None else step)
    else:
        dist = FloatDistribution(low, high, log=log, step=step)
    return dist, _entry(kind, low=low, high=high, log=log, step=step)


def parse_space(raw: Any, source: str = "<space>") -> SearchSpace:
    """Validate a parsed YAML mapping and build the :class:`SearchSpace`."""
    if not isinstance(raw, Mapping):
        raise SearchSpaceError(
            located(
                source,
                "<top level>",
                f"expected a mapping of sections {list(SECTIONS)}, but got {raw!r}.",
            )
        )
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise SearchSpaceError(
            located(source, str(unknown[0]), f"unknown section; expected one of {list(SECTIONS)}.")
        )
    distributions: dict[Key, BaseDistribution] = {}
    constants: dict[Key, Any] = {}
    entries: dict[str, dict[str, Any]] = {}
    allowed = {
        "lstm": LSTM_KEYS,
        "weights": WEIGHT_NAMES,
        "target": TARGET_KEYS,
        "signal": SIGNAL_KEYS,
        "features": FEATURE_KEYS,
        "backtest": BACKTEST_KEYS,
    }
    for section in SECTIONS:
        body = raw.get(section) or {}
        if section == "weights" and isinstance(body, Mapping) and "type" in body:
            body = {w: dict(body) for w in WEIGHT_NAMES}  # one spec for all nine weights
        if not isinstance(body, Mapping):
            raise SearchSpaceError(
                located(source, section, f"expected a mapping, but got {body!r}.")
            )
        for key, spec in body.items():
            where = f"{section}.{key}"
            if key not in allowed[section]:
                raise SearchSpaceError(
                    located(
                        source, where, f"unknown key; expected one of {list(allowed[section])}."
                    )
                )
            try:
                if (section, key) == CORR_KEY:
                    spec = _corr_spec(spec)
                dist, entries[where] = _parse_entry(spec)
            except (TypeError, ValueError) as exc:
                raise SearchSpaceError(located(source, where, exc)) from exc
            if dist is None:
                constants[(section, key)] = spec
            else:
                distributions[(section, key)] = dist
    missing = [w for w in WEIGHT_NAMES if f"weights.{w}" not in entries]
    if missing:
        raise SearchSpaceError(
            located(
                source,
                "weights",
                f"every weight w0..w8 needs a value or distribution; missing {missing}.",
            )
        )
    space = SearchSpace(source, distributions, constants, entries)
    _check_against_types(space)
    return space


def _defaults() -> dict[tuple[str, str], Any]:
    values: dict[tuple[str, str], Any] = {("lstm", k): v for k, v in LSTMParams().to_dict().items()}
    values.update({("weights", w): 0.0 for w in WEIGHT_NAMES})
    values.update({("signal", k): v for k, v in SignalParams().to_dict().items()})
    values[("target", "label_horizon")] = 0
    return values


def _check_against_types(space: SearchSpace) -> None:
    """Build TrialParams at every corner of every distribution, one key at a time (the others at
    their defaults, for every threshold mode the space allows), so a bad bound fails at load time
    and the error names the key that holds it."""
    mode_key = ("signal", "mode")
    modes = space.corners(mode_key) or ["quantile"]
    for mode in modes:
        try:
            SignalParams(mode=mode, entry=0.5, direction="long")
        except (TypeError, ValueError) as exc:
            raise SearchSpaceError(
                located(space.source, "signal.mode", f"value {mode!r} is not accepted: {exc}")
            ) from exc
    defaults = _defaults()
    for where in space.entries:
        section, name = where.split(".")
        key = (section, name)
        for value in space.corners(key):
            for mode in modes if key != mode_key else [None]:
                values = dict(defaults)
                if mode is not None:
                    values[mode_key] = mode
                    if mode != "quantile":
                        values[("signal", "entry")] = 1.0
                values[key] = value
                try:
                    space.build(values)
                except (TypeError, ValueError) as exc:
                    raise SearchSpaceError(
                        located(space.source, where, f"value {value!r} is not accepted: {exc}")
                    ) from exc


def load_space(path: Path | str) -> SearchSpace:
    """Read and validate a search-space YAML file."""
    raw, path = read_yaml(path, what="search space", error=SearchSpaceError)
    return parse_space(raw, str(path))
