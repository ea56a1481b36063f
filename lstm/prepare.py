"""Prepare one fit's inputs: checked rows, the training-rows scaler, windows and device tensors.

Everything the members of one fit share is built here once (:func:`prepare`), then copied to
the training device once (:class:`DeviceData`); :mod:`lstm.train` trains the members on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from lstm.data import RobustScaler, split_train_val, valid_window_ends
from lstm.fitspec import FitSpec
from lstm.params import LSTMParams
from lstm.pipeline import FitPipeline, RangeScaler, recency_weights

__all__ = ["DeviceData", "Prepared", "check_rows", "check_seed", "prepare"]

log = logging.getLogger(__name__)


def check_rows(s: slice, n: int, name: str) -> range:
    """The rows ``s`` selects among ``n`` as a range.

    Raises:
        TypeError / ValueError: ``s`` is not a slice, has a step other than 1, or selects nothing.
    """
    if not isinstance(s, slice):
        raise TypeError(f"{name} must be a slice of rows, but got {type(s)=}.")
    if s.step not in (None, 1):
        raise ValueError(f"{name} must be a contiguous slice (step 1), but got {s=}.")
    r = range(*s.indices(n))
    if len(r) == 0:
        raise ValueError(f"{name} selects no rows of the {n} available, but got {s=}.")
    return r


def check_seed(seed: object) -> int:
    """``seed`` as an int in ``[0, 2**32)`` (TypeError / ValueError otherwise)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, but got {seed=!r}.")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), but got {seed=!r}.")
    return int(seed)


@dataclass(frozen=True, eq=False)
class Prepared:
    """What every member of one fit shares: scaling, windows, sample rows, FreqAI's pipeline.

    Row indices are local to ``lo`` (the first row any window of ``train`` or ``predict`` reads).
    ``weights`` (float32 per local row, NaN off FreqAI's training rows) is None without
    ``weight_factor``; ``noise_amplitude`` ((F,) one unit of FreqAI's [-1, 1] scale in scaled
    feature units) is None without ``noise_standard_deviation``.
    """

    scaler: RobustScaler
    scaled: np.ndarray
    y_scaled: np.ndarray
    valid: np.ndarray
    lo: int
    train: range
    predict: range
    fit_rows: np.ndarray
    val_rows: np.ndarray
    n_features: int
    names: tuple[str, ...] | None
    pipeline: FitPipeline = field(default_factory=FitPipeline)
    weights: np.ndarray | None = None
    noise_amplitude: np.ndarray | None = None

    @property
    def local_train(self) -> range:
        return range(self.train.start - self.lo, self.train.stop - self.lo)

    @property
    def local_predict(self) -> range:
        return range(self.predict.start - self.lo, self.predict.stop - self.lo)


def _feature_names(feature_names: Sequence[str] | None, n: int) -> tuple[str, ...] | None:
    if feature_names is None:
        return None
    names = tuple(str(name) for name in feature_names)
    if len(names) != n:
        raise ValueError(f"feature_names must name the {n} feature columns, but got {len(names)=}.")
    return names


def prepare(features: np.ndarray, labels: np.ndarray, spec: FitSpec) -> Prepared:
    """Check the inputs, fit the scaler on the training rows, pick the fit/validation samples,
    compute FreqAI's sample weights and noise scale (:mod:`lstm.pipeline`) when asked.

    Arguments: as for :func:`lstm.train.fit_predict`.

    Raises:
        TypeError / ValueError: bad shapes, slices, params or names.
    """
    params, pipeline = spec.params, spec.pipeline
    if not isinstance(params, LSTMParams):
        raise TypeError(f"params must be LSTMParams, but got {type(params)=}.")
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValueError(f"features must be a 2-D (rows, features) array, but got {x.shape=}.")
    y = np.asarray(labels, dtype=np.float64)
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"labels must be 1-D with one value per feature row ({x.shape[0]}), but got {y.shape=}."
        )
    names = _feature_names(spec.feature_names, x.shape[1])
    n, w = x.shape[0], params.window_size
    tr = check_rows(spec.train, n, "train")
    pr = check_rows(spec.predict, n, "predict")
    scaler = RobustScaler.fit(x[tr.start : tr.stop], y[tr.start : tr.stop])
    lo = max(0, min(tr.start, pr.start) - w + 1)
    hi = max(tr.stop, pr.stop)
    scaled = scaler.transform(x[lo:hi])
    valid = valid_window_ends(np.isfinite(scaled).all(axis=1), w)
    y_scaled = scaler.transform_labels(y[lo:hi])
    tr_local = np.arange(tr.start - lo, tr.stop - lo)
    usable = tr_local[valid[tr_local] & np.isfinite(y_scaled[tr_local])]
    fit_rows, val_rows = split_train_val(usable, params.val_fraction, gap=spec.label_horizon)
    log.debug(
        "fit: %d usable of %d train rows (%d fit, %d val), %d predict rows",
        usable.size,
        len(tr),
        fit_rows.size,
        val_rows.size,
        len(pr),
    )
    weights = amplitude = None
    if pipeline.weighted or pipeline.noisy:
        # FreqAI's training rows: every feature and the label finite (its filter_features)
        rows = tr_local[np.isfinite(scaled[tr_local]).all(axis=1) & np.isfinite(y_scaled[tr_local])]
        if pipeline.weighted:
            weights = np.full(scaled.shape[0], np.nan, dtype=np.float32)
            weights[rows] = recency_weights(rows.size, pipeline.weight_factor)
        if pipeline.noisy:
            half_range = RangeScaler.fit(x[rows + lo]).half_range
            amplitude = half_range / scaler.scale.astype(np.float64)
    return Prepared(
        scaler,
        scaled,
        y_scaled,
        valid,
        lo,
        tr,
        pr,
        fit_rows,
        val_rows,
        x.shape[1],
        names,
        pipeline,
        weights,
        amplitude,
    )


class DeviceData:
    """The prepared rows and labels as tensors on one device (built once, shared by members)."""

    def __init__(self, prep: Prepared) -> None:
        self.prep = prep
        self.device: torch.device | None = None
        self.rows: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.weights: torch.Tensor | None = None

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rows, labels)`` on ``device`` (copied there on the first call for that device;
        :attr:`weights` too, when the fit has sample weights)."""
        if self.device != device:
            self.rows = torch.from_numpy(np.ascontiguousarray(self.prep.scaled)).to(device)
            self.labels = torch.from_numpy(self.prep.y_scaled).to(device)
            if self.prep.weights is not None:
                self.weights = torch.from_numpy(self.prep.weights).to(device)
            self.device = device
        assert self.rows is not None and self.labels is not None
        return self.rows, self.labels
