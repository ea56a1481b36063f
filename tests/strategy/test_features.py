"""LSTM input features: FreqAI-style expansion, no look-ahead, freqtrade-equal merge, disk cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from freqtrade.strategy import merge_informative_pair

from optimize.data import load_candles
from strategy.features import (
    ALL_FEATURES,
    FeatureConfig,
    build_features,
    cached_features,
    corr_pair_features,
    feature_cache_key,
    merge_informative,
    timeframe_features,
)
from strategy.timeframes import timeframe_to_timedelta

TFS = ("1h", "2h", "4h")


@pytest.fixture(scope="module")
def candles(datadir) -> dict[str, pd.DataFrame]:
    return {
        tf: load_candles("ETH/USDT", tf, datadir=datadir, start="2023-01-01", end="2023-07-01")
        for tf in TFS
    }


def visible_at(candles: dict[str, pd.DataFrame], k: int) -> dict[str, pd.DataFrame]:
    """What a live bot knows after base candle k-1 closes: closed candles only, every timeframe."""
    base = candles["1h"]
    now = base["date"].iloc[k - 1] + timeframe_to_timedelta("1h")
    return {
        tf: frame[frame["date"] + timeframe_to_timedelta(tf) <= now]
        for tf, frame in candles.items()
    }


def test_columns_follow_freqai_naming(candles):
    feats = build_features(candles, FeatureConfig())
    assert feats.index.equals(candles["1h"].index)
    assert feats.dtypes.eq(np.float32).all()
    names = set(feats.columns)
    for tf in TFS:
        for period in (10, 20):
            assert f"%-rsi-period_{period}_{tf}" in names
            assert f"%-close-bb_lower-period_{period}_{tf}" in names
        assert f"%-macd_{tf}" in names and f"%-pct-change_{tf}" in names
    assert {"%-day_of_week", "%-hour_of_day"} <= names
    assert len(names) == len(TFS) * (2 * 7 + 3 + 3) + 2
    # past the warm-up (MACD 33 candles of 4h = 132 hours) every feature is defined
    assert not feats.iloc[200:].isna().any().any()


@pytest.mark.parametrize("k", [300, 1001, 2222, 4000])
def test_no_look_ahead(candles, k):
    """Features for rows < k computed from what was known at row k-1's close equal the full run."""
    config = FeatureConfig(include_shifted_candles=2)
    full = build_features(candles, config)
    cut = build_features(visible_at(candles, k), config)
    assert len(cut) == k
    pd.testing.assert_frame_equal(cut, full.iloc[:k])


def test_merge_equals_freqtrades_merge_informative_pair(candles):
    base, inf = candles["1h"], candles["4h"]
    ours = merge_informative(
        base["date"], inf["date"], inf[["close"]].rename(columns={"close": "c"}), "1h", "4h"
    )
    theirs = merge_informative_pair(
        base[["date", "close"]], inf[["date", "close"]], "1h", "4h", ffill=True
    )
    np.testing.assert_array_equal(ours["c"].to_numpy(), theirs["close_4h"].to_numpy())


def test_higher_timeframe_value_appears_when_its_candle_closes(candles):
    base, inf = candles["1h"], candles["4h"]
    tf_feats = timeframe_features(inf, FeatureConfig(features=("raw_price",)), "4h")
    merged = build_features(candles, FeatureConfig(features=("raw_price",)))
    # the 4h candle opening at 08:00 closes at 12:00: visible from the 1h candle 11:00 (closes
    # 12:00)
    row_11 = base.index[base["date"] == pd.Timestamp("2023-03-01 11:00", tz="UTC")][0]
    row_10 = row_11 - 1
    c08 = tf_feats.loc[
        inf["date"] == pd.Timestamp("2023-03-01 08:00", tz="UTC"), "%-raw_price_4h"
    ].iloc[0]
    c04 = tf_feats.loc[
        inf["date"] == pd.Timestamp("2023-03-01 04:00", tz="UTC"), "%-raw_price_4h"
    ].iloc[0]
    assert merged.loc[row_11, "%-raw_price_4h"] == np.float32(c08)
    assert merged.loc[row_10, "%-raw_price_4h"] == np.float32(c04)
    assert c08 != c04


