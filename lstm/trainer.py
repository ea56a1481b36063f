"""The Lightning side of one fit: the trainer, its epoch recorder, device and global flags.

:func:`make_trainer` builds the ``Trainer`` of one member (early stopping, no checkpoint files,
deterministic on CPU); :class:`EpochRecorder` keeps the per-epoch history and the best-validation
weights in memory. :mod:`lstm.train` uses them inside :func:`quiet_lightning` and
:func:`restore_determinism_flags`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.loggers import Logger, TensorBoardLogger

from base.errors import InputError
from lstm.module import MONITOR
from lstm.params import LSTMParams

__all__ = [
    "EpochRecorder",
    "LoggerSpec",
    "make_trainer",
    "quiet_lightning",
    "resolve_accelerator",
    "restore_determinism_flags",
]

_LIGHTNING_CHATTER = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.trainer.connectors.signal_connector",  # "Received SIGTERM" (the caller's)
)

LoggerSpec = bool | Logger | str | os.PathLike[str]
"""False (none), True (Lightning's default), a Lightning ``Logger`` or a TensorBoard directory."""


class EpochRecorder(Callback):
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


def resolve_accelerator(accelerator: str) -> str:
    """The Lightning accelerator name for ``accelerator`` ("auto" and "gpu" resolved)."""
    if accelerator not in ("auto", "gpu"):
        return accelerator
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    if accelerator == "gpu":
        raise InputError(f"No GPU (CUDA or MPS) is available, but got {accelerator=!r}.")
    return "cpu"


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
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
def restore_determinism_flags() -> Iterator[None]:
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


def make_logger(logger: LoggerSpec) -> bool | Logger:
    if isinstance(logger, (bool, Logger)):
        return logger
    if isinstance(logger, (str, os.PathLike)):
        return TensorBoardLogger(save_dir=os.fspath(logger), name="lstm", default_hp_metric=False)
    raise TypeError(
        f"logger must be a bool, a Lightning Logger or a TensorBoard directory, but got "
        f"{type(logger)=}."
    )


def make_trainer(
    params: LSTMParams,
    resolved: str,
    n_fit: int,
    callbacks: Sequence[Callback],
    logger: LoggerSpec,
) -> tuple[L.Trainer, EpochRecorder]:
    precision = "bf16-mixed" if (params.precision == "bf16" and resolved == "cuda") else "32-true"
    recorder = EpochRecorder()
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
        logger=make_logger(logger),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True if resolved == "cpu" else "warn",
        log_every_n_steps=max(1, min(50, n_fit // params.batch_size)),
    )
    return trainer, recorder
