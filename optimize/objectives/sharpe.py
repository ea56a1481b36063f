"""Sharpe ratio of the out-of-sample daily returns (freqtrade's definition), maximised."""

from optimize.objectives.base import Objective

OBJECTIVE = Objective("sharpe", ("maximize",), lambda m: (m["sharpe"],),
                      "annualised Sharpe ratio of daily returns (freqtrade's definition)")
