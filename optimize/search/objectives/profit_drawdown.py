"""Profit minus max drawdown (both ratios of the account), maximised: a drawdown-aware return."""

from optimize.search.objectives.base import Objective

OBJECTIVE = Objective(
    "profit_drawdown",
    ("maximize",),
    lambda m: (m["profit_total"] - m["max_drawdown_account"],),
    "profit_total - max_drawdown_account",
)
