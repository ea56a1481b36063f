"""Fixtures for the LSTM tests: small real feature matrices from the embedded BTC candles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm.params import LSTMParams

N_ROWS = 480


def candle_features(frame: pd.DataFrame) -> np.ndarray:
    """Four real per-candle features: log return, log range, log body, log volume change."""
    close = frame["close"].to_numpy(float)
    logc = np.log(close)
    vol = np.log1p(frame["volume"].to_numpy(float))
    feats = np.column_stack(
        [
            np.diff(logc, prepend=np.nan),
            np.log(frame["high"].to_numpy(float) / frame["low"].to_numpy(float)),
            np.log(close / frame["open"].to_numpy(float)),
            np.diff(vol, prepend=np.nan),
        ]
    )
    return feats[1:].astype(np.float32)  # drop the row without a previous candle


@pytest.fixture(scope="session")
def btc_candles(datadir: Path) -> pd.DataFrame:
    frame = pd.read_feather(datadir / "binance" / "BTC_USDT-1h.feather")
    return frame.iloc[-(N_ROWS + 1) :].reset_index(drop=True)


@pytest.fixture(scope="session")
def real_features(btc_candles: pd.DataFrame) -> np.ndarray:
    """(N_ROWS, 4) float32 features of real BTC/USDT 1h candles."""
    feats = candle_features(btc_candles)
    assert feats.shape == (N_ROWS, 4) and np.isfinite(feats).all()
    return feats


@pytest.fixture(scope="session")
def learnable_labels(real_features: np.ndarray) -> np.ndarray:
    """A label the LSTM can learn from its window: the 3-candle mean of feature 0 plus
    half of feature 2 (a function of rows i-2 .. i only; NaN for the first two rows)."""
    f0 = real_features[:, 0].astype(np.float64)
    y = np.full(f0.shape, np.nan)
    y[2:] = (f0[2:] + f0[1:-1] + f0[:-2]) / 3 + 0.5 * real_features[2:, 2]
    return y


@pytest.fixture(scope="session")
def tiny_params() -> LSTMParams:
    """A small, fast configuration for default-suite fits."""
    return LSTMParams(
        num_lstm_layers=2,
        hidden_dim=16,
        dropout_percent=0.1,
        window_size=4,
        learning_rate=1e-2,
        batch_size=32,
        epochs=3,
        early_stopping_patience=3,
    )
