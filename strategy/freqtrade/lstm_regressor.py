"""FreqAI model that trains and predicts with this project's LSTM (:mod:`lstm`).

freqtrade loads :class:`LstmOptunaRegressor` from this folder (``--freqaimodel LstmOptunaRegressor
--freqaimodel-path <repo>/strategy/freqtrade``). Compared with FreqAI's stock PyTorch models:

* **Training** is :func:`lstm.train.fit_ensemble` (``ensemble_size`` members, mean prediction)
  on the training window exactly as the study fits a fold: the rows stay in time order and
  contiguous (FreqAI's own NaN filter would drop rows and glue windows across the holes), scaling
  statistics come from the training rows only, early stopping uses the time-ordered last part of the
  window. Hyperparameters are ``freqai.model_training_parameters`` (:class:`lstm.params.LSTMParams`
  fields, validated).
* **Prediction is windowed**: row ``i`` is predicted from rows ``i-W+1 .. i`` with
  :func:`lstm.train.predict` (FreqAI's ``BasePyTorchRegressor.predict`` feeds a 2-D frame, i.e. a
  window of 1), whose fixed-size batches make a prediction independent of the candles that
  follow it. The first ``W-1`` rows of a backtest window take their history from the last
  rows of the training window (kept with the model); elsewhere rows without a full window are NaN
  with ``do_predict = 0``. Live, FreqAI predicts the last ``conv_width`` rows: the exported
  config sets ``conv_width = window_size``.
* **Thresholds per train**: the label statistics FreqAI exposes as ``&-target_mean`` /
  ``&-target_std`` are the mean and population std of the finite training labels (what
  :func:`strategy.signals.resolve_thresholds` uses in ``zscore`` mode), and
  ``resolve_thresholds`` itself runs on the in-sample predictions for the strategy's current
  threshold parameters; the result reaches the strategy through ``extra_returns_per_train``
  (see :mod:`strategy.freqtrade.rules`).
* **Checkpoints** are :func:`lstm.checkpoint.save_checkpoint` files, loadable with
  ``torch.load(..., weights_only=True)`` (see :mod:`strategy.freqtrade.trained`).
* **FreqAI's data pipeline** (:mod:`strategy.pipeline`): ``feature_parameters.DI_threshold``,
  ``weight_factor``, ``noise_standard_deviation`` and ``buffer_train_data_candles`` are applied
  by :func:`strategy.pipeline.fit_window`, the fit of the study's folds: weights and noise in the
  LSTM's fit, the dissimilarity index fitted on the fitted rows and applied in :meth:`predict`
  (``do_predict = 0`` and ``DI_values``). The buffer is cut here, in :meth:`fit_rows` (FreqAI's
  own cut is turned off), so that the candles FreqAI would cut before the backtest window still
  give its first predictions their history. ``include_corr_pairlist`` is FreqAI's own: it builds
  the correlated pairs' features with the strategy's hooks. PCA, SVM and DBSCAN outlier removal
  and FreqAI's split shuffling are not applied and are refused
  (:data:`UNSUPPORTED_FEATURE_PARAMETERS`).

* **The study's train window**: FreqAI trains on the ``train_period_days`` right before each
  backtest window, with no gap. This model drops the last ``lstm_optuna.purge_candles`` rows of
  that window and keeps the ``lstm_optuna.train_days`` before them: exactly the rows the study's
  fold (or holdout window) fitted (:meth:`LstmOptunaRegressor.fit_rows`). The first ``W-1``
  predictions of the backtest window take their history from the real candles right before it
  (the end of FreqAI's training frame).

Project-specific settings are read from the config's ``lstm_optuna`` block: ``seed`` (the study's
seed; each model's seed is :func:`lstm.seeds.model_seed` of it, the pair and the open time of the
last row fitted, member ``0..ensemble_size-1``: the study's rule, so a rerun, or freqtrade's
lookahead analysis re-running a window, trains the same model on CPU), ``ensemble_size``
(default 1), ``train_days`` and ``purge_candles`` (see above; absent: the whole window, no purge)
and ``accelerator`` (``auto``, ``cpu``, ``cuda``...).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

try:  # freqtrade imports this file as a top-level module: make the project importable
    import strategy.freqtrade  # noqa: F401
except ImportError:  # pragma: no cover - only when the project is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import pandas as pd
import torch
from freqtrade.freqai.base_models.BasePyTorchRegressor import BasePyTorchRegressor
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen
from freqtrade.freqai.torch.PyTorchDataConvertor import (
    DefaultPyTorchDataConvertor,
    PyTorchDataConvertor,
)

from base.errors import ConfigError, DataError
from lstm.fitspec import FitSpec
from lstm.params import LSTMParams
from lstm.seeds import member_range, model_seed
from strategy.freqtrade.rules import LABEL, SETTINGS_KEY, extra_returns, label_horizon
from strategy.freqtrade.trained import (
    CheckpointDataDrawer,
    TrainedLSTM,
    feature_matrix,
)
from strategy.pipeline import DataPipeline, fit_window
from strategy.signals import SignalParams, label_stats, resolve_thresholds

logger = logging.getLogger(__name__)

UNSUPPORTED_FEATURE_PARAMETERS = (
    "principal_component_analysis",
    "use_SVM_to_remove_outliers",
    "use_DBSCAN_to_remove_outliers",
    "shuffle_after_split",
    "reverse_train_test_order",
)
"""FreqAI ``feature_parameters`` this model does not apply (it trains on the time-ordered window
with its own scaler and split): refused when set."""


class LstmOptunaRegressor(BasePyTorchRegressor):
    """FreqAI regressor backed by :func:`lstm.train.fit_ensemble` and
    :func:`lstm.train.predict_ensemble`.

    Config: ``freqai.model_training_parameters`` = :class:`~lstm.params.LSTMParams` fields;
    ``freqai.feature_parameters.label_period_candles`` = the label horizon ``h`` (early stopping
    drops the last ``h`` fit samples before the validation part, as in the study);
    ``freqai.conv_width`` >= ``window_size`` (live inference window); optional
    ``lstm_optuna.seed`` (default 0) and ``lstm_optuna.accelerator`` (default ``auto``).

    Raises:
        ValueError: bad ``model_training_parameters`` (the field and value are named),
            ``conv_width`` shorter than ``window_size``, a bad FreqAI pipeline key
            (:class:`strategy.pipeline.DataPipeline`), or FreqAI options this model does not
            apply (:data:`UNSUPPORTED_FEATURE_PARAMETERS`).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lstm_params = LSTMParams.from_dict(self.model_training_parameters)
        conv_width = int(self.freqai_info.get("conv_width", 1))
        if conv_width < self.lstm_params.window_size:
            raise ConfigError(
                "freqai.conv_width must be >= model_training_parameters.window_size (live "
                f"predictions need a whole window), but got conv_width={conv_width} with "
                f"window_size={self.lstm_params.window_size}."
            )
        fp = self.freqai_info.setdefault("feature_parameters", {})
        unsupported = {k: fp[k] for k in UNSUPPORTED_FEATURE_PARAMETERS if fp.get(k)}
        if unsupported:
            raise ConfigError(
                "LstmOptunaRegressor does not apply FreqAI's PCA, SVM or DBSCAN outlier removal "
                "or its train/test shuffling (it applies DI_threshold, weight_factor, "
                "noise_standard_deviation, include_corr_pairlist and buffer_train_data_candles); "
                f"set them to 0/false, but got {unsupported}."
            )
        try:
            self.pipeline = DataPipeline.from_feature_parameters(fp)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"freqai.feature_parameters: {exc}") from None
        # The buffer is cut in fit_rows; FreqAI's own cut would drop the candles right before
        # each backtest window, which its first predictions take their history from.
        fp["buffer_train_data_candles"] = 0
        self.train_period_days = float(self.freqai_info.get("train_period_days", 0))
        self.label_horizon = label_horizon(self.freqai_info)
        settings = self.config.get(SETTINGS_KEY, {})
        self.base_seed = int(settings.get("seed", 0))
        self.accelerator = str(settings.get("accelerator", "auto"))
        self.members = member_range(int(settings.get("ensemble_size", 1)))
        self.purge_candles = int(settings.get("purge_candles", 0))
        if self.purge_candles < 0:
            raise ConfigError(
                f"{SETTINGS_KEY}.purge_candles must be an integer >= 0, but got "
                f"purge_candles={settings.get('purge_candles')!r}."
            )
        train_days = settings.get("train_days")
        self.train_days = None if train_days is None else float(train_days)
        if self.train_days is not None and not self.train_days > 0:
            raise ConfigError(
                f"{SETTINGS_KEY}.train_days must be a positive number of days, but got "
                f"train_days={train_days!r}."
            )
        self.signal_params: SignalParams | None = None
        # Same drawer state as FreqAI's, with weights-only checkpoint loading.
        self.dd = CheckpointDataDrawer(Path(self.full_path), self.config)
        self.dd.model_type = "pytorch"
        self.dd.current_candle = self.current_candle

    @property
    def data_convertor(self) -> PyTorchDataConvertor:
        """Required by FreqAI's base class; unused (features never go through a DataFrame->tensor
        conversion here: :mod:`lstm` builds its windows itself)."""
        return DefaultPyTorchDataConvertor(target_tensor_type=torch.float)

    def start(self, dataframe: pd.DataFrame, metadata: dict, strategy: Any) -> pd.DataFrame:
        """Read the strategy's current threshold parameters, then run FreqAI as usual."""
        getter = getattr(strategy, "signal_params", None)
        self.signal_params = getter() if callable(getter) else None
        return super().start(dataframe, metadata, strategy)

    def fit(self, data_dictionary: dict[str, Any], dk: FreqaiDataKitchen, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "LstmOptunaRegressor trains in train() on the unfiltered, time-ordered window; "
            "fit() on FreqAI's filtered data dictionary is not used."
        )

    def train(
        self, unfiltered_df: pd.DataFrame, pair: str, dk: FreqaiDataKitchen, **kwargs: Any
    ) -> Any:
        """Fit the LSTM on one training window (rows in time order, NaN handled by :mod:`lstm`).

        Returns:
            :class:`TrainedLSTM` (FreqAI saves it with ``.save`` and hands it to :meth:`predict`).

        Raises:
            ValueError: not exactly one label column, or too few usable training rows.
        """
        if len(dk.label_list) != 1:
            raise ConfigError(
                f"LstmOptunaRegressor predicts one label, but the strategy set {dk.label_list}."
            )
        label = dk.label_list[0]
        names = list(dk.training_features_list)
        # float32 like the study's feature matrix: the values and the dtype the scaler computes
        # in (float64 rows would be scaled in float64 and round differently from the study's)
        x_all = feature_matrix(unfiltered_df, names).astype(np.float32)
        y_all = unfiltered_df[label].to_numpy(dtype=np.float64, copy=True)
        dates = pd.DatetimeIndex(unfiltered_df["date"])
        step = pd.Timedelta(seconds=self.base_tf_seconds)
        fit = self.fit_rows(dates, step)
        x, y = x_all[fit], y_all[fit]
        n = x.shape[0]
        if n == 0:
            raise DataError(
                f"no training rows left for {pair} after dropping the purge gap of "
                f"{self.purge_candles} candles from the window {dates[0]} .. {dates[-1]}."
            )
        seeds = [model_seed(self.base_seed, pair, dates[fit.stop - 1], m) for m in self.members]
        logger.info(
            "training LSTM for %s on %d rows (%s .. %s), %d features, seed %d",
            pair,
            n,
            dates[fit.start],
            dates[fit.stop - 1],
            len(names),
            seeds[0],
        )
        spec = FitSpec(
            train=slice(0, n),
            predict=slice(n - 1, n),
            params=self.lstm_params,
            label_horizon=self.label_horizon,
            feature_names=names,
            accelerator=self.accelerator,
            pipeline=self.pipeline.fit,
        )
        window = fit_window(x, y, spec, seeds, DI_threshold=self.pipeline.DI_threshold)
        result = window.ensemble
        mean, std = label_stats(y)
        dk.data["labels_mean"] = {label: mean}
        dk.data["labels_std"] = {label: std}
        thresholds = None
        if self.signal_params is not None:
            thresholds = resolve_thresholds(
                self.signal_params, train_predictions=result.train_predictions, train_labels=y
            )
        dk.data["extra_returns_per_train"] = {
            **dk.data.get("extra_returns_per_train", {}),
            **extra_returns(self.signal_params, thresholds),
        }
        dk.data[SETTINGS_KEY] = {
            "seeds": seeds,
            "best_epoch": [m.best_epoch for m in result.members],
            "epochs_run": [len(m.history) for m in result.members],
            "n_fit_samples": result.members[0].n_fit_samples,
            "train_start": str(dates[fit.start]),
            "train_last": str(dates[fit.stop - 1]),
        }
        dk.data_dictionary = {
            "train_features": unfiltered_df.loc[:, names].iloc[fit],
            "train_labels": unfiltered_df.loc[:, [label]].iloc[fit],
            "train_dates": unfiltered_df["date"].iloc[fit],
        }
        # history of the next window's first predictions: the real candles right before it
        k = min(self.lstm_params.window_size - 1, len(x_all))
        return TrainedLSTM(
            modules=[m.model for m in result.members],
            scaler=result.scaler,
            feature_names=tuple(names),
            context=x_all[len(x_all) - k :].copy(),
            context_next=(dates[-1] + step).value,
            dissimilarity=window.dissimilarity,
        )

    def fit_rows(self, dates: pd.DatetimeIndex, step: pd.Timedelta) -> slice:
        """The rows of FreqAI's training window this model fits: the study's train window.

        FreqAI's window ends right before the backtest window; the last ``purge_candles`` rows
        (by time and by position) are dropped, and of the rest only the ``train_days`` before them
        are kept (all of them when ``lstm_optuna.train_days`` is not set). With
        ``buffer_train_data_candles`` (b) only rows of FreqAI's buffered window are kept: from b
        candles after its start (``train_period_days`` before the backtest window) to b candles
        before its end (:func:`optimize.walkforward.buffered`, the study's side).

        Args:
            dates: open times of FreqAI's training rows (ascending).
            step: the base timeframe.
        """
        window_end = dates[-1] + step
        end = window_end - self.purge_candles * step
        hi = min(int(dates.searchsorted(end)), len(dates) - self.purge_candles)
        lo = 0
        if self.train_days is not None:
            lo = int(dates.searchsorted(end - pd.Timedelta(days=self.train_days)))
        buffer = self.pipeline.buffer_train_data_candles
        if buffer:
            first = window_end - pd.Timedelta(days=self.train_period_days) + buffer * step
            lo = max(lo, int(dates.searchsorted(first)))
            hi = min(hi, int(dates.searchsorted(window_end - buffer * step)))
        return slice(lo, max(lo, hi))

    def predict(
        self, unfiltered_df: pd.DataFrame, dk: FreqaiDataKitchen, **kwargs: Any
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Windowed predictions for every row of ``unfiltered_df``.

        Returns:
            ``(pred_df, do_predict)``: one prediction per row in the label column, and 1 where
            the prediction is finite (0 where the window is incomplete or holds NaN features) and
            the dissimilarity index (with ``DI_threshold``) allows it; ``dk.DI_values`` holds
            the index (0 without one, or where a row has no finite features).
        """
        model: TrainedLSTM = self.model
        names = list(model.feature_names)
        dk.find_features(unfiltered_df)
        if list(dk.training_features_list) != names:
            raise ConfigError(
                "the strategy's features differ from the model's: "
                f"{len(dk.training_features_list)} columns now, {len(names)} at training; use a "
                "new freqai.identifier after changing features."
            )
        x = feature_matrix(unfiltered_df, names).astype(np.float32)  # the study's dtype
        first = pd.Timestamp(unfiltered_df["date"].iloc[0]) if len(unfiltered_df) else None
        values = model.predict_frame(x, first)
        do_predict = np.isfinite(values).astype(np.int_)
        label = dk.label_list[0] if dk.label_list else LABEL
        dk.DI_values = np.zeros(len(values))
        if model.dissimilarity is not None:
            index = model.dissimilarity.values(x)
            with np.errstate(invalid="ignore"):
                do_predict &= (index < model.dissimilarity.threshold).astype(np.int_)
            dk.DI_values = np.nan_to_num(index, nan=0.0)
        dk.do_predict = do_predict
        return pd.DataFrame({label: values}), do_predict
