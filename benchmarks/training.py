"""The same ``LSTMRegressor`` (size, batch size, optimiser, gradient clipping, validation pass
per epoch, final test and in-sample predictions) trained on 4000 rows of real BTC/USDT 1h features
by ``lstm.train.fit_predict`` (Lightning, device-resident windows, index-sliced batches) and by a
plain PyTorch loop over ``DataLoader(TensorDataset(copied windows), shuffle=True)`` (host-to-device
copy per batch on a GPU), at the same torch thread count (``lstm.train.FIT_THREADS``, which every
fit uses for reproducibility); rounds alternate, each side's median samples/s per round; plus
batch iteration alone. Goal: >= 1x on CPU, >= 2x on a GPU.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from benchmarks import Row, alternate, row
from lstm.data import RobustScaler, WindowedBatches, window_view
from lstm.model import LSTMRegressor
from lstm.params import LSTMParams
from lstm.train import FIT_THREADS, FitSpec, fit_predict, fit_threads
from optimize.data import load_candles

log = logging.getLogger(__name__)

BENCH_PARAMS = LSTMParams(
    num_lstm_layers=2,
    hidden_dim=64,
    dropout_percent=0.2,
    window_size=16,
    batch_size=256,
    epochs=4,
    early_stopping_patience=4,  # never stop early: both sides run the same epochs
)
FIT_GOAL = {"cpu": 1.0, "cuda": 2.0}
"""``fit_predict`` trains at least this many times the reference's samples/s."""


def bench_features(rows: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """``(features (rows, 20) float32, labels (rows,))`` from the last ``rows`` BTC/USDT 1h
    candles; the label is the next candle's log return (NaN for the last row)."""
    df = load_candles("BTC/USDT", "1h").tail(rows + 100).reset_index(drop=True)
    close, high, low, open_ = (df[c].astype(float) for c in ("close", "high", "low", "open"))
    logc = np.log(close)
    ret = logc.diff()
    vol = np.log1p(df["volume"].astype(float))
    cols = {f"ret_{k}": logc.diff(k) for k in (1, 2, 3, 4, 6, 8, 12, 24)}
    cols |= {
        "range": np.log(high / low),
        "body": np.log(close / open_),
        "upper_wick": np.log(high / np.maximum(open_, close)),
        "lower_wick": np.log(np.minimum(open_, close) / low),
        "dvol_1": vol.diff(1),
        "dvol_24": vol.diff(24),
        "vol_z24": (vol - vol.rolling(24).mean()) / vol.rolling(24).std(),
        "rv_6": ret.rolling(6).std(),
        "rv_24": ret.rolling(24).std(),
        "rv_72": ret.rolling(72).std(),
    }
    hour = df["date"].dt.hour.to_numpy()
    cols |= {"hour_sin": np.sin(2 * np.pi * hour / 24), "hour_cos": np.cos(2 * np.pi * hour / 24)}
    feats = pd.DataFrame(cols).tail(rows).to_numpy(np.float32)
    labels = ret.shift(-1).tail(rows).to_numpy(np.float64)
    return feats, labels


def _reference_round(
    features: np.ndarray, labels: np.ndarray, n_train: int, params: LSTMParams, device: str
) -> int:
    """Plain PyTorch: copied windows, DataLoader, manual loop. Returns training samples seen."""
    w = params.window_size
    scaler = RobustScaler.fit(features[:n_train], labels[:n_train])
    x = scaler.transform(features)
    y = scaler.transform_labels(labels)
    ends = np.arange(w - 1, x.shape[0])
    ok = np.isfinite(x).all(axis=1)
    ok_win = np.array([ok[e - w + 1 : e + 1].all() for e in ends])
    windows = torch.from_numpy(np.ascontiguousarray(window_view(x, w)))  # the copy
    targets = torch.from_numpy(y[ends])
    train_idx = np.flatnonzero(ok_win & (ends < n_train) & np.isfinite(y[ends]))
    n_val = max(1, round(train_idx.size * params.val_fraction))
    fit_idx, val_idx = train_idx[:-n_val], train_idx[-n_val:]
    test_idx = np.flatnonzero(ok_win & (ends >= n_train))
    fit_data = TensorDataset(windows[fit_idx], targets[fit_idx])
    generator = torch.Generator().manual_seed(0)
    fit_loader = DataLoader(fit_data, params.batch_size, shuffle=True, generator=generator)
    val_loader = DataLoader(TensorDataset(windows[val_idx], targets[val_idx]), batch_size=1024)
    torch.manual_seed(0)
    sizes = ("hidden_dim", "num_lstm_layers", "dropout_percent")
    model = LSTMRegressor(x.shape[1], **{k: getattr(params, k) for k in sizes}).to(device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay
    )
    loss_fn = torch.nn.MSELoss()
    for _ in range(params.epochs):
        model.train()
        for xb, yb in fit_loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb)[:, 0], yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.gradient_clip_val)
            opt.step()
        model.eval()
        with torch.no_grad():
            val_loss = sum(
                float(loss_fn(model(xb.to(device))[:, 0], yb.to(device))) for xb, yb in val_loader
            )
        log.debug("reference val loss %.4f", val_loss)
    with torch.no_grad():  # the same outputs fit_predict returns: test and in-sample predictions
        model(windows[test_idx].to(device)).cpu()
        model(windows[train_idx].to(device)).cpu()
    return int(fit_idx.size) * params.epochs


