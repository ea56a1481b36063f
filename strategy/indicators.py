"""The seed strategy's TA-Lib indicators (pure: candles in, columns out, no I/O).

Seed 001/002 compute, on the strategy's timeframe:

=============  ===========================================================  ===============
column         TA-Lib call (as the seed writes it)                          notes
=============  ===========================================================  ===============
ma             SMA(close, 10)
roc            ROC(close, 2)
macd           MACD(close, slowperiod=12, fastperiod=26)[0]                 seed's swapped
                                                                            periods; TA-Lib
                                                                            swaps them back
momentum       MOM(close, 4)
rsi            RSI(close, 10)
bb_*           BBANDS(close, 20)  (2 std, SMA)
cci            CCI(high, low, close, 20)
stoch          STOCH(high, low, close)["slowk"]  (TA-Lib defaults 5/3/3)   the seed's text
                                                                            says 14; its code
                                                                            uses the defaults
atr            ATR(high, low, close, 14)
obv            OBV(close, volume)
ma_100         SMA(close, 100)
=============  ===========================================================  ===============

Every value at row ``t`` depends on rows ``<= t`` only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib

INDICATOR_COLUMNS = (
    "ma",
    "roc",
    "macd",
    "momentum",
    "rsi",
    "bb_upperband",
    "bb_middleband",
    "bb_lowerband",
    "cci",
    "stoch",
    "atr",
    "obv",
    "ma_100",
)


def _ohlcv(candles: pd.DataFrame) -> tuple[np.ndarray, ...]:
    missing = [c for c in ("high", "low", "close", "volume") if c not in candles.columns]
    if missing:
        raise KeyError(
            f"candles lack the columns {missing}; expected date, open, high, low, close, volume."
        )
    return tuple(
        np.ascontiguousarray(candles[c].to_numpy(dtype=np.float64))
        for c in ("high", "low", "close", "volume")
    )


def seed_indicators(candles: pd.DataFrame) -> pd.DataFrame:
    """Compute the seed's raw indicators.

    Args:
        candles: one pair's candles (columns high, low, close, volume; any index).

    Returns:
        DataFrame with :data:`INDICATOR_COLUMNS`, same index as ``candles``; NaN in each
        indicator's warm-up.
    """
    high, low, close, volume = _ohlcv(candles)
    macd, _, _ = talib.MACD(close, slowperiod=12, fastperiod=26)
    upper, middle, lower = talib.BBANDS(close, timeperiod=20)
    slowk, _ = talib.STOCH(high, low, close)
    cols = {
        "ma": talib.SMA(close, timeperiod=10),
        "roc": talib.ROC(close, timeperiod=2),
        "macd": macd,
        "momentum": talib.MOM(close, timeperiod=4),
        "rsi": talib.RSI(close, timeperiod=10),
        "bb_upperband": upper,
        "bb_middleband": middle,
        "bb_lowerband": lower,
        "cci": talib.CCI(high, low, close, timeperiod=20),
        "stoch": slowk,
        "atr": talib.ATR(high, low, close, timeperiod=14),
        "obv": talib.OBV(close, volume),
        "ma_100": talib.SMA(close, timeperiod=100),
    }
    return pd.DataFrame(cols, index=candles.index)
