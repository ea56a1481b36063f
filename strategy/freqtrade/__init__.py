"""freqtrade side of the project: the FreqAI strategy, the FreqAI LSTM model and their shared rules.

* :mod:`strategy.freqtrade.lstm_strategy` — ``LstmOptunaStrategy``, a FreqAI ``IStrategy`` whose
  feature hooks, target and entry/exit rules call the code the study uses;
* :mod:`strategy.freqtrade.lstm_regressor` — ``LstmOptunaRegressor``, a FreqAI model
  (``BasePyTorchRegressor``) that trains and predicts with :mod:`lstm`;
* :mod:`strategy.freqtrade.rules` — pure functions both of them (and the export) share: parameter
  names and rounding, thresholds per candle, signals.

freqtrade loads the two classes from files in this folder (``--strategy-path`` /
``--freqaimodel-path``); nothing is copied into freqtrade and freqtrade's code is not modified.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
STRATEGY_NAME = "LstmOptunaStrategy"
MODEL_NAME = "LstmOptunaRegressor"
STRATEGY_FILE = PACKAGE_DIR / "lstm_strategy.py"
MODEL_FILE = PACKAGE_DIR / "lstm_regressor.py"

__all__ = ["MODEL_FILE", "MODEL_NAME", "PACKAGE_DIR", "STRATEGY_FILE", "STRATEGY_NAME"]
