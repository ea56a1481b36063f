"""Fit the LSTM on one walk-forward fold and predict: the function the study calls per fold.

``fit_predict`` scales features with statistics of the training rows only, builds zero-copy
windows on the training device, trains with Lightning (early stopping on the time-ordered last
part of the training window), restores the best-validation weights and predicts both the
training rows (for in-sample quantile thresholds) and the prediction rows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers import Logger, TensorBoardLogger

from lstm.data import (
    RobustScaler,
    WindowedBatches,
    split_train_val,
    valid_window_ends,
    window_view,
)
from lstm.module import MONITOR, LSTMLightningModule
from lstm.params import LSTMParams

__all__ = [
    "FIT_THREADS",
    "EnsembleFit",
    "FitResult",
    "ensemble_mean",
    "fit_ensemble",
    "fit_predict",
    "predict",
    "predict_ensemble",
]

log = logging.getLogger(__name__)

PREDICT_BATCH = 1024  # windows per inference batch: bounds the gathered copy (W x F floats each)
_LIGHTNING_CHATTER = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)


@dataclass(frozen=True, eq=False)
class FitResult:
    """Outcome of :func:`fit_predict`.

    Attributes:
        predictions: (len(predict),) float64 predictions in label units, aligned with the rows of
            ``predict``; NaN where the window is incomplete or holds non-finite features.
        train_predictions: (len(train),) in-sample predictions aligned with the rows of ``train``
            (NaN likewise), from the restored best model.
        model: The fitted module (eval mode, on CPU, best-validation weights).
        scaler: Feature/label scaler fitted on the training rows only.
        history: One dict per epoch: ``epoch``, ``train_loss``, ``val_loss`` (scaled-label
            MSE) and ``lr``.
        params: The hyperparameters used.
        feature_names: Names of the feature columns, if given.
        n_fit_samples: Samples the optimiser saw per epoch.
        n_val_samples: Samples used for early stopping.
        best_epoch: Epoch (0-based) whose weights were kept.
        device: Device the model was trained on (e.g. "cpu", "cuda:0").
    """

    predictions: np.ndarray
    train_predictions: np.ndarray
    model: LSTMLightningModule
    scaler: RobustScaler
    history: list[dict[str, float]]
    params: LSTMParams
    feature_names: tuple[str, ...] | None
    n_fit_samples: int
    n_val_samples: int
    best_epoch: int
    device: str


class _EpochRecorder(Callback):
    """Per-epoch history (one host sync per epoch) and in-memory best-validation weights."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self.best_loss = float("inf")
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        val = float(metrics[MONITOR]) if MONITOR in metrics else float("nan")
        train = float(metrics["train_loss"]) if "train_loss" in metrics else float("nan")
        lr = float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else 0.0
        epoch = int(trainer.current_epoch)
        self.history.append({"epoch": epoch, "train_loss": train, "val_loss": val, "lr": lr})
        if np.isfinite(val) and val < self.best_loss:
            self.best_loss, self.best_epoch = val, epoch
            self.best_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def restore_best(self, pl_module: L.LightningModule) -> None:
        if self.best_state is not None:
            pl_module.load_state_dict(self.best_state)


def _rows(s: slice, n: int, name: str) -> range:
    if not isinstance(s, slice):
        raise TypeError(f"{name} must be a slice of rows, but got {type(s)=}.")
    if s.step not in (None, 1):
        raise ValueError(f"{name} must be a contiguous slice (step 1), but got {s=}.")
    r = range(*s.indices(n))
    if len(r) == 0:
        raise ValueError(f"{name} selects no rows of the {n} available, but got {s=}.")
    return r


def _resolve_accelerator(accelerator: str) -> str:
    if accelerator not in ("auto", "gpu"):
        return accelerator
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    if accelerator == "gpu":
        raise ValueError(f"No GPU (CUDA or MPS) is available, but got {accelerator=!r}.")
    return "cpu"


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Library use: hide Lightning's informational banners (device, tips) during a fit."""
    loggers = [logging.getLogger(name) for name in _LIGHTNING_CHATTER]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        with warnings.catch_warnings():
            # Lightning 2.6 on torch 2.13 warns about its own use of a deprecated pytree class.
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def _restore_determinism_flags() -> Iterator[None]:
    """Restore torch's global determinism flags after a fit.

    Inside, deterministic algorithms stay on (Lightning's ``deterministic=True``) but torch's
    ``fill_uninitialized_memory`` is off: filling every new tensor with NaN only serves to expose
    reads of uninitialised memory, makes no result more reproducible, and cost ~40 % of a small
    CPU fit (measured: 1.28 s vs 0.78 s, identical predictions).
    """
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill


def _make_logger(logger: bool | Logger | str | os.PathLike[str]) -> bool | Logger:
    if isinstance(logger, (bool, Logger)):
        return logger
    if isinstance(logger, (str, os.PathLike)):
        return TensorBoardLogger(save_dir=os.fspath(logger), name="lstm", default_hp_metric=False)
    raise TypeError(
        f"logger must be a bool, a Lightning Logger or a TensorBoard directory, but got "
        f"{type(logger)=}."
    )


@torch.no_grad()
def _predict_scaled(
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

    The module comes from :func:`fit_predict` or :func:`lstm.checkpoint.load_checkpoint`.

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
    r = _rows(rows, x.shape[0], "rows")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"predict window must be an integer >= 1, but got {window=!r}.")
    lo = max(0, r.start - window + 1)
    scaled = scaler.transform(x[lo : r.stop])
    # Local row j >= window - 1 has its whole window inside ``scaled``; rows before ``lo`` are
    # only cut off when ``lo == 0``, i.e. where the history really is too short.
    valid = valid_window_ends(np.isfinite(scaled).all(axis=1), window)
    device = next(module.parameters()).device
    tensor = torch.from_numpy(np.ascontiguousarray(scaled)).to(device)
    local = range(r.start - lo, r.stop - lo)
    with _fit_threads(FIT_THREADS):  # the thread count of the fit's own predictions
        return scaler.inverse_labels(_predict_scaled(module, tensor, valid, local, window))


FIT_THREADS = 1
"""torch intra-op threads of every fit and its predictions.

CPU kernels reduce in a different order with another thread count (measured: predictions move by
~5e-8 between 1 and 2 threads), and a quantile threshold can turn that into another trade. A fixed
count makes a model's weights the same in any worker process, whatever the number of workers, and
inside freqtrade; one thread per fit was also the faster setting for these small LSTMs on CPU.
"""


@contextlib.contextmanager
def _fit_threads(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, but got {seed=!r}.")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), but got {seed=!r}.")
    return int(seed)


