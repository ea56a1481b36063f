"""Candle loading: every validation rule has a malformed file; gap filling equals freqtrade's."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from freqtrade.data.converter import ohlcv_fill_up_missing_data

from optimize.data import (
    CandleValidationError,
    PairNotFoundError,
    available_pairs,
    fill_missing_candles,
    find_gaps,
    load_candles,
)
from strategy.timeframes import timeframe_to_seconds


@pytest.fixture(scope="module")
def real(datadir) -> pd.DataFrame:
    """The first 300 real BTC 1h candles of the embedded data (no gaps there)."""
    return (
        pd.read_feather(datadir / "binance" / "BTC_USDT-1h.feather")
        .iloc[:300]
        .reset_index(drop=True)
    )


def write(tmp_path: Path, frame: pd.DataFrame, pair: str = "BTC/USDT", tf: str = "1h") -> Path:
    folder = tmp_path / "binance"
    folder.mkdir(parents=True, exist_ok=True)
    frame.reset_index(drop=True).to_feather(folder / f"{pair.replace('/', '_')}-{tf}.feather")
    return tmp_path


def load(tmp_path: Path, **kw) -> pd.DataFrame:
    return load_candles("BTC/USDT", "1h", datadir=tmp_path, **kw)


def test_clean_file_loads_unchanged(tmp_path, real):
    out = load(write(tmp_path, real))
    pd.testing.assert_frame_equal(out, real)


# n_filled: the missing candles of the embedded files (find_gaps(...).n_missing; the files are
# fixed).
@pytest.mark.parametrize(
    "pair, tf, n_filled",
    [("BTC/USDT", "1h", 32), ("ETH/USDT", "2h", 10), ("SOL/USDT", "1h", 20), ("SOL/USDT", "4h", 0)],
)
def test_gap_filling_matches_freqtrade(datadir, pair, tf, n_filled):
    raw = pd.read_feather(datadir / "binance" / f"{pair.replace('/', '_')}-{tf}.feather")
    ours = load_candles(pair, tf, datadir=datadir)
    theirs = ohlcv_fill_up_missing_data(raw, tf, pair)
    assert find_gaps(raw["date"], tf).n_missing == n_filled
    assert len(ours) - len(raw) == n_filled  # the 1h/2h history has outages, the 4h file none
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)


def test_gap_is_filled_with_previous_close_and_zero_volume(tmp_path, real, caplog):
    holed = real.drop(index=[50, 51, 52, 200])
    with caplog.at_level(logging.WARNING, logger="optimize.data"):
        out = load(write(tmp_path, holed))
    assert "2 gaps, 4 missing candles (largest 3" in caplog.text  # 1.3 % of the candles: a warning
    assert len(out) == len(real)
    prev_close = real.loc[49, "close"]
    for row in (50, 51, 52):
        assert out.loc[row, ["open", "high", "low", "close"]].tolist() == [prev_close] * 4
        assert out.loc[row, "volume"] == 0
    untouched = out.drop(index=[50, 51, 52, 200]).reset_index(drop=True)
    pd.testing.assert_frame_equal(untouched, holed.reset_index(drop=True))


def test_rare_gaps_are_info_not_warning(tmp_path, real, caplog):
    """One missing candle in 300 (0.3 %, an exchange maintenance) is routine: logged at INFO."""
    with caplog.at_level(logging.INFO, logger="optimize.data"):
        load(write(tmp_path, real.drop(index=[120])))
    (record,) = [r for r in caplog.records if "missing candles" in r.getMessage()]
    assert record.levelno == logging.INFO and "1 gaps, 1 missing candles" in record.getMessage()


def test_gap_larger_than_limit_is_an_error(tmp_path, real):
    holed = real.drop(index=range(100, 130))
    with pytest.raises(
        CandleValidationError,
        match=r"rule 'gap': 30 missing candles in a row starting at 2020-01-05 04:00",
    ):
        load(write(tmp_path, holed), max_gap_candles=10)
    assert len(load(tmp_path, max_gap_candles=30)) == len(real)


def test_missing_pair_lists_the_pairs_that_are_there(datadir):
    with pytest.raises(PairNotFoundError) as err:
        load_candles("XRP/USDT", "1h", datadir=datadir)
    msg = str(err.value)
    assert "XRP_USDT-1h.feather" in msg
    assert "BTC/USDT, ETH/USDT, SOL/USDT" in msg
    assert available_pairs(datadir, "4h") == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]


def _mutate(real: pd.DataFrame, fn) -> pd.DataFrame:
    frame = real.copy()
    fn(frame)
    return frame


def _set(row, col, value):
    def fn(frame):
        frame.loc[row, col] = value

    return fn


MALFORMED = {
    "missing column": (
        lambda f: f.drop(columns=["volume"]),
        r"rule 'columns': missing \['volume'\]",
    ),
    "extra column": (lambda f: f.assign(foo=1.0), r"rule 'columns': .*unexpected \['foo'\]"),
    "naive dates": (lambda f: f.assign(date=f["date"].dt.tz_localize(None)), r"rule 'date dtype'"),
    "unsorted": (lambda f: f.iloc[[0, 1, 3, 2, *range(4, len(f))]], r"row 3 .*rule 'sorted dates'"),
    "duplicate": (lambda f: pd.concat([f.iloc[:11], f.iloc[10:]]), r"row 11 .*rule 'unique dates'"),
    "off grid": (
        lambda f: _mutate(f, _set(20, "date", f.loc[20, "date"] + pd.Timedelta(minutes=30))),
        r"row 20 \(date 2020-01-01 20:30:00\+00:00\): rule 'timeframe grid'",
    ),
    "nan": (lambda f: _mutate(f, _set(7, "close", np.nan)), r"row 7 .*rule 'finite': close=nan"),
    "inf": (lambda f: _mutate(f, _set(8, "volume", np.inf)), r"row 8 .*rule 'finite': volume=inf"),
    "zero price": (
        lambda f: _mutate(f, _set(9, "low", 0.0)),
        r"row 9 .*rule 'positive price': low=0.0",
    ),
    "negative price": (
        lambda f: _mutate(f, _set(9, "open", -1.0)),
        r"rule 'positive price': open=-1.0",
    ),
    "negative volume": (lambda f: _mutate(f, _set(4, "volume", -5.0)), r"row 4 .*rule 'volume'"),
    "high < low": (
        lambda f: _mutate(f, _set(12, "high", f.loc[12, "low"] - 1)),
        r"row 12 .*rule 'high >= low'",
    ),
    "high < close": (
        lambda f: _mutate(f, _set(13, "high", f.loc[13, ["open", "close"]].max() - 0.5)),
        r"row 13 .*rule 'OHLC consistency'",
    ),
    "text price": (
        lambda f: f.assign(open=f["open"].astype(str).where(f.index != 5, "abc")),
        r"rule 'numeric'",
    ),
    "empty": (lambda f: f.iloc[:0], r"rule 'rows'"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_names_file_row_and_rule(tmp_path, real, case):
    mutate, pattern = MALFORMED[case]
    datadir = write(tmp_path, mutate(real.copy()))
    with pytest.raises(CandleValidationError, match=pattern) as err:
        load(datadir)
    assert "BTC_USDT-1h.feather" in str(err.value)


def test_corrupt_file_is_a_clear_error(tmp_path):
    folder = tmp_path / "binance"
    folder.mkdir()
    (folder / "BTC_USDT-1h.feather").write_bytes(b"not a feather file")
    with pytest.raises(CandleValidationError, match="cannot be read as a feather file"):
        load(tmp_path)


def test_start_end_slice(datadir):
    out = load_candles("ETH/USDT", "4h", datadir=datadir, start="2024-01-01", end="2024-02-01")
    assert out["date"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")
    assert out["date"].iloc[-1] == pd.Timestamp("2024-01-31 20:00", tz="UTC")
    assert len(out) == 31 * 6


def test_fill_is_idempotent_and_gaps_counted(real):
    holed = real.drop(index=[10, 11]).reset_index(drop=True)
    report = find_gaps(holed["date"], "1h")
    assert (report.n_gaps, report.n_missing, report.largest) == (1, 2, 2)
    assert report.largest_at == real.loc[10, "date"]
    filled = fill_missing_candles(holed, "1h")
    pd.testing.assert_frame_equal(fill_missing_candles(filled, "1h"), filled)


@pytest.mark.parametrize(
    "tf, seconds", [("5m", 300), ("1h", 3600), ("4h", 14400), ("1d", 86400), ("1w", 604800)]
)
def test_timeframes(tf, seconds):
    assert timeframe_to_seconds(tf) == seconds


@pytest.mark.parametrize("tf", ["1M", "h", "0h", "1.5h", ""])
def test_bad_timeframe(tf):
    with pytest.raises(ValueError, match="timeframe must look like"):
        timeframe_to_seconds(tf)


@pytest.mark.parametrize(
    "alter, pattern",
    [
        (lambda f: f.assign(volume=0.0), r"rule 'volume all zero': every candle has volume 0"),
        (
            lambda f: f.assign(open=100.0, high=100.0, low=100.0, close=100.0),
            r"rule 'flat prices': every candle has open = high = low = close = 100.0",
        ),
    ],
    ids=["zero-volume", "flat-prices"],
)
def test_uninformative_file_is_an_error(tmp_path, real, alter, pattern):
    """A pair that cannot produce a signal would be skipped in every fold without a word."""
    write(tmp_path, alter(real.copy()))
    with pytest.raises(CandleValidationError, match=pattern) as err:
        load(tmp_path)
    assert "BTC_USDT-1h.feather" in str(err.value)


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda path: path.symlink_to(path.name), "is a symbolic link loop"),
        (lambda path: path.symlink_to("nowhere.feather"), "is a dangling symbolic link"),
        (lambda path: path.mkdir(), "is a folder, not a file"),
    ],
    ids=["loop", "dangling", "folder"],
)
def test_a_candle_path_that_is_not_a_file_says_what_it_is(tmp_path, real, make, says):
    """Not "does not exist" while the pair is listed as present."""
    write(tmp_path, real)  # BTC/USDT is there
    path = tmp_path / "binance" / "ETH_USDT-1h.feather"
    make(path)
    with pytest.raises(PairNotFoundError) as err:
        load_candles("ETH/USDT", "1h", datadir=tmp_path)
    message = str(err.value)
    assert f"{path} {says}" in message
    assert message.endswith(f"Pairs with 1h candles in {tmp_path / 'binance'}: BTC/USDT."), message
    assert available_pairs(tmp_path, "1h") == ["BTC/USDT"]
