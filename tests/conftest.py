"""Shared fixtures: the embedded real candles (never synthetic prices)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EMBEDDED_DATADIR = REPO_ROOT / "data"


@pytest.fixture(scope="session")
def datadir() -> Path:
    """The embedded freqtrade-layout data directory (``data/binance/*.feather``)."""
    return EMBEDDED_DATADIR