def fit_samples(features: np.ndarray, labels: np.ndarray, params: LSTMParams, device: str) -> int:
    """One ``fit_predict`` on the first 75 % of the rows; returns the training samples seen."""
    n = int(features.shape[0] * 0.75)
    spec = FitSpec(slice(0, n), slice(n, features.shape[0]), params, accelerator=device)
    result = fit_predict(features, labels, spec, 0)
    return result.n_fit_samples * len(result.history)


def _threads_pinned(fn, *args):
    """``fn(*args)`` at the thread count of every fit (:data:`lstm.train.FIT_THREADS`)."""
    with fit_threads(FIT_THREADS):
        return fn(*args)


def _iterate(batches) -> int:
    return sum(xb.shape[0] for xb, _ in batches)


def bench_training(device: str = "cpu", *, seconds: float = 20) -> list[Row]:
    """Training samples/s of ``fit_predict`` vs the DataLoader loop (80 % of ``seconds``), and
    of batch iteration alone (20 %); ``device`` "cpu" or "cuda"."""
    features, labels = bench_features()
    n_train = int(features.shape[0] * 0.75)
    params, cuda = BENCH_PARAMS, device != "cpu"
    fit_ours, fit_ref = alternate(
        [
            lambda: fit_samples(features, labels, params, device),
            lambda: _threads_pinned(_reference_round, features, labels, n_train, params, device),
        ],
        seconds=seconds * 0.8,
        cuda=cuda,
    )
    # Data path alone: one epoch of batches, windows already built, no model.
    scaled = np.nan_to_num(RobustScaler.fit(features[:n_train]).transform(features))
    w, bs = params.window_size, params.batch_size
    rows_dev = torch.from_numpy(scaled).to(device)
    batches = WindowedBatches(
        rows_dev,
        torch.zeros(scaled.shape[0], device=device),
        torch.arange(w - 1, scaled.shape[0]),
        window=w,
        batch_size=bs,
        shuffle=True,
        generator=torch.Generator(device=rows_dev.device).manual_seed(0),
    )
    copied = torch.from_numpy(np.ascontiguousarray(window_view(scaled, w)))
    loader = DataLoader(TensorDataset(copied, torch.zeros(copied.shape[0])), bs, shuffle=True)
    it_ours, it_ref = alternate(
        [lambda: _iterate(batches), lambda: _iterate((x.to(device), y) for x, y in loader)],
        seconds=seconds * 0.2,
        cuda=cuda,
    )
    goal = FIT_GOAL[device]
    return [
        row(
            f"lstm.fit_predict train samples/s ({device}, {features.shape[1]} features, "
            f"W={w}, H={params.hidden_dim}x{params.num_lstm_layers}, batch {bs})",
            fit_ours,
            fit_ref,
            "samples/s",
            f">= {goal:g} on {device}",
            at_least=goal,
        ),
        row(
            f"lstm.data.WindowedBatches batch iteration samples/s ({device}, batch {bs})",
            it_ours,
            it_ref,
            "samples/s",
            "> 1 (index slices on the device vs DataLoader + copy)",
            at_least=1.0 + 1e-12,
        ),
    ]
