"""Declarative search spaces (YAML) and the typed parameters of one trial.

A space file has up to four sections; each key is either a constant or a distribution::

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

:func:`load_space` validates the file (unknown sections or keys, bad distribution specs, low > high,
values the typed parameters reject) and names the file, the key and the value in its errors.
:meth:`SearchSpace.sample` is the one function that turns an Optuna trial into :class:`TrialParams`,
the type the trainer, the backtester and the export all take.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from lstm.params import LSTMParams
from strategy.freqtrade.rules import THRESHOLD_DECIMALS, WEIGHT_DECIMALS, round_param
from strategy.signals import SignalParams
from strategy.target import N_WEIGHTS, WEIGHT_NAMES

SECTIONS = ("lstm", "weights", "target", "signal")
LSTM_KEYS = tuple(f.name for f in dataclasses.fields(LSTMParams))
TARGET_KEYS = ("label_horizon",)
SIGNAL_KEYS = ("mode", "entry", "exit_gap")
# Optuna parameter names: LSTM fields and w0..w8 keep their names; the others are prefixed.
_OPTUNA_NAME = {
    ("target", "label_horizon"): "label_horizon",
    ("signal", "mode"): "threshold_mode",
    ("signal", "entry"): "entry_threshold",
    ("signal", "exit_gap"): "exit_gap",
}
DIST_KEYS = {"type", "low", "high", "step", "log", "choices"}


class SearchSpaceError(ValueError):
    """A malformed search space; the message names file, key and value."""


@dataclass(frozen=True)
class TrialParams:
    """Everything one trial decides: the LSTM, the target weights, the label, the thresholds."""

    lstm: LSTMParams
    weights: tuple[float, ...]
    signal: SignalParams
    label_horizon: int = 0

    def __post_init__(self) -> None:
        w = tuple(float(x) for x in self.weights)
        if len(w) != N_WEIGHTS or not all(math.isfinite(x) for x in w):
            raise ValueError(
                f"weights must be 9 finite numbers w0..w8, but got weights={self.weights}."
            )
        object.__setattr__(self, "weights", w)
        if (
            isinstance(self.label_horizon, bool)
            or not isinstance(self.label_horizon, int)
            or self.label_horizon < 0
        ):
            raise ValueError(
                "label_horizon must be an integer >= 0, but got "
                f"label_horizon={self.label_horizon!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (JSON-able): ``{"lstm": {...}, "weights": {...}, ...}``."""
        return {
            "lstm": self.lstm.to_dict(),
            "weights": dict(zip(WEIGHT_NAMES, self.weights, strict=True)),
            "target": {"label_horizon": self.label_horizon},
            "signal": self.signal.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialParams:
        """Inverse of :meth:`to_dict`."""
        weights = data["weights"]
        return cls(
            lstm=LSTMParams.from_dict(data["lstm"]),
            weights=tuple(weights[name] for name in WEIGHT_NAMES),
            signal=SignalParams(**data["signal"]),
            label_horizon=int(data.get("target", {}).get("label_horizon", 0)),
        )


@dataclass(frozen=True)
class Dist:
    """One distribution of a search space (or a constant when ``type == 'constant'``)."""

    name: str
    type: str
    low: Any = None
    high: Any = None
    step: Any = None
    log: bool = False
    choices: tuple = ()
    value: Any = None

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "constant":
            return self.value
        if self.type == "int":
            return trial.suggest_int(
                self.name, self.low, self.high, step=self.step or 1, log=self.log
            )
        if self.type == "float":
            return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def corners(self) -> list[Any]:
        """Extreme values, used to validate a space against the typed parameters."""
        if self.type == "constant":
            return [self.value]
        if self.type == "categorical":
            return list(self.choices)
        return [self.low, self.high]


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space: ``(section, key) -> Dist``."""

    source: str
    dists: dict[tuple[str, str], Dist]

    def sample(self, trial: optuna.Trial) -> TrialParams:
        """Ask ``trial`` for every distribution and return the typed parameters."""
        values = {key: dist.suggest(trial) for key, dist in self.dists.items()}
        return self.build(values)

    def build(self, values: Mapping[tuple[str, str], Any]) -> TrialParams:
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
        return TrialParams(
            lstm=LSTMParams.from_dict(lstm),
            weights=weights,
            signal=SignalParams(**signal),
            label_horizon=int(values.get(("target", "label_horizon"), 0)),
        )

    def from_optuna_params(self, params: Mapping[str, Any]) -> TrialParams:
        """Rebuild a trial's :class:`TrialParams` from its Optuna params plus this space's
        constants."""
        values = {}
        for key, dist in self.dists.items():
            values[key] = dist.value if dist.type == "constant" else params[dist.name]
        return self.build(values)


def _err(source: str, key: str, msg: str) -> SearchSpaceError:
    return SearchSpaceError(f"{source}: {key}: {msg}")


def _number(source: str, key: str, field: str, value: Any, integer: bool) -> float | int:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        kind = "an integer" if integer else "a number"
        raise _err(source, key, f"'{field}' must be {kind}, but got {field}={value!r}.")
    return value if integer else float(value)


def _parse_dist(source: str, section: str, key: str, spec: Any) -> Dist:
    where = f"{section}.{key}"
    name = _OPTUNA_NAME.get((section, key), key)
    if not isinstance(spec, Mapping):
        if isinstance(spec, list | tuple | set):
            raise _err(
                source, where, f"expected a constant or a mapping with 'type', but got {spec!r}."
            )
        return Dist(name, "constant", value=spec)
    unknown = sorted(set(spec) - DIST_KEYS)
    if unknown:
        raise _err(
            source, where, f"unknown keys {unknown}; a distribution takes {sorted(DIST_KEYS)}."
        )
    kind = spec.get("type")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _err(
                source,
                where,
                f"categorical needs a non-empty list 'choices', but got choices={choices!r}.",
            )
        return Dist(name, "categorical", choices=tuple(choices))
    if kind not in ("int", "float"):
        raise _err(
            source, where, f"type must be 'int', 'float' or 'categorical', but got type={kind!r}."
        )
    return _parse_range(source, where, name, kind, spec)


def _parse_range(source: str, where: str, name: str, kind: str, spec: Mapping) -> Dist:
    """An 'int' or 'float' distribution: ``low``/``high``, optional ``log`` and ``step``."""
    integer = kind == "int"
    for field in ("low", "high"):
        if field not in spec:
            raise _err(source, where, f"{kind} distribution needs '{field}'.")
    low = _number(source, where, "low", spec["low"], integer)
    high = _number(source, where, "high", spec["high"], integer)
    if low > high:
        raise _err(source, where, f"low must be <= high, but got low={low!r} > high={high!r}.")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise _err(source, where, f"'log' must be true or false, but got log={log!r}.")
    if log and low <= 0:
        raise _err(source, where, f"a log distribution needs low > 0, but got low={low!r}.")
    step = spec.get("step")
    if step is not None:
        step = _number(source, where, "step", step, integer)
        if step <= 0 or (log and step not in (None, 1)):
            raise _err(
                source,
                where,
                f"'step' must be > 0 and not combined with log, but got step={step!r}.",
            )
    return Dist(name, kind, low=low, high=high, step=step, log=log)


def parse_space(raw: Any, source: str = "<space>") -> SearchSpace:
    """Validate a parsed YAML mapping and build the :class:`SearchSpace`."""
    if not isinstance(raw, Mapping):
        raise _err(
            source,
            "<top level>",
            f"expected a mapping of sections {list(SECTIONS)}, but got {raw!r}.",
        )
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise _err(source, str(unknown[0]), f"unknown section; expected one of {list(SECTIONS)}.")
    dists: dict[tuple[str, str], Dist] = {}
    allowed = {
        "lstm": LSTM_KEYS,
        "weights": WEIGHT_NAMES,
        "target": TARGET_KEYS,
        "signal": SIGNAL_KEYS,
    }
    for section in SECTIONS:
        body = raw.get(section) or {}
        if section == "weights" and isinstance(body, Mapping) and "type" in body:
            body = {w: dict(body) for w in WEIGHT_NAMES}  # one spec for all nine weights
        if not isinstance(body, Mapping):
            raise _err(source, section, f"expected a mapping, but got {body!r}.")
        for key, spec in body.items():
            if key not in allowed[section]:
                raise _err(
                    source,
                    f"{section}.{key}",
                    f"unknown key; expected one of {list(allowed[section])}.",
                )
            dists[(section, key)] = _parse_dist(source, section, key, spec)
    missing = [w for w in WEIGHT_NAMES if ("weights", w) not in dists]
    if missing:
        raise _err(
            source,
            "weights",
            f"every weight w0..w8 needs a value or distribution; missing {missing}.",
        )
    space = SearchSpace(source=source, dists=dists)
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
    modes = space.dists[mode_key].corners() if mode_key in space.dists else ["quantile"]
    for mode in modes:
        try:
            SignalParams(mode=mode, entry=0.5)
        except (TypeError, ValueError) as exc:
            raise _err(
                space.source, "signal.mode", f"value {mode!r} is not accepted: {exc}"
            ) from exc
    for key, dist in space.dists.items():
        for value in dist.corners():
            for mode in modes if key != mode_key else [None]:
                values = _defaults()
                if mode is not None:
                    values[mode_key] = mode
                    if mode != "quantile":
                        values[("signal", "entry")] = 1.0
                values[key] = value
                try:
                    space.build(values)
                except (TypeError, ValueError) as exc:
                    raise _err(
                        space.source, ".".join(key), f"value {value!r} is not accepted: {exc}"
                    ) from exc


def load_space(path: Path | str) -> SearchSpace:
    """Read and validate a search-space YAML file."""
    from optimize.config import read_yaml

    raw, path = read_yaml(path, what="search space", error=SearchSpaceError)
    return parse_space(raw, str(path))
