"""The run config (``configs/*.yaml``): data, features, folds, backtest, objective, study, training.

Every section maps to a frozen dataclass validated on load; an unknown key or a bad value raises
:class:`ConfigError` naming the file, the key and the value. Relative paths (the file itself, and
the folders and files it names) are resolved by :func:`base.paths.resolve_path`: the current
directory first, then the shipped copies (so the configs of ``configs/`` work from anywhere), then
a source checkout.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from base.checks import WrongTypeError, check_choice, check_int, check_number, fail, located
from base.errors import ConfigError, InputError
from base.paths import resolve_path
from base.yamlfile import read_yaml
from optimize.backtest.settings import BacktestSettings
from optimize.data import DEFAULT_DATADIR, DEFAULT_MAX_GAP_CANDLES, to_utc
from optimize.search.objectives import Objective, get_objective
from optimize.walkforward import WalkForwardSettings
from strategy.features import FeatureConfig
from strategy.timeframes import timeframe_to_seconds

SAMPLERS = ("tpe", "random", "nsga2", "cmaes")
PRUNERS = ("median", "wilcoxon", "percentile", "none")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


@dataclass(frozen=True)
class DataConfig:
    """Which candles a study uses.

    Attributes:
        datadir: folder with ``<exchange>/<PAIR>-<tf>.feather`` (default: the embedded data).
        exchange: exchange sub-folder.
        pairs: pairs to trade; one model per pair per fold.
        timeframe: the strategy's (base) timeframe.
        start, end: the span used (end exclusive; ISO dates, UTC); None = all data.
        max_gap_candles: larger gaps are an error (see :func:`optimize.data.load_candles`).
        markets: the exchange's markets of the pairs, a ccxt-format JSON file
            (``{"markets": {pair: market}}``, as ``python -m optimize markets`` writes it); None:
            the embedded Binance file of the trading mode (``configs/markets/binance_spot.json``
            or ``binance_futures.json``). The study rounds order amounts (and in futures mode
            takes stake limits) from it, and ``verify`` serves it to freqtrade.
    """

    datadir: str = str(DEFAULT_DATADIR)
    exchange: str = "binance"
    pairs: tuple[str, ...] = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    timeframe: str = "1h"
    start: str | None = None
    end: str | None = None
    max_gap_candles: int = DEFAULT_MAX_GAP_CANDLES
    markets: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.pairs, str):
            fail("pairs", self.pairs, "a list like ['BTC/USDT']", WrongTypeError)
        object.__setattr__(self, "pairs", tuple(self.pairs))
        if not self.pairs or any(not isinstance(p, str) or "/" not in p for p in self.pairs):
            fail("pairs", list(self.pairs), "a non-empty list like ['BTC/USDT']")
        if len(set(self.pairs)) != len(self.pairs):
            raise InputError(f"pairs has duplicates: {list(self.pairs)}.")
        if self.markets is not None and (not isinstance(self.markets, str) or not self.markets):
            fail("markets", self.markets, "the path of a markets JSON file, or null")
        timeframe_to_seconds(self.timeframe)
        stamps = {}
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, str(value))
                stamps[name] = to_utc(str(value), name)  # an error names the key and the value
        if len(stamps) == 2 and stamps["start"] >= stamps["end"]:
            raise InputError(
                f"start must be before end, but got start={self.start!r} and end={self.end!r}."
            )

    @property
    def path(self) -> Path:
        return resolve_path(self.datadir)

    @property
    def markets_path(self) -> Path | None:
        """The named markets file, resolved (None: the embedded file of the trading mode)."""
        return None if self.markets is None else resolve_path(self.markets)


@dataclass(frozen=True)
class StudyConfig:
    """Optuna settings.

    The objective is resolved once, when the config is made (:attr:`resolved_objective`): there
    is no registry of objectives to fill first, and a copy of the config in another process
    (pickled to a cluster, parsed from a study's stored config) resolves it again from the same
    name and folder.

    Attributes:
        objective: name of an objective: a built-in of :mod:`optimize.search.objectives` or a file
            ``<objectives_path>/<objective>.py``.
        objectives_path: folder of user objective files (see :mod:`optimize.search.objectives`);
            None: built-ins only.
        sampler: one of :data:`SAMPLERS`.
        pruner: one of :data:`PRUNERS` (multi-objective studies cannot prune: use ``none``).
        n_trials: trials the study should reach in total (all workers together).
        timeout: seconds per worker, None = no limit.
        seed: the study's seed: every model's training seed is derived from it
            (:func:`lstm.seeds.model_seed`); worker samplers are seeded from it too.
        n_startup_trials: trials before the pruner and TPE start to act.
        pruner_warmup_folds: folds a trial always completes before it may be pruned (single-fold
            scores are noisy; 0 allows pruning right after the first fold).
        heartbeat_interval: seconds between worker heartbeats (dead workers are detected).
        grace_period: seconds without heartbeat after which a trial is failed and retried.
        max_retry: retries of a trial whose worker died.
        robustness_top: after the trials, the best this many complete trials by recorded value
            race on fresh seed sets (:mod:`optimize.study.racing`; 0 turns the step off).
        robustness_budget: the most evaluations (trial x fresh seed set, each a full walk-forward
            evaluation) the race may use; >= ``robustness_top`` when the step is on (one round).
        robustness_seed_sets: the most fresh seed sets (rounds) any candidate gets in the race
            (>= 1 when the step is on).
    """

    objective: str = "sharpe"
    objectives_path: str | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    n_trials: int = 20
    timeout: float | None = None
    seed: int = 42
    n_startup_trials: int = 5
    pruner_warmup_folds: int = 2
    heartbeat_interval: int = 10
    grace_period: int = 30
    max_retry: int = 2
    robustness_top: int = 6
    robustness_budget: int = 30
    robustness_seed_sets: int = 10

    def __post_init__(self) -> None:
        folder = None
        if self.objectives_path is not None:
            folder = resolve_path(str(self.objectives_path))
            if not folder.is_dir():
                raise InputError(
                    "objectives_path must be a folder of objective files, but got "
                    f"objectives_path={self.objectives_path!r} (no folder {folder})."
                )
        objective = get_objective(self.objective, folder)
        object.__setattr__(self, "_objective", objective)
        check_choice("sampler", self.sampler, SAMPLERS)
        check_choice("pruner", self.pruner, PRUNERS)
        for name in (
            "n_trials",
            "seed",
            "n_startup_trials",
            "pruner_warmup_folds",
            "heartbeat_interval",
            "grace_period",
            "max_retry",
            "robustness_top",
            "robustness_budget",
            "robustness_seed_sets",
        ):
            check_int(name, getattr(self, name), 0)
        if self.heartbeat_interval < 1 or self.grace_period <= self.heartbeat_interval:
            raise InputError(
                "need heartbeat_interval >= 1 and grace_period > heartbeat_interval, but got "
                f"heartbeat_interval={self.heartbeat_interval}, grace_period={self.grace_period}."
            )
        if self.robustness_top > 0 and self.robustness_seed_sets < 1:
            raise InputError(
                "robustness_seed_sets must be >= 1 when robustness_top > 0, but got "
                f"robustness_seed_sets={self.robustness_seed_sets!r}."
            )
        if self.robustness_top > 0 and self.robustness_budget < self.robustness_top:
            raise InputError(
                "robustness_budget must be >= robustness_top (a round evaluates every candidate "
                f"once), but got robustness_budget={self.robustness_budget!r} and "
                f"robustness_top={self.robustness_top!r}."
            )
        if self.timeout is not None:
            check_number("timeout", self.timeout, 0.0, low_open=True)
        if objective.n_objectives > 1 and self.pruner != "none":
            raise InputError(
                f"multi-objective objective {self.objective!r} cannot prune; set pruner: none "
                f"(got pruner={self.pruner!r})."
            )

    @property
    def resolved_objective(self) -> Objective:
        """The objective :attr:`objective` names, resolved when the config was made."""
        return self._objective  # type: ignore[attr-defined]

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its fields: the copy resolves its objective again (a user objective's module
        exists only in the process that loaded its file)."""
        return type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self))


