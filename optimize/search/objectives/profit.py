"""Total profit ratio over the starting balance, maximised."""

from optimize.search.objectives.base import Objective

OBJECTIVE = Objective(
    "profit", ("maximize",), lambda m: (m["profit_total"],), "total profit / starting balance"
)
