"""Windowed in-memory datasets for the LSTM: scaling, zero-copy windows, device-resident batches.

Conventions (all row indices refer to the full feature matrix of one pair):

- Sample ``i`` uses feature rows ``i-W+1 .. i`` (oldest first) and is labelled ``y[i]``.
- A sample is usable when all its window rows are finite (and, for training, ``y[i]`` is finite);
  other samples are dropped from training and predicted as NaN.
- Scaling statistics come from the training rows only; the validation part is the last
  ``val_fraction`` of the usable training samples in time order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from base.errors import InputError


def _finite_columns_or_raise(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (rows, features) array, but got {x.shape=}.")
    finite = np.isfinite(x)
    empty = np.flatnonzero(~finite.any(axis=0))
    if empty.size:
        raise ValueError(
            f"{what} has no finite value in feature column(s) {empty.tolist()}; every feature "
            "needs finite values in the training rows."
        )
    return np.where(finite, x, np.nan)


@dataclass(frozen=True, eq=False)
class RobustScaler:
    """Median/IQR feature scaling plus mean/std label standardisation.

    ``transform(x) = (x - center) / scale`` per feature, with ``center`` the median and ``scale``
    the 25-75 % inter-quantile range of the fitting rows (1.0 where that range is 0). Labels are
    standardised with the mean/std of the fitting labels (std 0 -> 1) so the loss is well
    conditioned whatever the target's units; predictions are mapped back with ``inverse_labels``.

    Attributes:
        center: (F,) float32 feature medians.
        scale: (F,) float32 feature IQRs (> 0).
        label_center: Mean of the fitting labels (0 when fitted without labels).
        label_scale: Std of the fitting labels (> 0; 1 when fitted without labels).
    """

    center: np.ndarray
    scale: np.ndarray
    label_center: float = 0.0
    label_scale: float = 1.0

    def __post_init__(self) -> None:
        center = np.asarray(self.center, dtype=np.float32).reshape(-1)
        scale = np.asarray(self.scale, dtype=np.float32).reshape(-1)
        if center.shape != scale.shape:
            raise ValueError(
                f"RobustScaler center and scale must have the same length, but got "
                f"{center.shape=} and {scale.shape=}."
            )
        if not (np.isfinite(center).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(
                f"RobustScaler needs finite centers and finite positive scales, but got "
                f"{center=} and {scale=}."
            )
        label_center, label_scale = float(self.label_center), float(self.label_scale)
        if not (math.isfinite(label_center) and math.isfinite(label_scale) and label_scale > 0):
            raise ValueError(
                "RobustScaler needs a finite label_center and a finite positive label_scale, "
                f"but got {label_center=} and {label_scale=}."
            )
        center.flags.writeable = False
        scale.flags.writeable = False
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "label_center", label_center)
        object.__setattr__(self, "label_scale", label_scale)

    @property
    def n_features(self) -> int:
        return int(self.center.shape[0])

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray | None = None) -> RobustScaler:
        """Fit on the given rows (pass the training rows only). Non-finite values are ignored.

        Raises:
            ValueError: A feature column has no finite value, or labels have no finite value.
        """
        x = _finite_columns_or_raise(features, "RobustScaler.fit features")
        q25, center, q75 = np.nanquantile(x, [0.25, 0.5, 0.75], axis=0)
        iqr = q75 - q25
        scale = np.where(iqr > 0, iqr, 1.0)
        label_center, label_scale = 0.0, 1.0
        if labels is not None:
            y = np.asarray(labels, dtype=np.float64).reshape(-1)
            y = y[np.isfinite(y)]
            if y.size == 0:
                raise ValueError(
                    "RobustScaler.fit labels have no finite value in the fitting rows."
                )
            label_center = float(y.mean())
            std = float(y.std())
            label_scale = std if std > 0 else 1.0
        return cls(center, scale, label_center, label_scale)

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Scale (rows, F) features to float32; NaN stays NaN."""
        x = np.asarray(features)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"RobustScaler.transform expects (rows, {self.n_features}) features, but got "
                f"{x.shape=}."
            )
        return ((x - self.center) / self.scale).astype(np.float32, copy=False)

    def transform_labels(self, labels: np.ndarray) -> np.ndarray:
        """Standardise labels to float32."""
        y = np.asarray(labels, dtype=np.float64)
        return ((y - self.label_center) / self.label_scale).astype(np.float32)

    def inverse_labels(self, scaled: np.ndarray) -> np.ndarray:
        """Map standardised predictions back to label units (float64)."""
        return np.asarray(scaled, dtype=np.float64) * self.label_scale + self.label_center

    def to_dict(self) -> dict[str, Any]:
        """Tensors and floats only, loadable with ``torch.load(..., weights_only=True)``."""
        return {
            "center": torch.from_numpy(self.center.copy()),
            "scale": torch.from_numpy(self.scale.copy()),
            "label_center": self.label_center,
            "label_scale": self.label_scale,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RobustScaler:
        missing = {"center", "scale", "label_center", "label_scale"} - set(data)
        if missing:
            raise ValueError(f"RobustScaler.from_dict is missing keys {sorted(missing)}.")

        def to_np(v: Any) -> np.ndarray:
            return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)

        return cls(
            to_np(data["center"]),
            to_np(data["scale"]),
            float(data["label_center"]),
            float(data["label_scale"]),
        )


