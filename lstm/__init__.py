"""Lightning LSTM regressor: params, model, windowed in-memory data, training, checkpoints.

Names are imported lazily so ``import lstm`` stays cheap (torch/Lightning load on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LSTMParams": "lstm.params",
    "LSTMRegressor": "lstm.model",
    "LSTMLightningModule": "lstm.module",
    "RobustScaler": "lstm.data",
    "WindowedBatches": "lstm.data",
    "window_view": "lstm.data",
    "FitOptions": "lstm.train",
    "FitPipeline": "lstm.pipeline",
    "FitResult": "lstm.train",
    "fit_predict": "lstm.train",
    "predict": "lstm.train",
    "save_checkpoint": "lstm.checkpoint",
    "load_checkpoint": "lstm.checkpoint",
    "model_seed": "lstm.seeds",
    "recency_weights": "lstm.pipeline",
    "member_range": "lstm.seeds",
}

__all__ = [
    "FitOptions",
    "FitPipeline",
    "FitResult",
    "LSTMLightningModule",
    "LSTMParams",
    "LSTMRegressor",
    "RobustScaler",
    "WindowedBatches",
    "fit_predict",
    "load_checkpoint",
    "member_range",
    "model_seed",
    "predict",
    "recency_weights",
    "save_checkpoint",
    "window_view",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lstm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
