"""freqtrade timeframe strings (``5m``, ``1h``, ``4h``, ``1d``, ``1w``) as seconds and
Timedeltas."""

from __future__ import annotations

import re

import pandas as pd

from base.errors import InputError

__all__ = ["timeframe_to_seconds", "timeframe_to_timedelta"]

_TIMEFRAME_RE = re.compile(r"^(\d+)([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def timeframe_to_seconds(timeframe: str) -> int:
    """Convert a freqtrade timeframe string (``5m``, ``1h``, ``4h``, ``1d``, ``1w``) to seconds.

    Raises:
        ValueError: for anything else (months are not supported: they have no fixed length).
    """
    match = _TIMEFRAME_RE.match(str(timeframe))
    if match is None or int(match.group(1)) <= 0:
        raise InputError(
            f"timeframe must look like '5m', '1h', '4h', '1d' or '1w', but got {timeframe=!r}."
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def timeframe_to_timedelta(timeframe: str) -> pd.Timedelta:
    """Convert a freqtrade timeframe string to a :class:`pandas.Timedelta`."""
    return pd.Timedelta(seconds=timeframe_to_seconds(timeframe))
