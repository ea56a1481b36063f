"""Fit the LSTM on one walk-forward fold and predict: the functions the study calls per fold.

``fit_predict`` (one model) and ``fit_ensemble`` (one member per seed) scale features with
statistics of the training rows only (:mod:`lstm.prepare`), build zero-copy windows on the training
device, train with Lightning (early stopping on the time-ordered last part of the training
window), restore the best-validation weights and predict both the training rows (for in-sample
quantile thresholds) and the prediction rows (:mod:`lstm.inference`).

:func:`record_fit_timings` is the explicit timing hook: while it is open, every fit in the process
appends a :class:`FitTiming` (its wall time and the time inside Lightning's ``Trainer.fit``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch

from base.checks import check_int
from lstm.data import RobustScaler, WindowedBatches
from lstm.fitspec import FIT_THREADS, FitOptions, FitSpec
from lstm.inference import fit_threads, predict, predict_scaled
from lstm.module import LSTMLightningModule
from lstm.params import LSTMParams
from lstm.pipeline import FitPipeline, training_noise
from lstm.prepare import DeviceData, check_seed, prepare
from lstm.trainer import (
    make_trainer,
    quiet_lightning,
    resolve_accelerator,
    restore_determinism_flags,
)

__all__ = [
    "FIT_THREADS",
    "EnsembleFit",
    "FitOptions",
    "FitPipeline",
    "FitResult",
    "FitSpec",
    "FitTiming",
    "ensemble_mean",
    "fit_ensemble",
    "fit_predict",
    "predict",
    "predict_ensemble",
    "record_fit_timings",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitTiming:
    """Wall times of one :func:`fit_predict` or :func:`fit_ensemble` call.

    Attributes:
        start: ``time.perf_counter()`` when the call started (s).
        end: ``time.perf_counter()`` when it returned (s).
        trainer_seconds: time inside Lightning's ``Trainer.fit``, summed over the members (s).
        members: models trained.
    """

    start: float
    end: float
    trainer_seconds: float
    members: int

    @property
    def seconds(self) -> float:
        """Wall time of the whole call (s)."""
        return self.end - self.start


_TIMING_SINKS: list[list[FitTiming]] = []


@contextlib.contextmanager
def record_fit_timings() -> Iterator[list[FitTiming]]:
    """Collect a :class:`FitTiming` of every fit in this process while the context is open.

    A measurement hook (``make bench`` reads the time a trial spends training through it): fits
    are timed whether or not a recorder is open, and recording changes nothing they compute.
    Failed fits are not recorded. Recorders may nest; each receives every fit.

    Yields:
        The list the fits append to, in call order.
    """
    sink: list[FitTiming] = []
    _TIMING_SINKS.append(sink)
    try:
        yield sink
    finally:
        _TIMING_SINKS.remove(sink)


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
        trainer_seconds: Wall time inside Lightning's ``Trainer.fit`` (s).
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
    trainer_seconds: float


def _noisy_rows(data: DeviceData, rows: torch.Tensor, seed: int) -> torch.Tensor:
    """``rows`` with FreqAI's training noise of this member added to the training rows (a copy),
    or ``rows`` itself when the fit has no noise."""
    prep = data.prep
    if prep.noise_amplitude is None:
        return rows
    train = prep.local_train
    noise = training_noise(
        len(train), prep.noise_amplitude, prep.pipeline.noise_standard_deviation, seed
    )
    noisy = rows.clone()
    noisy[train.start : train.stop] += torch.from_numpy(noise).to(rows.device)
    return noisy


def _fit_member(
    data: DeviceData,
    params: LSTMParams,
    seed: int,
    resolved: str,
    options: FitOptions,
) -> FitResult:
    """Train one member on the shared prepared data and predict the training and predict rows."""
    prep = data.prep
    w = params.window_size
    with restore_determinism_flags(), quiet_lightning():
        L.seed_everything(seed, workers=False, verbose=False)
        trainer, recorder = make_trainer(
            params, resolved, prep.fit_rows.size, options.callbacks, options.logger
        )
        device = trainer.strategy.root_device
        rows_dev, labels_dev = data.on(device)
        generator = torch.Generator(device=device).manual_seed(seed)
        train_batches = WindowedBatches(
            _noisy_rows(data, rows_dev, seed),
            labels_dev,
            torch.from_numpy(prep.fit_rows),
            window=w,
            batch_size=params.batch_size,
            shuffle=True,
            generator=generator,
            drop_tiny_last=True,
            weights=data.weights,
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
        t0 = time.perf_counter()
        trainer.fit(module, train_dataloaders=train_batches, val_dataloaders=val_batches)
        trainer_seconds = time.perf_counter() - t0
    recorder.restore_best(module)
    module.to(device)
    module.eval()
    inverse = prep.scaler.inverse_labels
    train_pred = inverse(predict_scaled(module, rows_dev, prep.valid, prep.local_train, w))
    test_pred = inverse(predict_scaled(module, rows_dev, prep.valid, prep.local_predict, w))
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
        trainer_seconds=trainer_seconds,
    )


def _fit_members(
    features: np.ndarray, labels: np.ndarray, spec: FitSpec, seeds: tuple[int, ...]
) -> tuple[FitResult, ...]:
    """Prepare once, train one member per seed in order, record the call's :class:`FitTiming`."""
    start = time.perf_counter()
    if not isinstance(spec, FitSpec):
        raise TypeError(f"spec must be a FitSpec, but got {type(spec)=}.")
    threads = check_int("threads", spec.options.threads, 1)
    if not isinstance(spec.pipeline, FitPipeline):
        raise TypeError(f"pipeline must be a FitPipeline, but got {type(spec.pipeline)=}.")
    prep = prepare(features, labels, spec)
    resolved = resolve_accelerator(spec.accelerator)
    data = DeviceData(prep)
    with fit_threads(threads):
        members = tuple(
            _fit_member(data, spec.params, seed, resolved, spec.options) for seed in seeds
        )
    if _TIMING_SINKS:
        timing = FitTiming(
            start, time.perf_counter(), sum(m.trainer_seconds for m in members), len(members)
        )
        for sink in _TIMING_SINKS:
            sink.append(timing)
    return members


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
    features: np.ndarray, labels: np.ndarray, spec: FitSpec, seeds: Sequence[int]
) -> EnsembleFit:
    """Train one member per seed on the same rows; predict with their mean.

    The members share everything but their seed: the scaler (training rows only), the windows,
    the fit/validation split and the tensors on the device. Member ``k`` is exactly the model
    :func:`fit_predict` trains with ``seeds[k]`` (same weights, same predictions); members train
    one after another (on CPU, ``nn.LSTM``'s oneDNN kernels one after another were measured faster
    than a batched hand-written LSTM over the members).

    Args:
        features, labels, spec: as for :func:`fit_predict`.
        seeds: one seed per member (see :func:`lstm.seeds.model_seed`), each in ``[0, 2**32)``.

    Returns:
        :class:`EnsembleFit`.

    Raises:
        TypeError / ValueError: as :func:`fit_predict`; an empty ``seeds``.
    """
    checked = tuple(check_seed(s) for s in seeds)
    if not checked:
        raise ValueError(f"seeds must hold one seed per ensemble member, but got {seeds=!r}.")
    members = _fit_members(features, labels, spec, checked)
    return EnsembleFit(
        predictions=ensemble_mean([m.predictions for m in members]),
        train_predictions=ensemble_mean([m.train_predictions for m in members]),
        members=members,
        scaler=members[0].scaler,
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
    with fit_threads(threads):
        return ensemble_mean([predict(m, scaler, features, rows, window) for m in modules])


def fit_predict(features: np.ndarray, labels: np.ndarray, spec: FitSpec, seed: int) -> FitResult:
    """Train on ``spec.train`` rows, predict ``spec.predict`` rows (and the training rows
    in-sample).

    Args:
        features: (n, F) features of one pair, one row per candle, time ascending.
        labels: (n,) labels; ``labels[i]`` is the target for the window ending at row ``i``.
        spec: the rows, hyperparameters, label horizon, names, device, FreqAI pipeline and run
            options of the fit (:class:`~lstm.fitspec.FitSpec`).
        seed: seed of weights, dropout, batch order and training noise; CPU fits are bitwise
            reproducible.

    Returns:
        :class:`FitResult` (one member of :func:`fit_ensemble`).

    Raises:
        TypeError / ValueError: Bad shapes, slices, params or names; too few usable training
        samples (the message names the counts).
    """
    (member,) = _fit_members(features, labels, spec, (check_seed(seed),))
    return member
