"""Predict rows of a feature matrix with a fitted module, in fixed-size inference batches.

A prediction is bitwise reproducible only at the thread count it was made with: a fit's own
predictions run at :data:`lstm.fitspec.FIT_THREADS`, the count of every fit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from base.checks import check_int
from lstm.data import RobustScaler, valid_window_ends, window_view
from lstm.fitspec import FIT_THREADS
from lstm.module import LSTMLightningModule
from lstm.prepare import check_rows

__all__ = ["PREDICT_BATCH", "fit_threads", "predict", "predict_scaled"]

PREDICT_BATCH = 1024  # windows per inference batch: bounds the gathered copy (W x F floats each)


@contextlib.contextmanager
def fit_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` inside, restored after."""
    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@torch.no_grad()
def predict_scaled(
    model: torch.nn.Module,
    rows: torch.Tensor,
    valid_end: np.ndarray,
    targets: range,
    window: int,
) -> np.ndarray:
    """Scaled predictions for row indices ``targets`` of ``rows`` (NaN where not valid).

    Every target row's window goes through the model, valid or not, in batches of exactly
    ``PREDICT_BATCH`` windows counted from ``targets.start`` (the last batch padded with copies
    of its last window; non-finite inputs zeroed for the forward pass, their outputs set to NaN
    afterwards). A row's batch and its position in it thus depend only on ``targets.start``,
    never on the rows after it: CPU kernels round differently for different batch sizes, so a
    batch of the valid windows only would let a NaN in a later row change past predictions.
    """
    out = np.full(len(targets), np.nan, dtype=np.float64)
    idx = np.arange(targets.start, targets.stop)
    ok = valid_end[idx]
    if not ok.any():
        return out
    was_training = model.training
    model.eval()
    try:
        windows = window_view(rows, window)
        starts = np.clip(idx - (window - 1), 0, None)  # invalid rows: any window, output dropped
        padded = -len(starts) % PREDICT_BATCH
        starts = torch.from_numpy(np.pad(starts, (0, padded), mode="edge")).to(rows.device)
        parts = [
            model(windows[starts[b : b + PREDICT_BATCH]].nan_to_num_(0.0, 0.0, 0.0))[:, 0].float()
            for b in range(0, starts.numel(), PREDICT_BATCH)
        ]
        out[ok] = torch.cat(parts).cpu().numpy()[: len(idx)][ok]
    finally:
        model.train(was_training)
    return out


def predict(
    module: LSTMLightningModule,
    scaler: RobustScaler,
    features: np.ndarray,
    rows: slice,
    window: int,
) -> np.ndarray:
    """Predict rows of a feature matrix with a fitted module.

    The module comes from :func:`lstm.train.fit_predict` or
    :func:`lstm.checkpoint.load_checkpoint`.

    Row ``i`` is predicted from rows ``i-window+1 .. i`` (rows before ``rows.start`` are used
    when present: they are past data). Nothing after row ``i`` is read for row ``i``, and its
    value, bit for bit, does not depend on how many rows follow or what they hold (fixed-size
    inference batches counted from ``rows.start``).

    Args:
        module: Fitted module (its device is used; it is left in its previous train/eval mode).
        scaler: The scaler fitted with the module.
        features: (n, F) unscaled features, the same columns as at training time.
        rows: Contiguous slice of rows to predict.
        window: Window length W the module was trained with.

    Returns:
        (len(rows),) float64 predictions in label units; NaN where the window is incomplete
        (``i < window - 1``) or holds a non-finite feature.
    """
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[1] != scaler.n_features:
        raise ValueError(
            f"predict expects (rows, {scaler.n_features}) features, but got {x.shape=}."
        )
    r = check_rows(rows, x.shape[0], "rows")
    check_int("window", window, 1)
    lo = max(0, r.start - window + 1)
    scaled = scaler.transform(x[lo : r.stop])
    # Local row j >= window - 1 has its whole window inside ``scaled``; rows before ``lo`` are
    # only cut off when ``lo == 0``, i.e. where the history really is too short.
    valid = valid_window_ends(np.isfinite(scaled).all(axis=1), window)
    device = next(module.parameters()).device
    tensor = torch.from_numpy(np.ascontiguousarray(scaled)).to(device)
    local = range(r.start - lo, r.stop - lo)
    with fit_threads(FIT_THREADS):  # the thread count of the fit's own predictions
        return scaler.inverse_labels(predict_scaled(module, tensor, valid, local, window))