def test_subset_and_shift(candles):
    config = FeatureConfig(
        include_timeframes=("1h",),
        indicator_periods_candles=(14,),
        include_shifted_candles=1,
        features=("rsi", "pct-change"),
    )
    feats = build_features(candles, config)
    assert list(feats.columns) == [
        "%-rsi-period_14_1h",
        "%-pct-change_1h",
        "%-rsi-period_14_1h_shift-1",
        "%-pct-change_1h_shift-1",
    ]
    np.testing.assert_array_equal(
        feats["%-rsi-period_14_1h_shift-1"].to_numpy()[1:],
        feats["%-rsi-period_14_1h"].to_numpy()[:-1],
    )


def test_informative_shift_is_in_its_own_candles(candles):
    """As in FreqAI: an informative timeframe is shifted by its own candles before the merge."""
    config = FeatureConfig(
        include_timeframes=("1h", "4h"),
        indicator_periods_candles=(14,),
        include_shifted_candles=1,
        features=("raw_price",),
    )
    feats = build_features(candles, config)
    assert list(feats.columns) == [
        "%-raw_price_1h",
        "%-raw_price_1h_shift-1",
        "%-raw_price_4h",
        "%-raw_price_4h_shift-1",
    ]
    inf = candles["4h"]
    base = candles["1h"]
    row = base.index[base["date"] == pd.Timestamp("2023-03-01 11:00", tz="UTC")][0]
    c04 = inf.loc[inf["date"] == pd.Timestamp("2023-03-01 04:00", tz="UTC"), "close"].iloc[0]
    assert feats.loc[row, "%-raw_price_4h_shift-1"] == np.float32(c04)