@dataclass(frozen=True)
class TrainingConfig:
    """Where and how models train.

    Attributes:
        accelerator: ``auto`` (cuda, mps or cpu), ``cpu``, ``gpu``/``cuda``, ``mps``.
        threads_per_worker: torch intra-op threads per worker process (None: cores / workers).
        cache_dir: on-disk feature cache shared by workers (None disables it).
        min_train_samples: a pair/fold with fewer usable training rows is skipped (scored flat).
        ensemble_size: models per pair and fold (K); the prediction is their mean and each member
            has its own seed (:func:`lstm.seeds.model_seed`).
    """

    accelerator: str = "auto"
    threads_per_worker: int | None = None
    cache_dir: str | None = ".cache/features"
    min_train_samples: int = 200
    ensemble_size: int = 1

    def __post_init__(self) -> None:
        check_choice("accelerator", self.accelerator, ACCELERATORS)
        check_int("ensemble_size", self.ensemble_size, 1)
        if self.threads_per_worker is not None:
            check_int("threads_per_worker", self.threads_per_worker, 1)


@dataclass(frozen=True)
class RunConfig:
    """A whole run config. ``source`` is the file it came from."""

    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    walkforward: WalkForwardSettings = field(
        default_factory=lambda: WalkForwardSettings(
            train_days=120, test_days=30, purge_candles=48, holdout_days=60
        )
    )
    backtest: BacktestSettings = field(default_factory=BacktestSettings)
    study: StudyConfig = field(default_factory=StudyConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    source: str = "<defaults>"

    @property
    def candle_type(self) -> str:
        """freqtrade's candle type of the traded (and correlated) pairs: ``"futures"`` in futures
        mode (``<datadir>/<exchange>/futures/<PAIR>-<tf>-futures.feather``), else ``"spot"``."""
        return "futures" if self.backtest.futures else "spot"

    def with_datadir(self, datadir: str | Path) -> RunConfig:
        """This config reading its candles from ``datadir`` (``data.datadir``, checked again)."""
        try:
            data = dataclasses.replace(self.data, datadir=str(datadir))
        except (TypeError, ValueError) as exc:
            raise ConfigError(located(self.source, "data", exc)) from exc
        return dataclasses.replace(self, data=data)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able dict of every section (stored in the study's user attrs)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            value = getattr(self, f.name)
            out[f.name] = (
                _plain(dataclasses.asdict(value)) if dataclasses.is_dataclass(value) else value
            )
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


SECTIONS = {
    "data": DataConfig,
    "features": FeatureConfig,
    "walkforward": WalkForwardSettings,
    "backtest": BacktestSettings,
    "study": StudyConfig,
    "training": TrainingConfig,
}


def _section(source: str, name: str, cls: type, body: Any) -> Any:
    if not isinstance(body, Mapping):
        raise ConfigError(located(source, name, f"expected a mapping, but got {body!r}."))
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(body) - names)
    if unknown:
        raise ConfigError(
            located(
                source, f"{name}.{unknown[0]}", f"unknown key; expected one of {sorted(names)}."
            )
        )
    required = sorted(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.init
    )
    missing = [k for k in required if k not in body]
    if missing:
        raise ConfigError(
            located(
                source, name, f"missing required key(s) {missing}; the section needs {required}."
            )
        )
    values = {
        k: tuple(v) if isinstance(v, list) and k != "minimal_roi" else v for k, v in body.items()
    }
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(located(source, name, exc)) from exc


def parse_config(raw: Any, source: str = "<config>") -> RunConfig:
    """Validate a parsed YAML mapping into a :class:`RunConfig`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{source}: expected a mapping of sections {sorted(SECTIONS)}, but got {raw!r}."
        )
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            located(source, unknown[0], f"unknown section; expected one of {sorted(SECTIONS)}.")
        )
    defaults = RunConfig()
    sections = {  # an absent or empty section means its defaults
        name: _section(source, name, cls, raw[name])
        if raw.get(name) is not None
        else getattr(defaults, name)
        for name, cls in SECTIONS.items()
    }
    config = RunConfig(**sections, source=source)
    if config.features.base_timeframe != config.data.timeframe:
        raise ConfigError(
            located(
                source,
                "features.include_timeframes",
                f"must start with data.timeframe {config.data.timeframe!r}, but got "
                f"include_timeframes={list(config.features.include_timeframes)}.",
            )
        )
    _check_pair_kind(source, config)
    if config.backtest.timeframe != config.data.timeframe:
        config = dataclasses.replace(
            config, backtest=dataclasses.replace(config.backtest, timeframe=config.data.timeframe)
        )
    return config


def _check_pair_kind(source: str, config: RunConfig) -> None:
    """Pairs written as the trading mode's markets name them: ``BASE/QUOTE`` in spot mode,
    ``BASE/QUOTE:SETTLE`` (a perpetual, e.g. ``BTC/USDT:USDT``) in futures mode; the same for the
    correlated pairs.

    Raises:
        ConfigError: naming the key, the pairs and the trading mode.
    """
    futures = config.backtest.futures
    for key, pairs in (
        ("data.pairs", config.data.pairs),
        ("features.include_corr_pairlist", config.features.include_corr_pairlist),
    ):
        wrong = [p for p in pairs if (":" in p) != futures]
        if wrong:
            expected = (
                "perpetuals written BASE/QUOTE:SETTLE such as 'BTC/USDT:USDT'"
                if futures
                else "spot pairs written BASE/QUOTE such as 'BTC/USDT'"
            )
            raise ConfigError(
                located(
                    source,
                    key,
                    f"backtest.trading_mode={config.backtest.trading_mode!r} trades {expected}, "
                    f"but got {list(wrong)}.",
                )
            )


def load_config(path: Path | str) -> RunConfig:
    """Read and validate a run config YAML file."""
    raw, path = read_yaml(path, what="run config", error=ConfigError)
    return parse_config(raw, str(path))
