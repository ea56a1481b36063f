"""Calmar ratio (annualised return over max drawdown, freqtrade's definition), maximised."""

from optimize.search.objectives.base import Objective

OBJECTIVE = Objective(
    "calmar",
    ("maximize",),
    lambda m: (m["calmar"],),
    "annualised return / max drawdown (freqtrade's definition)",
)
