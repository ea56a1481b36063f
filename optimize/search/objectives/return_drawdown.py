"""Multi-objective: maximise total profit, minimise max drawdown (a Pareto front, no pruning)."""

from optimize.search.objectives.base import Objective

OBJECTIVE = Objective(
    "return_drawdown",
    ("maximize", "minimize"),
    lambda m: (m["profit_total"], m["max_drawdown_account"]),
    "(profit_total, max_drawdown_account), Pareto front",
)
