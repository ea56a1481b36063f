"""Futures data loading: freqtrade's futures layout, the embedded files, and one clear error per
missing or malformed futures, mark or funding-rate file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from freqtrade.data.history import load_pair_history
from freqtrade.enums import CandleType

from optimize.data import (
    CandleValidationError,
    PairNotFoundError,
    available_pairs,
    candle_path,
    load_candles,
    load_funding_rates,
)

# freqtrade 2026.9 still calls pandas APIs that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"]


def test_embedded_futures_files_are_freqtrades_layout(datadir):
    for candle_type, timeframes in (
        ("futures", ("1h", "2h", "4h")),
        ("mark", ("1h",)),
        ("funding_rate", ("1h",)),
    ):
        for tf in timeframes:
            assert available_pairs(datadir, tf, candle_type=candle_type) == PAIRS
    path = candle_path(datadir, "SOL/USDT:USDT", "1h", candle_type="mark")
    assert path == datadir / "binance" / "futures" / "SOL_USDT_USDT-1h-mark.feather"
    assert not (datadir / "binance" / "futures" / "SOL_USDT_USDT-8h-mark.feather").exists()


@pytest.mark.parametrize("candle_type", ["futures", "mark"])
def test_candles_equal_what_freqtrade_loads(datadir, candle_type):
    ours = load_candles("ETH/USDT:USDT", "1h", datadir=datadir, candle_type=candle_type)
    theirs = load_pair_history(
        "ETH/USDT:USDT",
        "1h",
        datadir / "binance",
        data_format="feather",
        candle_type=CandleType.from_string(candle_type),
    )
    assert len(ours) == len(theirs) > 50_000
    np.testing.assert_array_equal(
        ours["date"].to_numpy(), pd.DatetimeIndex(theirs["date"]).as_unit("ns").to_numpy()
    )
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(ours[column].to_numpy(), theirs[column].to_numpy())
    if candle_type == "mark":
        assert (ours["volume"] == 0).all()  # Binance publishes no mark volume: still valid


def test_funding_rates_equal_what_freqtrade_loads(datadir):
    ours = load_funding_rates("SOL/USDT:USDT", datadir=datadir)
    theirs = load_pair_history(
        "SOL/USDT:USDT",
        "1h",
        datadir / "binance",
        data_format="feather",
        candle_type=CandleType.FUNDING_RATE,
        fill_up_missing=False,
    )
    assert list(ours.columns) == ["date", "funding_rate"]
    assert len(ours) == len(theirs) == 4339
    np.testing.assert_array_equal(ours["funding_rate"].to_numpy(), theirs["funding_rate"])
    sliced = load_funding_rates(
        "BTC/USDT:USDT", datadir=datadir, start="2024-01-01", end="2024-01-02"
    )
    assert sliced["date"].dt.hour.tolist() == [0, 8, 16]


def _futures_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "binance" / "futures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize(
    ("loader", "file", "what"),
    [
        (
            lambda d: load_candles("BTC/USDT:USDT", "1h", datadir=d, candle_type="futures"),
            "BTC_USDT_USDT-1h-futures.feather",
            "No 1h futures candles for 'BTC/USDT:USDT'",
        ),
        (
            lambda d: load_candles("BTC/USDT:USDT", "1h", datadir=d, candle_type="mark"),
            "BTC_USDT_USDT-1h-mark.feather",
            "No 1h mark candles for 'BTC/USDT:USDT'",
        ),
        (
            lambda d: load_funding_rates("BTC/USDT:USDT", datadir=d),
            "BTC_USDT_USDT-1h-funding_rate.feather",
            "No 1h funding rates for 'BTC/USDT:USDT'",
        ),
    ],
    ids=["futures", "mark", "funding"],
)
def test_missing_futures_file_names_it_and_lists_what_is_there(
    tmp_path, datadir, loader, file, what
):
    folder = _futures_dir(tmp_path)
    for name in (
        "ETH_USDT_USDT-1h-futures",
        "ETH_USDT_USDT-1h-mark",
        "ETH_USDT_USDT-1h-funding_rate",
    ):
        source = datadir / "binance" / "futures" / f"{name}.feather"
        (folder / f"{name}.feather").write_bytes(source.read_bytes())
    with pytest.raises(PairNotFoundError) as err:
        loader(tmp_path)
    message = str(err.value)
    assert message.startswith(what) and str(folder / file) in message
    assert message.endswith("in " + str(folder) + ": ETH/USDT:USDT.")
    assert "\n" not in message


def test_bad_candle_type_is_refused(datadir):
    with pytest.raises(
        ValueError, match=r"candle_type must be one of \('spot', 'futures', 'mark'\)"
    ):
        load_candles("BTC/USDT:USDT", "1h", datadir=datadir, candle_type="index")


@pytest.fixture(scope="module")
def funding(datadir) -> pd.DataFrame:
    path = datadir / "binance" / "futures" / "BTC_USDT_USDT-1h-funding_rate.feather"
    return pd.read_feather(path).iloc[:50].reset_index(drop=True)


MALFORMED_FUNDING = {
    "columns": (
        lambda f: f.rename(columns={"funding_rate": "rate"}),
        r"rule 'columns': got \['date', 'rate'\]; expected exactly \['date', 'funding_rate'\]",
    ),
    "empty": (lambda f: f.iloc[:0], r"rule 'rows': the file has no funding events"),
    "naive dates": (
        lambda f: f.assign(date=f["date"].dt.tz_localize(None)),
        r"rule 'date dtype'",
    ),
    "unsorted": (
        lambda f: f.iloc[[0, 2, 1, *range(3, len(f))]],
        r"row 2 \(date 2019-09-10 16:00:00\+00:00\): rule 'sorted dates'",
    ),
    "duplicate": (
        lambda f: pd.concat([f.iloc[:5], f.iloc[4:]]),
        r"row 5 .*rule 'sorted dates': does not come after",
    ),
    "nan": (
        lambda f: f.assign(funding_rate=f["funding_rate"].where(f.index != 7, np.nan)),
        r"row 7 .*rule 'finite': funding_rate=nan; expected a finite funding rate",
    ),
    "text": (
        lambda f: f.assign(funding_rate=f["funding_rate"].astype(str).where(f.index != 3, "x")),
        r"rule 'numeric': column 'funding_rate' is not numeric",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_FUNDING))
def test_malformed_funding_file_names_file_row_and_rule(tmp_path, funding, case):
    mutate, pattern = MALFORMED_FUNDING[case]
    path = _futures_dir(tmp_path) / "BTC_USDT_USDT-1h-funding_rate.feather"
    mutate(funding.copy()).reset_index(drop=True).to_feather(path)
    with pytest.raises(CandleValidationError, match=pattern) as err:
        load_funding_rates("BTC/USDT:USDT", datadir=tmp_path)
    assert str(err.value).startswith(str(path))


def test_legacy_funding_layout_and_millisecond_dates_read_as_freqtrade_reads_them(
    tmp_path, funding
):
    """Older freqtrade files hold the rate in ``open`` of an OHLCV frame, with Binance's raw event
    timestamps (a few ms after the hour); freqtrade floors them to the second."""
    legacy = pd.DataFrame(
        {
            "date": funding["date"] + pd.Timedelta(milliseconds=7),
            "open": funding["funding_rate"],
            "high": 0.0,
            "low": 0.0,
            "close": 0.0,
            "volume": 0.0,
        }
    )
    legacy.to_feather(_futures_dir(tmp_path) / "BTC_USDT_USDT-1h-funding_rate.feather")
    out = load_funding_rates("BTC/USDT:USDT", datadir=tmp_path)
    pd.testing.assert_frame_equal(out, funding.astype({"date": "datetime64[ns, UTC]"}))


@pytest.mark.parametrize(
    ("candle_type", "mutate", "pattern"),
    [
        ("futures", lambda f: f.assign(volume=0.0), r"rule 'volume all zero'"),
        ("mark", lambda f: f.drop(columns=["close"]), r"rule 'columns': missing \['close'\]"),
        (
            "mark",
            lambda f: f.assign(low=f["low"].where(f.index != 4, -1.0)),
            r"row 4 .*rule 'positive price': low=-1.0",
        ),
    ],
    ids=["futures-zero-volume", "mark-columns", "mark-price"],
)
def test_malformed_futures_and_mark_candles_name_the_file(
    tmp_path, datadir, candle_type, mutate, pattern
):
    name = f"BTC_USDT_USDT-1h-{candle_type}.feather"
    real = pd.read_feather(datadir / "binance" / "futures" / name).iloc[1000:1200]
    path = _futures_dir(tmp_path) / name
    mutate(real.reset_index(drop=True)).to_feather(path)
    with pytest.raises(CandleValidationError, match=pattern) as err:
        load_candles("BTC/USDT:USDT", "1h", datadir=tmp_path, candle_type=candle_type)
    assert str(err.value).startswith(str(path))


def test_corrupt_futures_file_is_a_clear_error(tmp_path):
    path = _futures_dir(tmp_path) / "BTC_USDT_USDT-1h-funding_rate.feather"
    path.write_bytes(b"not a feather file")
    with pytest.raises(CandleValidationError, match="cannot be read as a feather file"):
        load_funding_rates("BTC/USDT:USDT", datadir=tmp_path)
