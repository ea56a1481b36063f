"""freqtrade side of the project: the FreqAI strategy, the FreqAI LSTM model and their shared rules.

* :mod:`strategy.freqtrade.lstm_strategy` — ``LstmOptunaStrategy``, a FreqAI ``IStrategy`` whose
  feature hooks, target and entry/exit rules call the code the study uses;
* :mod:`strategy.freqtrade.lstm_regressor` — ``LstmOptunaRegressor``, a FreqAI model
  (``BasePyTorchRegressor``) that trains and predicts with :mod:`lstm`;
* :mod:`strategy.freqtrade.replay.signal_replay` — ``SignalReplay``, a strategy that trades given
  signals, alone in its folder (the backtest engine's parity tests run freqtrade with it);
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
REPLAY_STRATEGY = "SignalReplay"
REPLAY_STRATEGY_DIR = PACKAGE_DIR / "replay"
"""Folder holding only the replay strategy (freqtrade imports every file of a strategy folder)."""
SIGNAL_FILE_KEY = "signal_replay_file"
"""Config key naming the feather file of precomputed signals ``SignalReplay`` reads."""
SIGNAL_COLUMNS = ("enter_long", "exit_long", "enter_short", "exit_short")
LEVERAGE_KEY = "replay_leverage"
"""Config key of the leverage ``SignalReplay.leverage()`` returns in futures mode (default 1)."""

__all__ = [
    "LEVERAGE_KEY",
    "MODEL_NAME",
    "PACKAGE_DIR",
    "REPLAY_STRATEGY",
    "REPLAY_STRATEGY_DIR",
    "SIGNAL_COLUMNS",
    "SIGNAL_FILE_KEY",
    "STRATEGY_FILE",
    "STRATEGY_NAME",
]
