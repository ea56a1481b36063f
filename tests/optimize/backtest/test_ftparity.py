"""Parity with freqtrade itself: same real candles, same precomputed signals, same trades.

freqtrade's ``Backtesting`` runs in this process and offline (``optimize.freqtrade.offline``: static
Binance markets, feather data, the replay strategy in ``strategy/freqtrade/replay/``). For each case
the engine gets exactly the candles freqtrade backtested and the same signals; trades must agree in
count, pair, open/close dates, exit reasons and rates, ``profit_ratio`` within 1e-6, and the report
metrics must agree with freqtrade's report.

Not covered here, on purpose: shorts. freqtrade only shorts in futures mode, which needs
funding-rate and mark-price candles and leverage tiers that the embedded spot data does not
have; the engine's short arithmetic is checked by hand-computed cases in ``test_engine.py``.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest

from optimize.backtest.engine import backtest
from optimize.backtest.settings import BacktestSettings
from optimize.data import load_candles
from optimize.freqtrade import offline as ftoffline

# freqtrade 2026.9 still calls pandas APIs that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")

START, END, TIMERANGE = "2024-01-01", "2024-03-02", "20240101-20240301"

CASES = {
    "exit_signals": (("BTC/USDT",), BacktestSettings(stoploss=-0.99), {"exit_signal"}),
    "stoploss": (("BTC/USDT",), BacktestSettings(stoploss=-0.03), {"stop_loss"}),
    "roi_table": (
        ("ETH/USDT",),
        BacktestSettings(
            stoploss=-0.05, minimal_roi={"0": 0.04, "120": 0.02, "360": 0.01, "720": 0}
        ),
        {"roi", "stop_loss"},
    ),
    "trailing_stop": (
        ("BTC/USDT",),
        BacktestSettings(stoploss=-0.05, trailing_stop=True),
        {"trailing_stop_loss"},
    ),
    "trailing_positive_offset": (
        ("ETH/USDT",),
        BacktestSettings(
            stoploss=-0.03,
            minimal_roi={"0": 0.04, "360": 0.01},
            trailing_stop=True,
            trailing_stop_positive=0.01,
            trailing_stop_positive_offset=0.02,
            trailing_only_offset_is_reached=True,
        ),
        {"trailing_stop_loss", "roi", "stop_loss"},
    ),
    "two_pairs_one_slot": (
        ("BTC/USDT", "ETH/USDT"),
        BacktestSettings(stoploss=-0.04, minimal_roi={"0": 0.05, "240": 0.01}, max_open_trades=1),
        {"exit_signal", "roi", "stop_loss"},
    ),
    "three_pairs_two_slots": (
        ("BTC/USDT", "ETH/USDT", "SOL/USDT"),
        BacktestSettings(
            stoploss=-0.04,
            minimal_roi={"0": 0.05, "240": 0.01},
            max_open_trades=2,
            trailing_stop=True,
            trailing_stop_positive=0.01,
            trailing_stop_positive_offset=0.015,
        ),
        {"exit_signal", "roi", "trailing_stop_loss"},
    ),
}
METRIC_KEYS = (
    "total_trades",
    "profit_total",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_account",
    "winrate",
    "profit_factor",
    "expectancy",
    "final_balance",
)


@dataclasses.dataclass(frozen=True)
class Parity:
    ours: pd.DataFrame
    theirs: pd.DataFrame
    our_metrics: dict
    their_stats: dict
    reasons: set


@pytest.fixture(scope="module")
def markets():
    return ftoffline.load_markets()


@pytest.fixture(scope="module", params=list(CASES))
def parity(request, markets, datadir, tmp_path_factory) -> Parity:
    pairs, settings, reasons = CASES[request.param]
    rng = np.random.default_rng(list(CASES).index(request.param) + 11)
    candles = {p: load_candles(p, "1h", datadir=datadir, start=START, end=END) for p in pairs}
    enter = {p: rng.random(len(c)) < 0.08 for p, c in candles.items()}
    exit_ = {p: rng.random(len(c)) < 0.05 for p, c in candles.items()}
    signal_file = tmp_path_factory.mktemp(request.param) / "signals.feather"
    ftoffline.save_signals(signal_file, candles, {"enter_long": enter, "exit_long": exit_})
    config = ftoffline.freqtrade_config(
        list(pairs), settings, **{ftoffline.SIGNAL_FILE_KEY: str(signal_file)}
    )
    ft = ftoffline.run_replay_backtest(
        config, datadir=datadir, timerange=TIMERANGE, markets=markets
    )

    def aligned(signals):
        return {
            p: pd.Series(signals[p], index=candles[p]["date"])
            .reindex(ft.candles[p]["date"])
            .to_numpy(bool)
            for p in pairs
        }

    ours = backtest(
        ft.candles,
        aligned(enter),
        aligned(exit_),
        settings=dataclasses.replace(
            settings, amount_precision=ftoffline.amount_precisions(markets, list(pairs))
        ),
    )
    key = ["open_date", "pair"]
    return Parity(
        ours=ours.trades.sort_values(key).reset_index(drop=True),
        theirs=ft.trades.sort_values(key).reset_index(drop=True),
        our_metrics=ours.metrics,
        their_stats=ft.stats,
        reasons=reasons,
    )


def test_same_trades(parity):
    ours, theirs = parity.ours, parity.theirs
    assert len(theirs) > 20
    assert len(ours) == len(theirs)
    for col in ("pair", "exit_reason", "is_short"):
        assert ours[col].tolist() == theirs[col].tolist(), col
    for col in ("open_date", "close_date"):
        assert (
            ours[col].to_numpy() == pd.DatetimeIndex(theirs[col]).as_unit("ns").to_numpy()
        ).all()
    np.testing.assert_allclose(ours["profit_ratio"], theirs["profit_ratio"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours["open_rate"], theirs["open_rate"], rtol=1e-12)
    np.testing.assert_allclose(ours["close_rate"], theirs["close_rate"], rtol=1e-12)
    np.testing.assert_allclose(ours["amount"], theirs["amount"], rtol=1e-12)
    np.testing.assert_allclose(ours["profit_abs"], theirs["profit_abs"], rtol=0, atol=1e-6)


def test_case_exercises_its_exit_rules(parity):
    assert parity.reasons <= set(parity.theirs["exit_reason"])


def test_same_report_metrics(parity):
    for key in METRIC_KEYS:
        assert parity.our_metrics[key] == pytest.approx(
            parity.their_stats[key], rel=1e-6, abs=1e-9
        ), key


def test_offline_markets_patch_is_scoped(markets):
    from freqtrade.exchange.exchange import Exchange

    original = Exchange._api_reload_markets
    with ftoffline.offline_markets(markets):
        assert Exchange._api_reload_markets is not original
    assert Exchange._api_reload_markets is original


def test_markets_file_and_harness_errors(markets, tmp_path, datadir):
    assert {"BTC/USDT", "ETH/USDT", "SOL/USDT"} <= set(markets)
    assert ftoffline.amount_precisions(markets, ["BTC/USDT"]) == {"BTC/USDT": 1e-05}
    with pytest.raises(ValueError, match="no market for"):
        ftoffline.amount_precisions(markets, ["DOGE/USDT"])
    with pytest.raises(ValueError, match="signal names"):
        ftoffline.save_signals(tmp_path / "s.feather", {}, {"buy": {}})
    config = ftoffline.freqtrade_config(["BTC/USDT"])
    with pytest.raises(ValueError, match="exchange folder"):
        ftoffline.run_freqtrade_backtest(config, ftoffline.REPLAY_STRATEGY, datadir=tmp_path)
    with pytest.raises(ValueError, match=ftoffline.SIGNAL_FILE_KEY):
        ftoffline.run_replay_backtest(config, datadir=datadir)
    bad = tmp_path / "markets.json"
    bad.write_text('{"markets": {}}')
    with pytest.raises(ValueError, match="markets"):
        ftoffline.load_markets(bad)


def test_replay_strategy_rereads_a_rewritten_signal_file(tmp_path):
    from strategy.freqtrade.replay import signal_replay

    path = tmp_path / "signals.feather"
    candles = {
        "BTC/USDT": pd.DataFrame({"date": pd.date_range("2024-01-01", periods=3, freq="1h")})
    }
    ftoffline.save_signals(path, candles, {"enter_long": {"BTC/USDT": [1, 0, 0]}})
    assert signal_replay._signals(str(path))["enter_long"].tolist() == [1, 0, 0]
    first = os.stat(path).st_mtime_ns
    ftoffline.save_signals(path, candles, {"enter_long": {"BTC/USDT": [0, 1, 1]}})
    os.utime(path, ns=(first + 10**9, first + 10**9))  # a later version, whatever the clock
    assert signal_replay._signals(str(path))["enter_long"].tolist() == [0, 1, 1]
