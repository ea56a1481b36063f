"""Lightning LSTM regressor: params, model, windowed in-memory data, training, checkpoints.

Names are imported lazily so ``import lstm`` stays cheap (torch/Lightning load on first use).
"""

from base.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "LSTMParams": "lstm.params",
        "LSTMRegressor": "lstm.model",
        "LSTMLightningModule": "lstm.module",
        "RobustScaler": "lstm.data",
        "WindowedBatches": "lstm.data",
        "window_view": "lstm.data",
        "FitOptions": "lstm.fitspec",
        "FitSpec": "lstm.fitspec",
        "FitPipeline": "lstm.pipeline",
        "FitResult": "lstm.train",
        "fit_predict": "lstm.train",
        "predict": "lstm.train",
        "save_checkpoint": "lstm.checkpoint",
        "load_checkpoint": "lstm.checkpoint",
        "model_seed": "lstm.seeds",
        "recency_weights": "lstm.pipeline",
        "member_range": "lstm.seeds",
    },
)
