"""FreqAI's dissimilarity index (``DI_threshold``): no entry on a candle unlike the training data.

FreqAI (datasieve's ``DissimilarityIndex`` in the pipeline of ``define_data_pipeline``) scales a
window's training rows to [-1, 1] (constant columns dropped, :class:`lstm.pipeline.RangeScaler`),
stores them with the mean Euclidean distance between two different training rows, and gives each
prediction row ``DI = (distance to its nearest training row) / (that mean distance)``; a row with
``DI >= DI_threshold`` gets ``do_predict = 0``. :class:`DissimilarityIndex` computes exactly that:

* fitted on FreqAI's training rows of one window (:func:`lstm.pipeline.freqai_rows`: every
  feature and the label finite) and nothing else, so no row after the window's last training row
  reaches it;
* applied to the rows of that window's predictions (:meth:`DissimilarityIndex.values`), each row on
  its own;
* bit-reproducible: the distances are sums of squared differences in one fixed order (numba loops,
  no BLAS, no reassociation), so a row's index depends on nothing but its own features and the
  training rows (not on the other rows predicted with it, their memory alignment, the thread
  count or the process), and the study's test window and FreqAI's backtest window agree bit for
  bit. No n-by-n matrix is held.

The study and the FreqAI model both call it (:func:`strategy.pipeline.fit_window`); a blocked
candle only loses its entry signal (:func:`strategy.signals.gated_signals`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numba import njit

from base.checks import check_number
from lstm.pipeline import RangeScaler, freqai_rows

__all__ = ["DissimilarityIndex", "mean_distance"]


@njit(cache=True)
def _pair_distance_sum(columns: np.ndarray) -> float:  # pragma: no cover - compiled
    """Sum of the Euclidean distances of every unordered pair of rows; ``columns`` is (k, n), the
    rows' transpose. Each squared distance sums its k terms in column order."""
    k, n = columns.shape
    acc = np.empty(n)
    total = 0.0
    for i in range(n - 1):
        acc[i + 1 :] = 0.0
        for f in range(k):
            value = columns[f, i]
            column = columns[f]
            for j in range(i + 1, n):
                d = column[j] - value
                acc[j] += d * d
        row = 0.0
        for j in range(i + 1, n):
            row += np.sqrt(acc[j])
        total += row
    return total


@njit(cache=True)
def _nearest_squared(columns: np.ndarray, rows: np.ndarray) -> np.ndarray:  # pragma: no cover
    """For each of ``rows`` (m, k): the smallest squared distance to a training row (``columns``
    (k, n), their transpose), each summed over the k terms in column order."""
    k, n = columns.shape
    out = np.empty(rows.shape[0])
    acc = np.empty(n)
    for i in range(rows.shape[0]):
        acc[:] = 0.0
        for f in range(k):
            value = rows[i, f]
            column = columns[f]
            for j in range(n):
                d = column[j] - value
                acc[j] += d * d
        out[i] = acc.min()
    return out


def mean_distance(rows: np.ndarray) -> float:
    """Mean Euclidean distance between two different rows of ``rows`` (n >= 2), as datasieve's
    ``DissimilarityIndex.fit`` computes it (every ordered pair, the diagonal excluded)."""
    t = np.asarray(rows, dtype=np.float64)
    n = t.shape[0]
    if n < 2:
        raise ValueError(f"the dissimilarity index needs at least 2 training rows, but got {n}.")
    return 2.0 * _pair_distance_sum(np.ascontiguousarray(t.T)) / (n * (n - 1))


@dataclass(frozen=True, eq=False)
class DissimilarityIndex:
    """A window's dissimilarity index (see the module docstring).

    Attributes:
        threshold: ``DI_threshold`` (> 0): rows with ``DI >= threshold`` are blocked.
        scaler: FreqAI's [-1, 1] scale of the training rows.
        train: (n, k) the scaled training rows (float64).
        mean_distance: mean distance between two different training rows (> 0).
    """

    threshold: float
    scaler: RangeScaler
    train: np.ndarray
    mean_distance: float

    def __post_init__(self) -> None:
        check_number("DI_threshold", self.threshold, 0.0, low_open=True)
        if not (np.isfinite(self.mean_distance) and self.mean_distance > 0):
            raise ValueError(
                "the dissimilarity index needs training rows that are not all identical, but "
                f"their mean distance is {self.mean_distance!r}."
            )
        object.__setattr__(self, "_columns", np.ascontiguousarray(self.train.T))

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, threshold: float) -> DissimilarityIndex:
        """Fit on one window's training rows.

        Args:
            features: (n, F) the training rows' features (rows with a non-finite feature or label
                are left out, as FreqAI drops them).
            labels: (n,) their labels.
            threshold: ``DI_threshold`` (> 0).

        Raises:
            ValueError: fewer than 2 usable rows, or all of them identical.
        """
        x = np.asarray(features, dtype=np.float64)
        rows = x[freqai_rows(x, labels)]
        if rows.shape[0] < 2:
            raise ValueError(
                "the dissimilarity index needs at least 2 training rows with finite features and "
                f"label, but got {rows.shape[0]} of {x.shape[0]}."
            )
        scaler = RangeScaler.fit(rows)
        train = np.ascontiguousarray(scaler.transform(rows))
        return cls(float(threshold), scaler, train, mean_distance(train))

    def values(self, features: np.ndarray) -> np.ndarray:
        """(rows,) float64 DI of each row of ``features``; NaN where a feature is non-finite (FreqAI
        never predicts there)."""
        x = np.asarray(features, dtype=np.float64)
        out = np.full(x.shape[0] if x.ndim == 2 else 0, np.nan)
        finite = np.flatnonzero(np.isfinite(x).all(axis=1)) if x.ndim == 2 else []
        if not len(finite):
            return out
        scaled = np.ascontiguousarray(self.scaler.transform(x[finite]))
        nearest = _nearest_squared(self._columns, scaled)  # type: ignore[attr-defined]
        out[finite] = np.sqrt(nearest) / self.mean_distance
        return out

    def allowed(self, features: np.ndarray) -> np.ndarray:
        """(rows,) bool: ``DI < threshold`` (FreqAI's ``do_predict`` of the index; False where the
        DI is NaN)."""
        with np.errstate(invalid="ignore"):
            return self.values(features) < self.threshold

    def to_dict(self) -> dict[str, Any]:
        """Tensors and floats, loadable with ``torch.load(..., weights_only=True)``."""
        return {
            "threshold": self.threshold,
            "kept": torch.from_numpy(self.scaler.kept.copy()),
            "data_min": torch.from_numpy(self.scaler.data_min.copy()),
            "data_max": torch.from_numpy(self.scaler.data_max.copy()),
            "train": torch.from_numpy(self.train.copy()),
            "mean_distance": self.mean_distance,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DissimilarityIndex:
        def arr(key: str) -> np.ndarray:
            value = data[key]
            return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)

        scaler = RangeScaler(arr("kept").astype(bool), arr("data_min"), arr("data_max"))
        return cls(
            float(data["threshold"]),
            scaler,
            np.ascontiguousarray(arr("train"), dtype=np.float64),
            float(data["mean_distance"]),
        )
