"""Sharpe ratio of the out-of-sample trades (freqtrade's trade-based definition), maximised."""

from optimize.search.objectives.base import Objective

OBJECTIVE = Objective(
    "sharpe",
    ("maximize",),
    lambda m: (m["sharpe"],),
    "Sharpe ratio of per-trade returns (their sum per day / their std "
    "* sqrt(365), freqtrade's definition)",
)
