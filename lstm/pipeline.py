"""FreqAI's data-pipeline steps that shape a fit: recency sample weights and training noise.

FreqAI's ``feature_parameters`` hold two settings that change what a model learns from its
training rows (freqtrade ``freqai/data_kitchen.py`` and ``freqai_interface.define_data_pipeline``):

``weight_factor``
    :func:`recency_weights`: the ``k``-th of FreqAI's ``n`` training rows (rows with finite
    features and label, in time order) weighs ``exp(-(n - 1 - k) / (weight_factor * n))``, the
    newest 1, the oldest ``exp(-(n - 1) / (weight_factor * n))`` (FreqAI's
    ``set_weights_higher_recent``, the same expression). An LSTM sample is a window; **its weight
    is the weight of its last row** (the row its label belongs to). The weights enter the training
    loss as a weighted mean, ``sum(w * err**2) / sum(w)`` per batch; early stopping judges the
    plain MSE of the validation samples. 0 turns weighting off (the unweighted loss, bit for bit).
``noise_standard_deviation``
    FreqAI's ``Noise`` step adds ``N(0, sigma)`` once to every training feature value after its
    pipeline has min-max scaled each feature to [-1, 1] (fitted on the training rows; constant
    columns dropped), and never to anything it predicts. Here: one draw per fit from the
    member's seed (:func:`lstm.seeds.noise_generator`), ``N(0, sigma * (max - min) / 2)`` in
    feature units (:class:`RangeScaler` gives ``(max - min) / 2``), added to every training row;
    the validation samples, the in-sample predictions and every prediction see the clean rows.
    0 turns noise off.

:class:`RangeScaler` is FreqAI's own feature scale (``VarianceThreshold(0)`` then
``MinMaxScaler((-1, 1))``, fitted on FreqAI's training rows, :func:`freqai_rows`); the noise
above and the dissimilarity index (:mod:`strategy.dissimilarity`) are measured in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from base.checks import check_int, check_number
from lstm.seeds import noise_generator

__all__ = ["FitPipeline", "RangeScaler", "freqai_rows", "recency_weights", "training_noise"]


@dataclass(frozen=True)
class FitPipeline:
    """The FreqAI settings that act on a fit (see the module docstring).

    Attributes:
        weight_factor: FreqAI's ``weight_factor`` (>= 0; 0: no sample weights).
        noise_standard_deviation: FreqAI's ``noise_standard_deviation`` (>= 0; 0: no noise), in
            units of the [-1, 1] range scale.
    """

    weight_factor: float = 0.0
    noise_standard_deviation: float = 0.0

    def __post_init__(self) -> None:
        for name in ("weight_factor", "noise_standard_deviation"):
            object.__setattr__(self, name, check_number(name, getattr(self, name), 0.0))

    @property
    def weighted(self) -> bool:
        return self.weight_factor > 0

    @property
    def noisy(self) -> bool:
        return self.noise_standard_deviation > 0


def recency_weights(n: int, weight_factor: float) -> np.ndarray:
    """FreqAI's sample weights of ``n`` time-ordered rows: ``exp(-arange(n) / (wf * n))[::-1]``.

    Raises:
        ValueError: ``n < 0`` or ``weight_factor <= 0``.
    """
    n = check_int("n", n, 0)
    factor = check_number("weight_factor", weight_factor, 0.0, low_open=True)
    return np.exp(-np.arange(n) / (factor * n))[::-1]


def freqai_rows(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows FreqAI trains on: every feature and the label finite (its
    ``filter_features`` drops every other row of a training window)."""
    x = np.asarray(features)
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(
            f"features must be (rows, F) with one label per row, but got {x.shape=} and {y.shape=}."
        )
    return np.isfinite(x).all(axis=1) & np.isfinite(y)


@dataclass(frozen=True, eq=False)
class RangeScaler:
    """FreqAI's feature scale: constant columns dropped, the others min-max scaled to [-1, 1].

    What ``VarianceThreshold(threshold=0)`` followed by ``MinMaxScaler(feature_range=(-1, 1))``
    fitted on the same rows computes (sklearn's formula: ``x * scale + offset``).

    Attributes:
        kept: (F,) bool, the columns with a spread in the fitting rows.
        data_min, data_max: (F,) float64 minimum and maximum of each column over the fitting rows.
    """

    kept: np.ndarray
    data_min: np.ndarray
    data_max: np.ndarray

    @classmethod
    def fit(cls, rows: np.ndarray) -> RangeScaler:
        """Fit on ``rows`` (finite, at least one; pass FreqAI's training rows).

        Raises:
            ValueError: no row, or a non-finite value.
        """
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0 or not np.isfinite(x).all():
            raise ValueError(
                f"RangeScaler.fit needs at least one row of finite features, but got {x.shape=}"
                f" with {int((~np.isfinite(x)).sum()) if x.size else 0} non-finite values."
            )
        kept = np.minimum(np.var(x, axis=0), np.ptp(x, axis=0)) > 0  # sklearn VarianceThreshold(0)
        return cls(kept, x.min(axis=0), x.max(axis=0))

    @property
    def half_range(self) -> np.ndarray:
        """(F,) half of each column's range (0 for dropped columns): one unit of the [-1, 1]
        scale in feature units."""
        return np.where(self.kept, (self.data_max - self.data_min) / 2.0, 0.0)

    def transform(self, features: np.ndarray) -> np.ndarray:
        """(rows, kept columns) float64 in the [-1, 1] scale (beyond it outside the fitted
        range)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.kept.shape[0]:
            raise ValueError(
                f"RangeScaler.transform expects (rows, {self.kept.shape[0]}) features, but got "
                f"{x.shape=}."
            )
        low, high = self.data_min[self.kept], self.data_max[self.kept]
        scale = 2.0 / (high - low)
        return x[:, self.kept] * scale + (-1.0 - low * scale)


def training_noise(n_rows: int, amplitude: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """FreqAI's training noise for ``n_rows`` rows: ``N(0, sigma * amplitude[f])`` per column.

    Args:
        n_rows: training rows (one draw per row and column, row-major, from the first row on).
        amplitude: (F,) one unit of the noise's scale per column in the units the noise is
            added in (``RangeScaler.half_range`` divided by the fit's own feature scale).
        sigma: ``noise_standard_deviation``.
        seed: the member's seed (:func:`lstm.seeds.noise_generator`).

    Returns:
        (n_rows, F) float32.
    """
    scale = sigma * np.asarray(amplitude, dtype=np.float64)
    draws = noise_generator(seed).standard_normal((n_rows, scale.shape[0]))
    return (draws * scale).astype(np.float32)
