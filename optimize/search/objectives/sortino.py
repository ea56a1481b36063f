"""Sortino ratio of the out-of-sample trades (freqtrade's trade-based definition), maximised."""

from optimize.search.objectives.base import Objective

OBJECTIVE = Objective(
    "sortino",
    ("maximize",),
    lambda m: (m["sortino"],),
    "Sortino ratio of per-trade returns (their sum per day / the std of the "
    "losing ones * sqrt(365), freqtrade's definition)",
)
