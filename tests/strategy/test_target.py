"""T(w): equals a literal transcription of the seed, fast basis == pandas path, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib.abstract as ta

from optimize.data import load_candles
from optimize.evaluation import walk
from strategy.target import TargetBasis, make_labels, target_score


def seed_transcription(candles: pd.DataFrame, w: list[float]) -> pd.Series:
    """Seed 002's populate code, line by line (pandas + talib.abstract), weights w0..w8."""
    df = candles.copy()
    df["ma"] = ta.SMA(df, timeperiod=10)
    df["roc"] = ta.ROC(df, timeperiod=2)
    df["macd"], df["macdsignal"], df["macdhist"] = ta.MACD(
        df["close"], slowperiod=12, fastperiod=26
    )
    df["momentum"] = ta.MOM(df, timeperiod=4)
    df["rsi"] = ta.RSI(df, timeperiod=10)
    bollinger = ta.BBANDS(df, timeperiod=20)
    df["bb_upperband"] = bollinger["upperband"]
    df["bb_middleband"] = bollinger["middleband"]
    df["bb_lowerband"] = bollinger["lowerband"]
    df["cci"] = ta.CCI(df, timeperiod=20)
    df["stoch"] = ta.STOCH(df)["slowk"]
    df["atr"] = ta.ATR(df, timeperiod=14)
    df["obv"] = ta.OBV(df)
    df["normalized_stoch"] = (df["stoch"] - df["stoch"].rolling(window=14).mean()) / df[
        "stoch"
    ].rolling(window=14).std()
    df["normalized_atr"] = (df["atr"] - df["atr"].rolling(window=14).mean()) / df["atr"].rolling(
        window=14
    ).std()
    df["normalized_obv"] = (df["obv"] - df["obv"].rolling(window=14).mean()) / df["obv"].rolling(
        window=14
    ).std()
    df["normalized_ma"] = (df["close"] - df["close"].rolling(window=10).mean()) / df[
        "close"
    ].rolling(window=10).std()
    df["normalized_macd"] = (df["macd"] - df["macd"].rolling(window=26).mean()) / df[
        "macd"
    ].rolling(window=26).std()
    df["normalized_roc"] = (df["roc"] - df["roc"].rolling(window=2).mean()) / df["roc"].rolling(
        window=2
    ).std()
    df["normalized_momentum"] = (df["momentum"] - df["momentum"].rolling(window=4).mean()) / df[
        "momentum"
    ].rolling(window=4).std()
    df["normalized_rsi"] = (df["rsi"] - df["rsi"].rolling(window=10).mean()) / df["rsi"].rolling(
        window=10
    ).std()
    df["normalized_bb_width"] = (df["bb_upperband"] - df["bb_lowerband"]).rolling(
        window=20
    ).mean() / (df["bb_upperband"] - df["bb_lowerband"]).rolling(window=20).std()
    df["normalized_cci"] = (df["cci"] - df["cci"].rolling(window=20).mean()) / df["cci"].rolling(
        window=20
    ).std()
    trend_strength = abs(df["ma"] - df["close"])
    strong_trend_threshold = (
        trend_strength.rolling(window=14).mean() + 1.5 * trend_strength.rolling(window=14).std()
    )
    is_strong_trend = trend_strength > strong_trend_threshold
    df["w_momentum"] = np.where(is_strong_trend, w[3] * 1.5, w[3])
    df["S"] = (
        w[0] * df["normalized_ma"]
        + w[1] * df["normalized_macd"]
        + w[2] * df["normalized_roc"]
        + w[3] * df["normalized_rsi"]
        + w[4] * df["normalized_bb_width"]
        + w[5] * df["normalized_cci"]
        + df["w_momentum"] * df["normalized_momentum"]
        + w[8] * df["normalized_stoch"]
        + w[7] * df["normalized_atr"]
        + w[6] * df["normalized_obv"]
    )
    df["R"] = 0
    df.loc[(df["close"] > df["bb_middleband"]) & (df["close"] > df["bb_upperband"]), "R"] = 1
    df.loc[(df["close"] < df["bb_middleband"]) & (df["close"] < df["bb_lowerband"]), "R"] = -1
    df["ma_100"] = ta.SMA(df, timeperiod=100)
    df["R2"] = np.where(df["close"] > df["ma_100"], 1, -1)
    bb_width = (df["bb_upperband"] - df["bb_lowerband"]) / df["bb_middleband"]
    df["V"] = 1 / bb_width
    df["V2"] = 1 / df["atr"]
    return df["S"] * df["R"] * df["V"] * df["R2"] * df["V2"]


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(actual), np.isposinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def candles(datadir) -> dict[str, pd.DataFrame]:
    return {p: load_candles(p, "1h", datadir=datadir) for p in ("BTC/USDT", "ETH/USDT", "SOL/USDT")}