def test_cache_hit_miss_and_key(candles, tmp_path):
    config = FeatureConfig()
    first = cached_features(candles, config, tmp_path)
    files = list(tmp_path.glob("features-*.feather"))
    assert len(files) == 1
    again = cached_features(candles, config, tmp_path)
    pd.testing.assert_frame_equal(first, again)
    other = {tf: f.copy() for tf, f in candles.items()}
    other["4h"].loc[5, "close"] *= 1.01
    assert feature_cache_key(other, config) != feature_cache_key(candles, config)
    assert feature_cache_key(
        candles, FeatureConfig(indicator_periods_candles=(10,))
    ) != feature_cache_key(candles, config)
    files[0].write_bytes(b"corrupt")
    pd.testing.assert_frame_equal(cached_features(candles, config, tmp_path), first)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"include_timeframes": ()}, "at least the base"),
        ({"include_timeframes": ("4h", "1h")}, "multiple of the base"),
        ({"include_timeframes": ("1h", "90m")}, "multiple of the base"),
        ({"include_timeframes": ("1h", "1M")}, "timeframe must look like"),
        ({"indicator_periods_candles": (1,)}, "indicator_periods_candles must be integers >= 2"),
        ({"include_shifted_candles": -1}, "include_shifted_candles must be"),
        ({"features": ("rsi", "vwap")}, r"unknown \['vwap'\]"),
        ({"features": ()}, r"features must be a non-empty subset of \['cci'"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureConfig(**kwargs)


def test_missing_timeframe_is_named(candles):
    with pytest.raises(KeyError, match=r"timeframes \['2h'\]"):
        build_features({"1h": candles["1h"], "4h": candles["4h"]}, FeatureConfig())


def test_all_features_known():
    assert len(ALL_FEATURES) == len(set(ALL_FEATURES)) == 15


def test_correlated_pair_features_are_its_own_merged_like_an_informative_timeframe(
    candles, datadir
):
    """A correlated pair's columns: its per-timeframe features (no calendar ones), named with the
    pair, each timeframe merged onto the base candles as an informative timeframe is."""
    config = FeatureConfig(include_timeframes=("1h", "4h"), indicator_periods_candles=(10,))
    other = {
        tf: load_candles("BTC/USDT", tf, datadir=datadir, start="2023-01-01", end="2023-07-01")
        for tf in config.include_timeframes
    }
    base = candles["1h"]
    corr = corr_pair_features(base["date"], other, config, "BTC/USDT")
    own = build_features(other, config)  # BTC's own features on BTC's candles (same grid)
    assert base["date"].equals(other["1h"]["date"])
    expected = [c for c in own.columns if not c.startswith(("%-day", "%-hour"))]
    assert list(corr.columns) == [c.replace("_1h", "_BTC/USDT_1h").replace(
        "_4h", "_BTC/USDT_4h") for c in expected]  # fmt: skip
    np.testing.assert_array_equal(corr.to_numpy(), own[expected].to_numpy())
    assert corr.dtypes.eq(np.float32).all()


@pytest.mark.parametrize("k", [300, 2222])
def test_correlated_pair_features_have_no_look_ahead(candles, datadir, k):
    config = FeatureConfig(include_timeframes=("1h", "2h", "4h"), include_shifted_candles=1)
    other = {
        tf: load_candles("SOL/USDT", tf, datadir=datadir, start="2023-01-01", end="2023-07-01")
        for tf in config.include_timeframes
    }
    base = candles["1h"]
    full = corr_pair_features(base["date"], other, config, "SOL/USDT:USDT")
    assert all("SOL/USDTUSDT" in c for c in full.columns)  # ':' dropped, as FreqAI drops it
    seen = visible_at(other, k)
    cut = corr_pair_features(base["date"].iloc[:k], seen, config, "SOL/USDT:USDT")
    pd.testing.assert_frame_equal(cut, full.iloc[:k])


def test_a_damaged_cache_entry_is_rebuilt_with_a_warning(candles, tmp_path, caplog):
    """400 zeroed bytes in the middle of an entry (still a readable file, other values): the
    checksum notices; the entry is rebuilt, the features are the true ones."""
    config = FeatureConfig()
    first = cached_features(candles, config, tmp_path)
    (entry,) = tmp_path.glob("features-*.feather")
    data = bytearray(entry.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = bytes(400)
    entry.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="strategy.features"):
        again = cached_features(candles, config, tmp_path)
    pd.testing.assert_frame_equal(again, first)
    assert any(
        str(entry) in r.message and ("checksum" in r.message or "unreadable" in r.message)
        for r in caplog.records
    ), caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="strategy.features"):  # rebuilt: trusted again
        pd.testing.assert_frame_equal(cached_features(candles, config, tmp_path), first)
    assert not caplog.records


def test_an_entry_whose_values_changed_fails_its_checksum(candles, tmp_path, caplog):
    """A valid feather file with other values (what a damaged page can look like): rebuilt."""
    import pyarrow.feather as feather

    config = FeatureConfig()
    first = cached_features(candles, config, tmp_path)
    (entry,) = tmp_path.glob("features-*.feather")
    table = feather.read_table(entry)
    frame = table.to_pandas()
    frame.iloc[100, 3] += 1.0
    changed = pa_table_with(frame, table.schema.metadata)
    feather.write_feather(changed, entry)
    with caplog.at_level("WARNING", logger="strategy.features"):
        pd.testing.assert_frame_equal(cached_features(candles, config, tmp_path), first)
    assert "does not match its checksum" in caplog.text


def pa_table_with(frame: pd.DataFrame, metadata):
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.replace_schema_metadata(metadata)


def test_an_unwritable_cache_folder_leaves_the_features_uncached(
    candles, tmp_path, caplog, unwritable
):
    folder = unwritable(tmp_path / "cache")
    config = FeatureConfig()
    with caplog.at_level("WARNING", logger="strategy.features"):
        features = cached_features(candles, config, folder)
        again = cached_features(candles, config, folder)
    pd.testing.assert_frame_equal(features, again)
    pd.testing.assert_frame_equal(features, build_features(candles, config))
    warned = [r for r in caplog.records if "cannot be written" in r.message]
    assert len(warned) == 1 and str(folder) in warned[0].message  # once per folder
    assert not list(folder.iterdir())
