"""FreqAI's data pipeline as this project applies it: the five settings and one window's fit.

The seed's FreqAI config sets five ``feature_parameters`` keys; :class:`DataPipeline` holds them
under FreqAI's own names, with FreqAI's meaning (freqtrade ``freqai/data_kitchen.py`` and
``freqai_interface.py``, datasieve's ``DissimilarityIndex`` and ``Noise``):

``DI_threshold``
    the dissimilarity index (:mod:`strategy.dissimilarity`): fitted on a window's training rows,
    a prediction row with ``DI >= DI_threshold`` gets ``do_predict = 0`` and no entry (its exits
    still apply). 0: off.
``weight_factor``
    recency sample weights in the LSTM's training loss (:mod:`lstm.pipeline`). 0: off.
``noise_standard_deviation``
    Gaussian noise on the training features only, drawn from the member's seed
    (:mod:`lstm.pipeline`). 0: off.
``include_corr_pairlist``
    the listed pairs' features (every timeframe, not the calendar ones) appended to every other
    pair's features, merged without look-ahead (:func:`strategy.features.corr_pair_features`).
    A pair never gets its own features twice. Empty: off.
``buffer_train_data_candles``
    FreqAI cuts this many candles off both ends of every training window (its
    ``buffer_timerange``: ``train_period_days`` before the backtest window, so the window's start
    and its end). Of what is left the model fits, as always, the ``train_days`` that end
    ``purge_candles`` before the backtest window: with ``b`` candles cut, the fit ends
    ``max(purge_candles, b)`` candles before the window and starts no earlier than ``b`` candles
    after FreqAI's window start (:func:`optimize.walkforward.make_folds`, the FreqAI model's
    ``fit_rows``). 0: off.

All five default to off, which is exactly the pipeline-free fit. :func:`fit_window` is the one fit
of a window the study (folds and holdout) and the FreqAI model share: each builds the window's
:class:`lstm.fitspec.FitSpec` with the pipeline's weights and noise (:attr:`DataPipeline.fit`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from base.checks import WrongTypeError, check_int, check_number, fail
from lstm.pipeline import FitPipeline

if TYPE_CHECKING:  # torch and Lightning load with the first fit, not with the run config
    from lstm.fitspec import FitSpec
    from lstm.train import EnsembleFit
    from strategy.dissimilarity import DissimilarityIndex

__all__ = [
    "PIPELINE_KEYS",
    "SEARCHABLE_KEYS",
    "DataPipeline",
    "WindowFit",
    "fit_window",
    "pair_list",
]

PIPELINE_KEYS = (
    "DI_threshold",
    "weight_factor",
    "noise_standard_deviation",
    "include_corr_pairlist",
    "buffer_train_data_candles",
)
"""FreqAI ``feature_parameters`` keys of the pipeline (the run config's ``features`` keys too)."""
SEARCHABLE_KEYS = PIPELINE_KEYS[:4]
"""The keys a search space may set per trial (the buffer shapes the folds: run config only)."""


def pair_list(value: Any, name: str = "include_corr_pairlist") -> tuple[str, ...]:
    """``value`` as a tuple of distinct ``BASE/QUOTE`` pairs (a list, a tuple, or a comma-separated
    string; ``""`` is no pair).

    Raises:
        ValueError: anything else (the value is named).
    """
    if isinstance(value, str):
        value = [p.strip() for p in value.split(",") if p.strip()]
    if not isinstance(value, list | tuple):
        fail(name, value, "a list of pairs like ['BTC/USDT']", WrongTypeError)
    pairs = tuple(value)
    if any(not isinstance(p, str) or "/" not in p for p in pairs) or len(set(pairs)) < len(pairs):
        fail(name, list(pairs), "a list of distinct pairs like ['BTC/USDT']")
    return pairs


@dataclass(frozen=True)
class DataPipeline:
    """FreqAI's data-pipeline settings (see the module docstring); all off by default."""

    DI_threshold: float = 0.0
    weight_factor: float = 0.0
    noise_standard_deviation: float = 0.0
    include_corr_pairlist: tuple[str, ...] = ()
    buffer_train_data_candles: int = 0

    def __post_init__(self) -> None:
        for name in ("DI_threshold", "weight_factor", "noise_standard_deviation"):
            object.__setattr__(self, name, check_number(name, getattr(self, name), 0.0))
        object.__setattr__(self, "include_corr_pairlist", pair_list(self.include_corr_pairlist))
        object.__setattr__(
            self,
            "buffer_train_data_candles",
            check_int("buffer_train_data_candles", self.buffer_train_data_candles, 0),
        )

    @property
    def fit(self) -> FitPipeline:
        """The settings :mod:`lstm` applies in a fit (weights and noise)."""
        return FitPipeline(self.weight_factor, self.noise_standard_deviation)

    def replace(self, **changes: Any) -> DataPipeline:
        """A copy with some keys changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_feature_parameters(self) -> dict[str, Any]:
        """The five keys as FreqAI's ``feature_parameters`` hold them."""
        out = {k: getattr(self, k) for k in PIPELINE_KEYS}
        out["include_corr_pairlist"] = list(self.include_corr_pairlist)
        return out

    @classmethod
    def from_feature_parameters(cls, params: Mapping[str, Any]) -> DataPipeline:
        """The pipeline of a FreqAI ``feature_parameters`` mapping (absent keys: off)."""
        values = {k: params[k] for k in PIPELINE_KEYS if params.get(k) is not None}
        for name in ("DI_threshold", "weight_factor", "noise_standard_deviation"):
            if isinstance(values.get(name), bool):  # FreqAI's RL model writes DI_threshold: false
                values[name] = float(values[name])
        return cls(**values)


@dataclass(frozen=True, eq=False)
class WindowFit:
    """One window's fit: the ensemble and, with ``DI_threshold``, its dissimilarity index.

    Attributes:
        ensemble: :func:`lstm.train.fit_ensemble`'s result.
        dissimilarity: the index fitted on the window's training rows, or None (DI off).
    """

    ensemble: EnsembleFit
    dissimilarity: DissimilarityIndex | None

    def allowed(self, features: np.ndarray) -> np.ndarray:
        """(rows,) bool: the rows the index lets the strategy enter on (all without an index)."""
        if self.dissimilarity is None:
            return np.ones(np.asarray(features).shape[0], dtype=bool)
        return self.dissimilarity.allowed(features)


def fit_window(
    features: np.ndarray,
    labels: np.ndarray,
    spec: FitSpec,
    seeds: Sequence[int],
    *,
    DI_threshold: float = 0.0,
) -> WindowFit:
    """Fit one window: the ensemble on ``spec.train`` (with ``spec.pipeline``: the window
    pipeline's weights and noise, :attr:`DataPipeline.fit`), and with ``DI_threshold > 0`` the
    dissimilarity index on the same training rows.

    Arguments: as for :func:`lstm.train.fit_ensemble`, plus the pipeline's ``DI_threshold``.
    ``spec.train`` must be a contiguous slice (step 1); the index sees ``features[train]`` only.

    Raises:
        TypeError / ValueError: as :func:`lstm.train.fit_ensemble`; too few rows for the index.
    """
    from lstm.train import fit_ensemble
    from strategy.dissimilarity import DissimilarityIndex

    ensemble = fit_ensemble(features, labels, spec, seeds)
    index = None
    if DI_threshold > 0:
        rows = range(*spec.train.indices(np.asarray(features).shape[0]))
        index = DissimilarityIndex.fit(
            np.asarray(features)[rows.start : rows.stop],
            np.asarray(labels)[rows.start : rows.stop],
            DI_threshold,
        )
    return WindowFit(ensemble, index)
