"""Futures from the study to freqtrade: a small study of the embedded perpetuals trading both
directions with a searched leverage and the seed's exits, its markets file saved by the `markets`
command's code path, exported and backtested by freqtrade's own FreqAI in futures mode
(in-process, offline, real futures candles, mark candles and funding rates): every trade matched
with its side, shorts among them, profits and funding fees equal. A pair missing from the markets
file is one line before any study exists; the same study with a file that has the pair runs and
verifies. The report shows the sides and the funding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from freqtrade.configuration import Configuration
from freqtrade.configuration.config_validation import validate_config_consistency
from freqtrade.enums import RunMode
from freqtrade.resolvers import StrategyResolver

from optimize.backtest.futures import load_futures_pair
from optimize.cli import main
from optimize.config import load_config
from optimize.data import load_candles
from optimize.evaluation.inputs import StudyData
from optimize.freqtrade.markets import fetch_markets
from optimize.freqtrade.offline import offline_markets
from optimize.freqtrade.run_setup import read_export
from optimize.markets import (
    FUTURES_MARKETS_FILE,
    MARKETS_FILE,
    load_markets,
    perpetual_markets,
    read_markets,
    save_markets,
)
from optimize.search.space import TrialParams, load_space
from optimize.study.holdout import stored_holdout
from optimize.study.records import TrialRecord, study_config
from optimize.study.runner import run_worker
from strategy.freqtrade import STRATEGY_NAME
from tests.conftest import SMOKE_CONFIG, SMOKE_SPACE

STUDY = "futures"
PAIRS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
SEED_EXITS = {  # the seed's: no stoploss, any profit after 10 hours, trailing 0.1 % from 1.39 %
    "stoploss": -1.0,
    "minimal_roi": {"600": 0},
    "trailing_stop": True,
    "trailing_stop_positive": 0.001,
    "trailing_stop_positive_offset": 0.0139,
    "trailing_only_offset_is_reached": True,
}
PROFIT_TOLERANCE = 1e-6


def _config(folder: Path, markets: Path | None, pairs: list[str] = PAIRS) -> Path:
    """The smoke config (2 pairs, 3 folds of 10 days, a 10-day holdout) on perpetuals."""
    raw = yaml.safe_load(SMOKE_CONFIG.read_text())
    raw["data"].update(pairs=pairs, markets=None if markets is None else str(markets))
    raw["backtest"].update(trading_mode="futures", margin_mode="isolated", fee=0.0005, **SEED_EXITS)
    raw["training"]["cache_dir"] = str(folder / "cache")
    path = folder / f"futures-{len(list(folder.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _space(folder: Path) -> Path:
    """The smoke space trading both directions, leverage 2 or 3, a short side as wide as it
    gets (exit gaps up to 0.8)."""
    raw = yaml.safe_load(SMOKE_SPACE.read_text())
    raw["signal"].update(direction="both", exit_gap={"type": "float", "low": 0.4, "high": 0.8})
    raw["backtest"] = {"leverage": {"type": "categorical", "choices": [2, 3]}}
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("futures-study")


@pytest.fixture(scope="module")
def markets_file(folder) -> Path:
    """The pairs' markets saved by the `markets` command's code path: freqtrade's exchange class
    loads the markets, here served from the embedded file instead of the network."""
    with offline_markets(load_markets(FUTURES_MARKETS_FILE)):
        markets = fetch_markets(PAIRS, "futures", "binance")
    return save_markets(
        folder / "markets.json", markets, exchange="binance", trading_mode="futures"
    )


@pytest.fixture(scope="module")
def storage(folder, markets_file) -> str:
    """A one-trial futures study reading ``markets_file``."""
    url = f"sqlite:///{folder / 'study.db'}"
    run_worker(
        load_config(_config(folder, markets_file)),
        load_space(_space(folder)),
        storage=url,
        study_name=STUDY,
        n_trials=1,
    )
    return url


@pytest.fixture(scope="module")
def study(storage) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=storage)


@pytest.fixture(scope="module")
def exported(storage, folder) -> Path:
    out = folder / "export"
    assert main(["export", "--study-name", STUDY, "--storage", storage, "--out", str(out)]) == 0
    return out


def test_a_saved_markets_file_reads_back_through_the_study_s_loader(markets_file):
    doc = json.loads(markets_file.read_text())
    assert (doc["format"], doc["exchange"], doc["trading_mode"]) == (1, "binance", "futures")
    assert sorted(doc["markets"]) == PAIRS
    markets = read_markets(markets_file, PAIRS, trading_mode="futures")
    embedded = load_markets(FUTURES_MARKETS_FILE)
    assert perpetual_markets(PAIRS, markets) == perpetual_markets(PAIRS, embedded)
    config = load_config(_config(markets_file.parent, markets_file))
    data = StudyData.load(config)
    assert data.markets_file == str(markets_file)
    assert {p: f.market for p, f in data.futures.items()} == perpetual_markets(PAIRS, embedded)


def test_markets_without_the_exchange_is_one_line(tmp_path, capsys):
    """No network here: the command says so in one line and writes nothing."""
    out = tmp_path / "m.json"
    args = ["markets", "--pairs", "BNB/USDT:USDT", "--trading-mode", "futures", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: could not load binance's futures markets (is the exchange ")
    assert not out.exists()


@pytest.mark.parametrize("mode", ["futures", "spot"])
def test_a_pair_missing_from_the_markets_file_is_one_line_before_the_study(tmp_path, capsys, mode):
    pairs = PAIRS if mode == "futures" else ["BTC/USDT", "ETH/USDT"]
    embedded = load_markets(FUTURES_MARKETS_FILE if mode == "futures" else MARKETS_FILE)
    lacking = save_markets(
        tmp_path / "lacking.json",
        {p: m for p, m in embedded.items() if p != pairs[1]},
        exchange="binance",
        trading_mode=mode,
    )
    if mode == "futures":
        config = _config(tmp_path, lacking)
    else:
        raw = yaml.safe_load(SMOKE_CONFIG.read_text())
        raw["data"]["markets"] = str(lacking)
        config = tmp_path / "spot.yaml"
        config.write_text(yaml.safe_dump(raw))
    storage = f"sqlite:///{tmp_path / 's.db'}"
    capsys.readouterr()
    args = ["run", "--config", str(config), "--space", str(SMOKE_SPACE), "--storage", storage]
    assert main([*args, "--study-name", "s", "--n-trials", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert f"no market for {pairs[1]} in the markets file {lacking}" in lines[0]
    assert (
        f"`python -m optimize markets --exchange binance --pairs {pairs[1]} --trading-mode {mode} "
        "--out FILE`" in lines[0]
    )
    assert optuna.study.get_all_study_names(storage) == []


def test_the_study_trades_both_sides_at_its_leverage_with_funding(study):
    record = TrialRecord.of(study.best_trial)
    params = TrialParams.from_dict(record.params)
    assert params.signal.direction == "both" and params.backtest["leverage"] in (2.0, 3.0)
    trades = pd.DataFrame(record.trades)
    assert trades["is_short"].any() and (~trades["is_short"]).any()
    assert (trades["leverage"] == params.backtest["leverage"]).all()
    assert (trades["funding_fees"] != 0).any()
    sides = record.sides_total
    assert (sides.long_trades, sides.short_trades) == (
        int((~trades["is_short"]).sum()),
        int(trades["is_short"].sum()),
    )
    assert sides.funding_paid == pytest.approx(-trades["funding_fees"].sum(), abs=1e-9)
    assert sum(s.long_trades + s.short_trades for s in record.sides) > 0
    # the no-model baseline trades both directions on T itself
    no_model = record.baselines["no_model"]
    assert no_model["long_trades"] > 0 and no_model["short_trades"] > 0


def test_buy_and_hold_is_a_long_at_the_trial_s_leverage_with_funding(study, exported):
    """Each pair's buy-and-hold of the holdout, computed by hand: a long at the trial's leverage
    from the second candle's open to the last candle's open (freqtrade's fill and force exit),
    the whole wallet as margin, both fees, and the funding events in between."""
    config = study_config(study)
    params = TrialParams.from_dict(TrialRecord.of(study.best_trial).params)
    leverage = params.backtest["leverage"]
    record = stored_holdout(study, study.best_trial.number)
    start, end = pd.Timestamp(record.holdout["start"]), pd.Timestamp(record.holdout["end"])
    markets = perpetual_markets(PAIRS)
    wallet, fee = config.backtest.dry_run_wallet, config.backtest.fee
    for pair in PAIRS:
        candles = load_candles(pair, "1h", start=start, end=end, candle_type="futures")
        entry, close = float(candles["open"].iloc[1]), float(candles["open"].iloc[-1])
        step = markets[pair].amount_step
        amount = np.floor(wallet * leverage / entry / step + 1e-9) * step
        dates, fee_per_unit = load_futures_pair(pair, markets[pair]).funding_events
        opened, closed = candles["date"].iloc[1].value, candles["date"].iloc[-1].value
        inside = (dates >= opened) & (dates <= closed)
        funding = -amount * fee_per_unit[inside].sum()  # a long pays a positive rate
        profit = amount * (close - entry) - fee * amount * (entry + close) + funding
        stored = record.baselines["buy_and_hold"]["per_pair"][pair]
        assert stored * wallet == pytest.approx(profit, abs=1e-6 * wallet), pair
        assert inside.any() and funding != 0.0


def test_the_export_is_a_futures_config_freqtrade_accepts(exported, markets_file, study, datadir):
    config = read_export(exported)
    assert (config["trading_mode"], config["margin_mode"]) == ("futures", "isolated")
    assert config["exchange"]["pair_whitelist"] == PAIRS
    assert config["entry_pricing"]["use_order_book"] and config["exit_pricing"]["use_order_book"]
    assert "replay_leverage" not in config
    settings = config["lstm_optuna"]
    assert settings["trading_mode"] == "futures" and settings["markets"] == str(markets_file)
    params = TrialParams.from_dict(TrialRecord.of(study.best_trial).params)
    file = json.loads((exported / "strategy" / f"{STRATEGY_NAME}.json").read_text())
    assert file["params"]["futures"] == {
        "trade_direction": "both",
        "trade_leverage": params.backtest["leverage"],
    }
    assert file["params"]["stoploss"] == {"stoploss": -1.0}
    assert file["params"]["roi"] == {"600": 0.0}
    args = {
        "config": [str(exported / "config.json")],
        "datadir": str(datadir / "binance"),
        "strategy": STRATEGY_NAME,
        "strategy_path": str(exported / "strategy"),
        "timerange": settings["holdout"]["timerange"],
    }
    from optimize.freqtrade.offline import preserved_logging

    with preserved_logging():
        ft_config = Configuration(args, RunMode.BACKTEST).get_config()
        strategy = StrategyResolver.load_strategy(ft_config)
    validate_config_consistency(ft_config)
    strategy.ft_load_hyper_params(False)
    assert strategy.can_short and strategy.trade_direction.value == "both"
    lev = strategy.leverage(PAIRS[0], None, 1.0, 1.0, 125.0, None, "short")
    assert lev == params.backtest["leverage"]


@pytest.mark.parametrize("span", ["walkforward", "holdout"])
def test_freqtrade_makes_every_study_trade_with_its_side(exported, study, span, capsys):
    capsys.readouterr()
    rc = main(["verify", "--export", str(exported), "--span", span, "--strict", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0, doc["mismatches"]
    assert doc["trades"]["study_only"] == doc["trades"]["freqtrade_only"] == 0
    n = doc["trades"]["matched"]
    assert n > 0 and doc["study"]["total_trades"] == doc["freqtrade"]["total_trades"] == n
    assert abs(doc["study"]["profit_total"] - doc["freqtrade"]["profit_total"]) <= PROFIT_TOLERANCE
    for key in ("long_trades", "short_trades"):
        assert doc["study"][key] == doc["freqtrade"][key], key
    assert doc["study"]["short_trades"] > 0  # shorts among the matched trades
    assert doc["study"]["funding_paid"] == pytest.approx(doc["freqtrade"]["funding_paid"], abs=1e-6)
    # trade by trade: side, leverage, profit and funding fees
    from optimize.freqtrade.verify import verify_export

    result = verify_export(exported, span=span)
    assert result.all_match and len(result.matched) == n
    assert any(t["is_short"] for t in result.matched)
    for t in result.matched:
        assert t["leverage_study"] == t["leverage_freqtrade"]
        assert t["funding_fees_study"] == pytest.approx(t["funding_fees_freqtrade"], abs=1e-9)
        assert t["profit_abs_study"] == pytest.approx(t["profit_abs_freqtrade"], abs=1e-6)
    assert any(t["funding_fees_study"] != 0 for t in result.matched)


def test_the_report_shows_sides_and_funding(storage, study, tmp_path, capsys):
    capsys.readouterr()
    assert main(["report", "--study-name", STUDY, "--storage", storage, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    record = TrialRecord.of(study.best_trial)
    assert doc["trading"]["trading_mode"] == "futures"
    assert doc["trading"]["direction"] == "both"
    assert doc["sides"]["walkforward"] == record.sides_total.to_dict()
    assert doc["sides"]["folds"] == [s.to_dict() for s in record.sides]
    assert doc["sides"]["holdout"]["short_trades"] >= 0
    out = tmp_path / "report.html"
    assert main(["report", "--study-name", STUDY, "--storage", storage, "--out", str(out)]) == 0
    page = out.read_text()
    for text in ("funding paid", "<th>long</th>", "<th>short</th>", "direction both"):
        assert text in page, text
