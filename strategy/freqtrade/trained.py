"""What one FreqAI training of the LSTM produces, and how FreqAI stores and reloads it.

* :class:`TrainedLSTM` — the fitted ensemble (K members, one module each), its scaler, the feature
  names, the last ``window_size - 1`` rows of FreqAI's training frame (the history the first
  predictions of the next backtest window need) and, with ``DI_threshold``, the window's
  dissimilarity index (:class:`strategy.dissimilarity.DissimilarityIndex`); saved as an
  :mod:`lstm.checkpoint` file (plain tensors and containers, loadable with
  ``torch.load(..., weights_only=True)``), where FreqAI's stock ``pytorch`` format pickles a
  trainer object that needs ``weights_only=False``.
* :class:`CheckpointDataDrawer` — FreqAI's data drawer with only the model loading replaced.

Kept apart from :mod:`strategy.freqtrade.lstm_regressor`, the file freqtrade resolves the model
class from.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import rapidjson
import torch
from freqtrade.freqai.data_drawer import (
    FEATURE_PIPELINE,
    LABEL_PIPELINE,
    METADATA,
    METADATA_NUMBER_MODE,
    FreqaiDataDrawer,
)
from freqtrade.freqai.data_kitchen import FreqaiDataKitchen

from lstm.checkpoint import load_checkpoint, save_checkpoint
from lstm.data import RobustScaler
from lstm.module import LSTMLightningModule
from lstm.train import predict_ensemble
from strategy.dissimilarity import DissimilarityIndex


def feature_matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The named feature columns as a float64 matrix, non-finite values as NaN (KeyError if
    absent)."""
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise KeyError(
            f"the dataframe lacks {len(missing)} feature column(s) the model was trained with, "
            f"e.g. {missing[:3]}."
        )
    x = frame.loc[:, names].to_numpy(dtype=np.float64, copy=True)
    x[~np.isfinite(x)] = np.nan
    return x


