"""Objectives as plug-ins: built-ins and user files in ``study.objectives_path``, one interface."""

from __future__ import annotations

import textwrap

import optuna
import pytest
import yaml

from optimize.backtest.engine import backtest
from optimize.backtest.settings import BacktestSettings
from optimize.config import ConfigError, load_config, parse_config
from optimize.data import load_candles
from optimize.search.objectives import OBJECTIVES, available_objectives, get_objective
from optimize.search.objectives.base import Objective
from optimize.search.space import load_space
from optimize.study.runner import open_study, run_worker
from tests.conftest import SMOKE_CONFIG, SMOKE_SPACE


def _write(folder, name: str, body: str):
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def _doubled_profit(folder, name: str):
    return _write(
        folder,
        name,
        f"""\
        from optimize.search.objectives.base import Objective

        OBJECTIVE = Objective(
            {name!r}, ("maximize",), lambda m: (2 * m["profit_total"],), "twice the profit"
        )
        """,
    )


def test_builtins_are_discovered_from_the_package():
    assert set(OBJECTIVES) == {
        "sharpe",
        "sortino",
        "calmar",
        "profit",
        "profit_drawdown",
        "return_drawdown",
    }
    assert all(isinstance(o, Objective) and o.name == n for n, o in OBJECTIVES.items())
    assert get_objective("sharpe") is OBJECTIVES["sharpe"]


def test_a_user_objective_is_found_by_name_and_scores_a_real_backtest(tmp_path, datadir):
    folder = tmp_path / "objectives"
    _doubled_profit(folder, "twice_profit")
    assert "twice_profit" in available_objectives(folder)
    objective = get_objective("twice_profit", folder)
    assert objective.name == "twice_profit" and objective.directions == ("maximize",)
    candles = load_candles("BTC/USDT", "1h", datadir=datadir, start="2024-01-01", end="2024-03-01")
    enter = (candles.index % 17) == 0
    exit_ = (candles.index % 11) == 0
    metrics = backtest(candles, enter, exit_, settings=BacktestSettings()).metrics
    assert metrics["total_trades"] > 0
    assert objective(metrics) == (2 * metrics["profit_total"],)
    # no process-wide registry: without its folder the name is unknown, however often it loaded
    with pytest.raises(ConfigError, match="but got objective='twice_profit'"):
        get_objective("twice_profit")


def test_the_run_config_loads_a_user_objective_for_the_study(tmp_path):
    folder = tmp_path / "objectives"
    _write(
        folder,
        "gain_and_pain",
        """\
        from optimize.search.objectives.base import Objective

        OBJECTIVE = Objective(
            "gain_and_pain",
            ("maximize", "minimize"),
            lambda m: (m["profit_total"], m["max_drawdown_account"]),
            "profit and drawdown",
        )
        """,
    )
    run = tmp_path / "run.yaml"
    study = {"objective": "gain_and_pain", "objectives_path": str(folder), "pruner": "none"}
    run.write_text(yaml.safe_dump({"study": study}))
    config = load_config(run)
    assert config.study.objectives_path == str(folder)
    assert parse_config(config.to_dict(), "roundtrip").to_dict() == config.to_dict()
    # the config holds the objective it resolved; the study takes it from there
    assert config.study.resolved_objective.directions == ("maximize", "minimize")
    opened = open_study(
        f"sqlite:///{tmp_path / 'study.db'}",
        "user-objective",
        config,
        load_space(SMOKE_SPACE),
        seed=1,
    )
    assert [d.name for d in opened.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert opened.user_attrs["objective"] == "gain_and_pain"


def test_a_wrong_name_lists_the_available_objectives(tmp_path):
    folder = tmp_path / "objectives"
    _doubled_profit(folder, "listed_one")
    with pytest.raises(ValueError, match=r"objective must be one of \[.*\], but got") as err:
        get_objective("no_such_objective", folder)
    for name in ("listed_one", *OBJECTIVES):
        assert repr(name) in str(err.value)
    with pytest.raises(ValueError, match=r"'sharpe'.*but got objective='no_such_objective'"):
        get_objective("no_such_objective")


def test_a_file_without_the_objective_names_the_file(tmp_path):
    folder = tmp_path / "objectives"
    path = _write(folder, "forgot_it", "def score(metrics):\n    return metrics['sharpe']\n")
    with pytest.raises(TypeError, match="must define OBJECTIVE") as err:
        get_objective("forgot_it", folder)
    assert str(path) in str(err.value)
    path = _write(
        folder,
        "misnamed",
        "from optimize.search.objectives import OBJECTIVES\nOBJECTIVE = OBJECTIVES['sharpe']\n",
    )
    with pytest.raises(ValueError, match=r"named like the file, 'misnamed'.*'sharpe'") as err:
        get_objective("misnamed", folder)
    assert str(path) in str(err.value)


def test_a_user_file_may_not_shadow_a_builtin(tmp_path):
    folder = tmp_path / "objectives"
    path = _doubled_profit(folder, "sharpe")
    with pytest.raises(ValueError, match="built-in objective 'sharpe'") as err:
        get_objective("sharpe", folder)
    assert str(path) in str(err.value)


def test_the_config_checks_the_objectives_path(tmp_path):
    run = tmp_path / "run.yaml"
    missing = tmp_path / "nowhere"
    run.write_text(yaml.safe_dump({"study": {"objectives_path": str(missing)}}))
    with pytest.raises(ConfigError, match=r"study: objectives_path must be a folder") as err:
        load_config(run)
    assert f"objectives_path={str(missing)!r}" in str(err.value)
    run.write_text(
        yaml.safe_dump({"study": {"objective": "elsewhere", "objectives_path": str(tmp_path)}})
    )
    with pytest.raises(
        ConfigError, match=r"objective must be one of .* but got objective='elsewhere'"
    ):
        load_config(run)


def test_a_user_objective_scores_a_real_study_trial(tmp_path):
    folder = tmp_path / "objectives"
    _write(
        folder,
        "shifted_profit",
        """\
        from optimize.search.objectives.base import Objective

        OBJECTIVE = Objective(
            "shifted_profit", ("maximize",), lambda m: (3 * m["profit_total"] - 1,), "3 p - 1"
        )
        """,
    )
    raw = yaml.safe_load(SMOKE_CONFIG.read_text())
    raw["study"] = {**raw["study"], "objective": "shifted_profit", "pruner": "none"}
    raw["study"]["objectives_path"] = str(folder)
    raw["training"] = {**raw["training"], "cache_dir": str(tmp_path / "cache")}
    config = parse_config(raw, "user-objective-smoke")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    run_worker(config, load_space(SMOKE_SPACE), storage=storage, study_name="u", n_trials=1)
    trial = optuna.load_study(study_name="u", storage=storage).trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.value == 3 * trial.user_attrs["oos_metrics"]["profit_total"] - 1
