"""Study objectives: small plug-ins behind one interface, one per module.

Each module defines ``OBJECTIVE``, an :class:`~optimize.objectives.base.Objective` — a pure function
of a backtest's metrics dict. The same function scores each fold (reported to the pruner) and the
concatenated out-of-sample result (the trial's value).
"""

from __future__ import annotations

from optimize.objectives import calmar, profit, profit_drawdown, return_drawdown, sharpe, sortino
from optimize.objectives.base import Objective, finite

OBJECTIVES: dict[str, Objective] = {
    m.OBJECTIVE.name: m.OBJECTIVE for m in (sharpe, sortino, calmar, profit, profit_drawdown, return_drawdown)
}


def get_objective(name: str) -> Objective:
    """Look an objective up by name.

    Raises:
        ValueError: unknown name (the known ones are listed).
    """
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, but got objective={name!r}.") from None


__all__ = ["OBJECTIVES", "Objective", "finite", "get_objective"]