WEIGHT_CASES = [
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    [1, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 1, 0, 0, 0, 0, 0],  # only rsi + (dynamic) momentum
    [0, 0, 0, 0, 0, 0, 1, 0, 0],  # w6 -> OBV
    [0, 0, 0, 0, 0, 0, 0, 0, 1],  # w8 -> stoch
]


@pytest.mark.parametrize("pair", ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
@pytest.mark.parametrize("weights", WEIGHT_CASES)
def test_target_score_equals_seed_transcription(candles, pair, weights):
    c = candles[pair]
    got = target_score(c, weights)
    assert got.name == "T"
    assert got.index.equals(c.index)
    assert got.iloc[:50].isna().all(), "MACD + its 26-candle z-score warm-up must be NaN"
    assert got.notna().sum() > 0.99 * len(c) - 200
    assert_same(got.to_numpy(), seed_transcription(c, weights).to_numpy())


def test_weight_mapping_is_the_seeds(candles):
    """w6 weighs OBV, w7 ATR, w8 stoch (the seed's order, not the indicator list order)."""
    c = candles["BTC/USDT"].iloc[:3000]
    basis = TargetBasis.from_candles(c)
    rows = np.isfinite(basis.z).all(axis=1)
    assert rows.sum() > 2800
    for k, indicator in ((6, ta.OBV(c)), (7, ta.ATR(c, timeperiod=14)), (8, ta.STOCH(c)["slowk"])):
        onehot = np.zeros(9)
        onehot[k] = 1.0
        z = ((indicator - indicator.rolling(14).mean()) / indicator.rolling(14).std()).to_numpy()
        assert_same(basis.aggregate(onehot)[rows], z[rows])


def test_momentum_weight_is_w3_times_1_5_in_strong_trend(candles):
    c = candles["ETH/USDT"].iloc[:5000]
    basis = TargetBasis.from_candles(c)
    s_rsi_mom = basis.aggregate([0, 0, 0, 1, 0, 0, 0, 0, 0])
    mom = ta.MOM(c, timeperiod=4)
    z_mom = ((mom - mom.rolling(4).mean()) / mom.rolling(4).std()).to_numpy()
    expected = basis.z[:, 3] + np.where(basis.strong_trend, 1.5, 1.0) * z_mom
    assert basis.strong_trend.sum() > 50  # real data has strong-trend candles
    rows = np.isfinite(basis.z).all(axis=1)  # 0 * NaN of the other columns is NaN, as in the seed
    assert_same(s_rsi_mom[rows], expected[rows])


@pytest.mark.parametrize("pair", ["BTC/USDT", "SOL/USDT"])
def test_fast_basis_equals_target_score_for_random_weights(candles, pair):
    c = candles[pair]
    basis = TargetBasis.from_candles(c)
    rng = np.random.default_rng(7)
    for _ in range(10):
        w = rng.uniform(0, 1, 9)
        assert_same(basis.score(w), target_score(c, w).to_numpy())


@pytest.mark.parametrize("k", [150, 1000, 20_000])
def test_no_look_ahead(candles, k):
    """Truncating the future never changes T at earlier rows."""
    c = candles["BTC/USDT"]
    w = [0.3, 0.1, 0.5, 0.2, 0.9, 0.4, 0.6, 0.7, 0.8]
    full = target_score(c, w).to_numpy()
    cut = target_score(c.iloc[:k], w).to_numpy()
    assert_same(cut, full[:k])


def test_changing_the_future_does_not_change_the_past(candles):
    c = candles["SOL/USDT"].iloc[:4000].copy()
    w = np.full(9, 0.5)
    before = TargetBasis.from_candles(c).score(w)
    c.loc[3000:, ["open", "high", "low", "close"]] *= 3.0
    after = TargetBasis.from_candles(c).score(w)
    assert_same(after[:3000], before[:3000])
    assert not np.allclose(after[3100:], before[3100:], equal_nan=True)


@pytest.mark.parametrize(
    "weights, match",
    [([0.1] * 8, "9 values"), ([0.1] * 10, "9 values"), ([0.1] * 8 + [np.nan], "finite")],
)
def test_bad_weights_are_rejected(candles, weights, match):
    with pytest.raises(ValueError, match=match):
        target_score(candles["BTC/USDT"].iloc[:300], weights)


def test_labels_are_the_target_shifted_back_by_the_horizon():
    target = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(make_labels(target, 0), target)
    np.testing.assert_array_equal(make_labels(target, 2), [3.0, 4.0, np.nan, np.nan])
    assert walk.make_labels is make_labels  # the walk's name for it still works
