"""Sortino ratio of the out-of-sample daily returns (freqtrade's definition), maximised."""

from optimize.objectives.base import Objective

OBJECTIVE = Objective("sortino", ("maximize",), lambda m: (m["sortino"],),
                      "annualised Sortino ratio of daily returns (freqtrade's definition)")
