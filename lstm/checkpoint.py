"""Self-describing LSTM checkpoints that load with ``torch.load(..., weights_only=True)``.

A checkpoint is one ``torch.save`` file holding only plain containers, strings, numbers and
tensors: the format tag, the package version, the hyperparameters, the weights, the scaler
statistics, the feature names and caller-supplied ``extra`` metadata. No pickled classes, so
loading never executes code from the file.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from base.errors import InputError
from lstm.data import RobustScaler
from lstm.module import LSTMLightningModule
from lstm.params import LSTMParams

log = logging.getLogger(__name__)

FORMAT = "lstm_optuna.lstm/1"
_KEYS = ("format", "version", "hyperparameters", "state_dict", "scaler", "feature_names", "extra")


def package_version() -> str:
    """Installed ``lstm_optuna`` version, or "0+unknown" when the package is not installed."""
    try:
        return importlib.metadata.version("lstm_optuna")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _plain(value: Any, where: str) -> Any:
    """Convert ``value`` to types the weights-only unpickler accepts, or raise naming ``where``."""
    if isinstance(value, np.generic):  # before the builtins: np.float64 subclasses float
        return _plain(value.item(), where)
    if value is None or isinstance(value, (bool, int, float, str)):
        return type(value)(value) if value is not None else None
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"Checkpoint {where} keys must be str, but got {key=!r}.")
            out[key] = _plain(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"Checkpoint {where} must hold only None/bool/int/float/str, lists, str-keyed dicts, "
        f"numpy arrays or tensors, but got {type(value)=}."
    )


def save_checkpoint(
    result_or_module: Any,
    scaler: RobustScaler | None,
    path: str | os.PathLike[str],
    *,
    feature_names: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint file (parent directories are created; the write is atomic).

    Args:
        result_or_module: A :class:`lstm.train.FitResult` or an :class:`LSTMLightningModule`.
        scaler: The fold's scaler; may be None when a FitResult is given (its scaler is used).
        path: Destination file (conventionally ``*.pt``).
        feature_names: Names of the input features (defaults to the FitResult's); the count
            must equal the model's input_dim.
        extra: Additional metadata (str keys; None/bool/int/float/str, lists, dicts, arrays).

    Returns:
        The path written.

    Raises:
        TypeError: Unsupported object, missing scaler, or ``extra`` holding other types.
        ValueError: Feature names or scaler that do not match the model's input_dim.
    """
    if isinstance(result_or_module, LSTMLightningModule):
        module = result_or_module
    else:
        module = getattr(result_or_module, "model", None)
        if not isinstance(module, LSTMLightningModule):
            raise TypeError(
                "save_checkpoint expects a FitResult or an LSTMLightningModule, but got "
                f"{type(result_or_module)=}."
            )
        scaler = scaler if scaler is not None else getattr(result_or_module, "scaler", None)
        if feature_names is None:
            feature_names = getattr(result_or_module, "feature_names", None)
    if not isinstance(scaler, RobustScaler):
        raise TypeError(f"save_checkpoint needs the fold's RobustScaler, but got {type(scaler)=}.")
    if scaler.n_features != module.input_dim:
        raise ValueError(
            f"Scaler has {scaler.n_features} features but the model expects {module.input_dim=}."
        )
    names = [str(n) for n in feature_names] if feature_names is not None else []
    if feature_names is not None and len(names) != module.input_dim:
        raise ValueError(
            f"feature_names must name the model's {module.input_dim} inputs, but got {len(names)=}."
        )
    payload = {
        "format": FORMAT,
        "version": package_version(),
        "hyperparameters": {
            "input_dim": module.input_dim,
            "output_dim": module.output_dim,
            **module.params.to_dict(),
        },
        "state_dict": {k: v.detach().cpu().clone() for k, v in module.state_dict().items()},
        "scaler": scaler.to_dict(),
        "feature_names": names,
        "extra": _plain(dict(extra or {}), "extra"),
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, target)
    log.debug("saved LSTM checkpoint %s (%d features)", target, module.input_dim)
    return target


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> tuple[LSTMLightningModule, RobustScaler, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint` (weights-only unpickling).

    Returns:
        ``(module, scaler, meta)``: the module in eval mode on ``map_location``, the scaler,
        and ``meta`` with ``params`` (LSTMParams), ``input_dim``, ``output_dim``,
        ``feature_names`` (list[str], empty when none were saved), ``version``, ``format``
        and ``extra``.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a checkpoint of this format (the missing keys / found format are named).
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(f"No LSTM checkpoint at {str(target)!r}.")
    payload = torch.load(target, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or any(k not in payload for k in _KEYS):
        found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise InputError(
            f"{str(target)!r} is not an LSTM checkpoint: expected keys {list(_KEYS)}, but got "
            f"{found}."
        )
    if payload["format"] != FORMAT:
        raise InputError(
            f"{str(target)!r} has checkpoint format {payload['format']!r}; expected {FORMAT!r}."
        )
    hp = dict(payload["hyperparameters"])
    input_dim, output_dim = int(hp.pop("input_dim")), int(hp.pop("output_dim"))
    params = LSTMParams.from_dict(hp)
    module = LSTMLightningModule.from_params(input_dim, params, output_dim=output_dim)
    module.load_state_dict(payload["state_dict"], strict=True)
    module.to(map_location)
    module.eval()
    scaler = RobustScaler.from_dict(payload["scaler"])
    meta = {
        "format": payload["format"],
        "version": payload["version"],
        "params": params,
        "input_dim": input_dim,
        "output_dim": output_dim,
        "feature_names": list(payload["feature_names"]),
        "extra": payload["extra"],
    }
    return module, scaler, meta
