"""lstm-optuna: joint Optuna search of an LSTM and the 'dynamic weighting and aggregate scoring'
strategy, scored by walk-forward backtests, exported to freqtrade."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lstm-optuna")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