@dataclass(frozen=True, eq=False)
class _Prepared:
    """What every member of one fit shares: scaling, windows, sample rows, device tensors.

    Row indices are local to ``lo`` (the first row any window of ``train`` or ``predict`` reads).
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

    @property
    def local_train(self) -> range:
        return range(self.train.start - self.lo, self.train.stop - self.lo)

    @property
    def local_predict(self) -> range:
        return range(self.predict.start - self.lo, self.predict.stop - self.lo)


def _prepare(
    features: np.ndarray,
    labels: np.ndarray,
    train: slice,
    predict: slice,
    params: LSTMParams,
    feature_names: Sequence[str] | None,
    label_horizon: int,
) -> _Prepared:
    """Check the inputs, fit the scaler on the training rows, pick the fit/validation samples."""
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
    names = None
    if feature_names is not None:
        names = tuple(str(n) for n in feature_names)
        if len(names) != x.shape[1]:
            raise ValueError(
                f"feature_names must name the {x.shape[1]} feature columns, but got {len(names)=}."
            )
    n, w = x.shape[0], params.window_size
    tr = _rows(train, n, "train")
    pr = _rows(predict, n, "predict")
    scaler = RobustScaler.fit(x[tr.start : tr.stop], y[tr.start : tr.stop])
    lo = max(0, min(tr.start, pr.start) - w + 1)
    hi = max(tr.stop, pr.stop)
    scaled = scaler.transform(x[lo:hi])
    valid = valid_window_ends(np.isfinite(scaled).all(axis=1), w)
    y_scaled = scaler.transform_labels(y[lo:hi])
    tr_local = np.arange(tr.start - lo, tr.stop - lo)
    usable = tr_local[valid[tr_local] & np.isfinite(y_scaled[tr_local])]
    fit_rows, val_rows = split_train_val(usable, params.val_fraction, gap=label_horizon)
    log.debug(
        "fit: %d usable of %d train rows (%d fit, %d val), %d predict rows",
        usable.size,
        len(tr),
        fit_rows.size,
        val_rows.size,
        len(pr),
    )
    return _Prepared(
        scaler, scaled, y_scaled, valid, lo, tr, pr, fit_rows, val_rows, x.shape[1], names
    )


def _make_trainer(
    params: LSTMParams,
    resolved: str,
    n_fit: int,
    callbacks: Sequence[Callback],
    logger: bool | Logger | str | os.PathLike[str],
) -> tuple[L.Trainer, _EpochRecorder]:
    precision = "bf16-mixed" if (params.precision == "bf16" and resolved == "cuda") else "32-true"
    recorder = _EpochRecorder()
    stopper = EarlyStopping(
        monitor=MONITOR, patience=params.early_stopping_patience, mode="min", check_finite=True
    )
    trainer = L.Trainer(
        accelerator=resolved,
        devices=1,
        precision=precision,
        max_epochs=params.epochs,
        gradient_clip_val=params.gradient_clip_val or None,
        callbacks=[stopper, recorder, *callbacks],
        logger=_make_logger(logger),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True if resolved == "cpu" else "warn",
        log_every_n_steps=max(1, min(50, n_fit // params.batch_size)),
    )
    return trainer, recorder


class _DeviceData:
    """The prepared rows and labels as tensors on one device (built once, shared by members)."""

    def __init__(self, prep: _Prepared) -> None:
        self.prep = prep
        self.device: torch.device | None = None
        self.rows: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self.device != device:
            self.rows = torch.from_numpy(np.ascontiguousarray(self.prep.scaled)).to(device)
            self.labels = torch.from_numpy(self.prep.y_scaled).to(device)
            self.device = device
        assert self.rows is not None and self.labels is not None
        return self.rows, self.labels


def _fit_member(
    data: _DeviceData,
    params: LSTMParams,
    seed: int,
    resolved: str,
    callbacks: Sequence[Callback],
    logger: bool | Logger | str | os.PathLike[str],
) -> FitResult:
    """Train one member on the shared prepared data and predict the training and predict rows."""
    prep = data.prep
    w = params.window_size
    with _restore_determinism_flags(), _quiet_lightning():
        L.seed_everything(seed, workers=False, verbose=False)
        trainer, recorder = _make_trainer(params, resolved, prep.fit_rows.size, callbacks, logger)
        device = trainer.strategy.root_device
        rows_dev, labels_dev = data.on(device)
        generator = torch.Generator(device=device).manual_seed(seed)
        train_batches = WindowedBatches(
            rows_dev,
            labels_dev,
            torch.from_numpy(prep.fit_rows),
            window=w,
            batch_size=params.batch_size,
            shuffle=True,
            generator=generator,
            drop_tiny_last=True,
        )
        val_batches = WindowedBatches(
            rows_dev,
            labels_dev,
            torch.from_numpy(prep.val_rows),
            window=w,
            batch_size=max(params.batch_size, 1024),
            shuffle=False,
        )
        module = LSTMLightningModule.from_params(prep.n_features, params)
        trainer.fit(module, train_dataloaders=train_batches, val_dataloaders=val_batches)
    recorder.restore_best(module)
    module.to(device)
    module.eval()
    inverse = prep.scaler.inverse_labels
    train_pred = inverse(_predict_scaled(module, rows_dev, prep.valid, prep.local_train, w))
    test_pred = inverse(_predict_scaled(module, rows_dev, prep.valid, prep.local_predict, w))
    module.to("cpu")
    return FitResult(
        predictions=test_pred,
        train_predictions=train_pred,
        model=module,
        scaler=prep.scaler,
        history=recorder.history,
        params=params,
        feature_names=prep.names,
        n_fit_samples=int(prep.fit_rows.size),
        n_val_samples=int(prep.val_rows.size),
        best_epoch=recorder.best_epoch,
        device=str(device),
    )


def ensemble_mean(member_predictions: Sequence[np.ndarray]) -> np.ndarray:
    """The ensemble's prediction: the mean of its members' (label-unit) predictions, row by row.

    One definition for the study and the FreqAI model, so both average in the same order (the
    members' order) and agree bit for bit. A row is NaN when any member is NaN there (all members
    share the windows, so they are NaN on the same rows). One member: its predictions unchanged.
    """
    if len(member_predictions) == 0:
        raise ValueError("an ensemble needs at least one member, but got none.")
    if len(member_predictions) == 1:
        return np.asarray(member_predictions[0], dtype=np.float64)
    return np.stack([np.asarray(p, dtype=np.float64) for p in member_predictions]).mean(axis=0)


@dataclass(frozen=True, eq=False)
class EnsembleFit:
    """Outcome of :func:`fit_ensemble`.

    Attributes:
        predictions: (len(predict),) member mean of the predictions (NaN as in :class:`FitResult`).
        train_predictions: (len(train),) member mean of the in-sample predictions; what quantile
            thresholds are computed from.
        members: each member's :class:`FitResult`, in seed order.
        scaler: the scaler every member shares (fitted on the training rows).
        seeds: the members' seeds.
    """

    predictions: np.ndarray
    train_predictions: np.ndarray
    members: tuple[FitResult, ...]
    scaler: RobustScaler
    seeds: tuple[int, ...]

    @property
    def device(self) -> str:
        return self.members[0].device


def fit_ensemble(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    train: slice,
    predict: slice,
    params: LSTMParams,
    seeds: Sequence[int],
    accelerator: str = "auto",
    callbacks: Sequence[Callback] = (),
    logger: bool | Logger | str | os.PathLike[str] = False,
    feature_names: Sequence[str] | None = None,
    label_horizon: int = 0,
    threads: int = FIT_THREADS,
) -> EnsembleFit:
    """Train one member per seed on the same rows; predict with their mean.

    The members share everything but their seed: the scaler (training rows only), the windows,
    the fit/validation split and the tensors on the device. Member ``k`` is exactly the model
    :func:`fit_predict` trains with ``seeds[k]`` (same weights, same predictions); members train
    one after another (on CPU, ``nn.LSTM``'s oneDNN kernels one after another were measured faster
    than a batched hand-written LSTM over the members).

    Args:
        seeds: one seed per member (see :func:`lstm.seeds.model_seed`), each in ``[0, 2**32)``.
        threads: torch intra-op threads during the fit and its predictions (:data:`FIT_THREADS`).
        Other arguments: as for :func:`fit_predict`.

    Returns:
        :class:`EnsembleFit`.

    Raises:
        TypeError / ValueError: as :func:`fit_predict`; an empty ``seeds``.
    """
    checked = tuple(_check_seed(s) for s in seeds)
    if not checked:
        raise ValueError(f"seeds must hold one seed per ensemble member, but got {seeds=!r}.")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, but got {threads=!r}.")
    prep = _prepare(features, labels, train, predict, params, feature_names, label_horizon)
    resolved = _resolve_accelerator(accelerator)
    data = _DeviceData(prep)
    with _fit_threads(threads):
        members = tuple(
            _fit_member(data, params, seed, resolved, callbacks, logger) for seed in checked
        )
    return EnsembleFit(
        predictions=ensemble_mean([m.predictions for m in members]),
        train_predictions=ensemble_mean([m.train_predictions for m in members]),
        members=members,
        scaler=prep.scaler,
        seeds=checked,
    )


def predict_ensemble(
    modules: Sequence[LSTMLightningModule],
    scaler: RobustScaler,
    features: np.ndarray,
    rows: slice,
    window: int,
    threads: int = FIT_THREADS,
) -> np.ndarray:
    """:func:`predict` with every member, then :func:`ensemble_mean` (the study's prediction)."""
    with _fit_threads(threads):
        return ensemble_mean([predict(m, scaler, features, rows, window) for m in modules])


def fit_predict(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    train: slice,
    predict: slice,
    params: LSTMParams,
    seed: int,
    accelerator: str = "auto",
    callbacks: Sequence[Callback] = (),
    logger: bool | Logger | str | os.PathLike[str] = False,
    feature_names: Sequence[str] | None = None,
    label_horizon: int = 0,
    threads: int = FIT_THREADS,
) -> FitResult:
    """Train on ``train`` rows, predict ``predict`` rows (and the training rows in-sample).

    Args:
        features: (n, F) features of one pair, one row per candle, time ascending.
        labels: (n,) labels; ``labels[i]`` is the target for the window ending at row ``i``.
        train: Contiguous training rows. Rows whose window or label is non-finite are dropped.
            The last ``params.val_fraction`` of the usable training samples (time order) is the
            early-stopping validation set; only the part before it is shuffled.
        predict: Contiguous rows to predict (e.g. the fold's test window). Windows may reach
            rows before ``predict.start`` (past data).
        params: Hyperparameters.
        seed: Seed of weights, dropout and batch order; CPU fits are bitwise reproducible.
        accelerator: "auto" (cuda, then mps, then cpu), "gpu" (cuda, then mps), or another
            Lightning accelerator name ("cpu", "cuda", "mps").
        callbacks: Extra Lightning callbacks (e.g. a pruning callback).
        logger: False (none), True (Lightning's default), a Lightning ``Logger``, or a directory
            for a TensorBoard logger.
        feature_names: Optional names of the F feature columns (kept for checkpoints).
        label_horizon: h when ``labels[i] = T[i + h]``: the last h fit samples before the
            validation part are dropped so no fit label overlaps the validation period.
        threads: torch intra-op threads during the fit (:data:`FIT_THREADS`; results are bitwise
            reproducible only at the same count).

    Returns:
        :class:`FitResult` (one member of :func:`fit_ensemble`).

    Raises:
        TypeError / ValueError: Bad shapes, slices, params or names; too few usable training
        samples (the message names the counts).
    """
    _check_seed(seed)
    return fit_ensemble(
        features,
        labels,
        train=train,
        predict=predict,
        params=params,
        seeds=(seed,),
        accelerator=accelerator,
        callbacks=callbacks,
        logger=logger,
        feature_names=feature_names,
        label_horizon=label_horizon,
        threads=threads,
    ).members[0]