class TrainedLSTM:
    """What one FreqAI training produces: the fitted ensemble, its scaler and the history it needs.

    (A plain class, not a dataclass: freqtrade's resolvers import every file of this folder as
    a loose module, where dataclasses cannot be created.)

    Attributes:
        modules: the fitted members (eval mode), in seed order; the prediction is their mean
            (:func:`lstm.train.predict_ensemble`, the study's).
        scaler: feature/label scaler fitted on the training rows (shared by the members).
        feature_names: FreqAI feature columns, in the model's input order.
        context: (k, F) unscaled features of the last ``k <= window_size - 1`` rows of FreqAI's
            training frame (the real candles right before the backtest window).
        context_next: open time (ns since epoch, UTC) of the candle right after the context; a
            prediction frame starting there is preceded by the context.
        dissimilarity: the dissimilarity index fitted on the training rows (None: DI off).
    """

    def __init__(
        self,
        modules: Sequence[LSTMLightningModule],
        scaler: RobustScaler,
        feature_names: tuple[str, ...],
        context: np.ndarray,
        context_next: int,
        dissimilarity: DissimilarityIndex | None = None,
    ) -> None:
        if isinstance(modules, LSTMLightningModule):
            modules = (modules,)
        self.modules = tuple(modules)
        if not self.modules:
            raise ValueError("TrainedLSTM needs at least one fitted module, but got none.")
        self.scaler = scaler
        self.feature_names = tuple(feature_names)
        self.context = np.asarray(context, dtype=np.float32)
        self.context_next = int(context_next)
        self.dissimilarity = dissimilarity

    @property
    def module(self) -> LSTMLightningModule:
        """The first member."""
        return self.modules[0]

    @property
    def window(self) -> int:
        return self.module.params.window_size

    def save(self, path: str | Path) -> Path:
        """Write a weights-only checkpoint (FreqAI calls this with ``<name>_model.zip``): the first
        member as an :mod:`lstm.checkpoint` file, the other members' weights in its ``extra``."""
        others = [
            {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
            for m in self.modules[1:]
        ]
        return save_checkpoint(
            self.module,
            self.scaler,
            path,
            feature_names=self.feature_names,
            extra={
                "context": self.context,
                "context_next": int(self.context_next),
                "members": others,
                "dissimilarity": None
                if self.dissimilarity is None
                else self.dissimilarity.to_dict(),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> TrainedLSTM:
        """Read a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``)."""
        module, scaler, meta = load_checkpoint(path)
        extra = meta["extra"]
        context = extra.get("context")
        context = (
            context.numpy().astype(np.float32)
            if isinstance(context, torch.Tensor)
            else np.zeros((0, module.input_dim), dtype=np.float32)
        )
        modules = [module]
        for state in extra.get("members") or []:
            member = copy.deepcopy(module)
            member.load_state_dict(state, strict=True)
            member.eval()
            modules.append(member)
        index = extra.get("dissimilarity")
        return cls(
            modules,
            scaler,
            tuple(meta["feature_names"]),
            context,
            int(extra.get("context_next", -1)),
            None if index is None else DissimilarityIndex.from_dict(index),
        )

    def predict_frame(self, features: np.ndarray, first_date: pd.Timestamp | None) -> np.ndarray:
        """Windowed ensemble predictions for every row of ``features`` (label units; NaN: no full
        window).

        Rows ``0..W-2`` use the training context when ``first_date`` is the candle right after
        it; otherwise they only see the rows of ``features`` (and are NaN where that is too few).
        As with :func:`lstm.train.predict`, no prediction depends on the rows after it (not even
        in the last float32 bits): truncating the frame leaves earlier predictions unchanged.
        The rows are scaled as float32, the study's feature dtype, so the scaled values are the
        study's bit for bit (float64 rows would be scaled in float64 and round differently).
        """
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected (rows, {len(self.feature_names)}) features, but got {x.shape=}."
            )
        offset = 0
        if (
            first_date is not None
            and len(self.context)
            and pd.Timestamp(first_date).value == self.context_next
        ):
            offset = len(self.context)
            x = np.vstack([self.context, x])
        if x.shape[0] == offset:
            return np.full(0, np.nan)
        return predict_ensemble(self.modules, self.scaler, x, slice(offset, None), self.window)


class CheckpointDataDrawer(FreqaiDataDrawer):
    """FreqAI's data drawer, loading ``pytorch`` models from :class:`TrainedLSTM` checkpoints.

    Everything but the model file is FreqAI's own format (metadata JSON, pickled pipelines);
    only the model loading of :meth:`FreqaiDataDrawer.load_data` changes.
    """

    def load_data(self, coin: str, dk: FreqaiDataKitchen) -> Any:
        if self.model_type != "pytorch":
            return super().load_data(coin, dk)
        if not self.pair_dict[coin]["model_filename"]:
            return None
        if dk.live:
            dk.model_filename = self.pair_dict[coin]["model_filename"]
            dk.data_path = Path(self.pair_dict[coin]["data_path"])
        if coin in self.meta_data_dictionary:
            dk.data = self.meta_data_dictionary[coin][METADATA]
            dk.feature_pipeline = self.meta_data_dictionary[coin][FEATURE_PIPELINE]
            dk.label_pipeline = self.meta_data_dictionary[coin][LABEL_PIPELINE]
        else:
            with (dk.data_path / f"{dk.model_filename}_{METADATA}.json").open("r") as fp:
                dk.data = rapidjson.load(fp, number_mode=METADATA_NUMBER_MODE)
            with (dk.data_path / f"{dk.model_filename}_{FEATURE_PIPELINE}.pkl").open("rb") as fp:
                dk.feature_pipeline = cloudpickle.load(fp)
            with (dk.data_path / f"{dk.model_filename}_{LABEL_PIPELINE}.pkl").open("rb") as fp:
                dk.label_pipeline = cloudpickle.load(fp)
        dk.training_features_list = dk.data["training_features_list"]
        dk.label_list = dk.data["label_list"]
        if dk.live and coin in self.model_dictionary:
            model = self.model_dictionary[coin]
        else:
            model = TrainedLSTM.load(dk.data_path / f"{dk.model_filename}_model.zip")
        self.model_dictionary.setdefault(coin, model)
        return model
