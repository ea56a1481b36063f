"""The installed version of lstm-optuna (``0+unknown`` from a source tree that is not installed)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lstm-optuna")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