def window_view(x: np.ndarray | torch.Tensor, window: int) -> np.ndarray | torch.Tensor:
    """Zero-copy sliding windows over rows: (n, F) -> (n - window + 1, window, F).

    Window ``k`` holds rows ``k .. k + window - 1``, so the window ending at row ``i`` is
    ``k = i - window + 1``. The result is a strided view of ``x`` (no data copied).

    Raises:
        ValueError: ``x`` is not 2-D, or ``window`` is not in [1, n].
    """
    if x.ndim != 2:
        raise ValueError(f"window_view expects a 2-D (rows, features) array, but got {x.shape=}.")
    n = x.shape[0]
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= n:
        raise ValueError(f"window_view needs 1 <= window <= rows ({n}), but got {window=!r}.")
    if isinstance(x, torch.Tensor):
        return x.unfold(0, window, 1).transpose(1, 2)
    return np.lib.stride_tricks.sliding_window_view(x, window, axis=0).transpose(0, 2, 1)


def valid_window_ends(finite_rows: np.ndarray, window: int) -> np.ndarray:
    """Boolean mask over rows: True where rows ``i-window+1 .. i`` exist and are all finite.

    Args:
        finite_rows: (n,) bool, True where a row's features are all finite.
        window: Window length W (>= 1).
    """
    ok = np.asarray(finite_rows, dtype=bool)
    bad = np.concatenate([[0], np.cumsum(~ok)])
    ends = np.arange(ok.size)
    starts = ends - window + 1
    mask = starts >= 0
    counts = bad[ends + 1] - bad[np.clip(starts, 0, None)]
    return mask & (counts == 0)


def split_train_val(
    samples: np.ndarray, val_fraction: float, gap: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split time-ordered sample rows: the last ``val_fraction`` (at least one) is validation.

    ``gap`` drops the fit samples whose row is within ``gap`` rows of the first validation row:
    with labels ``y_t = T_{t+h}``, pass ``gap = h`` so no fit label reaches into the validation
    period (early stopping then judges truly unseen targets).

    Raises:
        InputError: Fewer than 2 training samples or no validation sample would remain.
    """
    samples = np.sort(np.asarray(samples, dtype=np.int64))
    n_val = max(1, round(samples.size * val_fraction))
    n_fit = samples.size - n_val
    if gap > 0 and n_val < samples.size:
        n_fit = int(np.searchsorted(samples[:n_fit], samples[n_fit] - gap, side="left"))
    if n_fit < 2:
        raise InputError(
            f"Too few usable training samples to fit and validate: {samples.size=} with "
            f"{val_fraction=} leaves {n_fit} for fitting (need >= 2). Use a longer train "
            "window or check for NaN features/labels."
        )
    return samples[:n_fit], samples[samples.size - n_val :]


class WindowedBatches:
    """Device-resident mini-batches of windows, as index slices of one tensor.

    The whole fold lives on one device as ``rows`` (n, F); windows are an ``unfold`` view, and
    each batch gathers its windows with one indexing op on that device: no DataLoader workers,
    no per-batch host-to-device copy. Lightning accepts it as a dataloader (it is a sized
    iterable of ``(x, y)`` batches); each ``iter()`` is one epoch.

    Args:
        rows: (n, F) float tensor of scaled features on the training device.
        labels: (n,) float tensor of scaled labels on the same device (NaN where unused).
        samples: (k,) int64 tensor of sample rows ``i`` (each needs ``i >= window - 1``).
        window: Window length W.
        batch_size: Samples per batch.
        shuffle: Shuffle sample order each epoch (use only for the training part).
        generator: Torch generator on ``rows.device`` for the shuffle (seeded by the caller).
        drop_tiny_last: Drop a final batch of a single sample (BatchNorm cannot train on it
            when ``window == 1``).
        weights: optional (n,) float tensor of sample weights on the same device, indexed like
            ``labels`` (a sample's weight is its last row's); batches are then ``(x, y, w)``.
    """

    def __init__(
        self,
        rows: torch.Tensor,
        labels: torch.Tensor,
        samples: torch.Tensor,
        *,
        window: int,
        batch_size: int,
        shuffle: bool,
        generator: torch.Generator | None = None,
        drop_tiny_last: bool = False,
        weights: torch.Tensor | None = None,
    ) -> None:
        if samples.numel() == 0:
            raise ValueError("WindowedBatches needs at least one sample, but got 0.")
        if int(samples.min()) < window - 1 or int(samples.max()) >= rows.shape[0]:
            raise ValueError(
                f"WindowedBatches samples must lie in [{window - 1}, {rows.shape[0] - 1}], but "
                f"got min={int(samples.min())}, max={int(samples.max())}."
            )
        self.windows = window_view(rows, window)  # (n - W + 1, W, F) view
        self.labels = labels
        self.weights = weights
        self.window_index = samples.to(rows.device) - (window - 1)
        self.sample_rows = samples.to(rows.device)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        n = self.window_index.numel()
        self._n_batches = math.ceil(n / self.batch_size)
        if drop_tiny_last and n > 1 and n % self.batch_size == 1:
            self._n_batches -= 1

    def __len__(self) -> int:
        return self._n_batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = self.window_index
        targets = self.sample_rows
        if self.shuffle:
            perm = torch.randperm(order.numel(), generator=self.generator, device=order.device)
            order, targets = order[perm], targets[perm]
        bs = self.batch_size
        for b in range(self._n_batches):
            part = slice(b * bs, (b + 1) * bs)
            if self.weights is None:
                yield self.windows[order[part]], self.labels[targets[part]]
            else:
                rows = targets[part]
                yield self.windows[order[part]], self.labels[rows], self.weights[rows]
