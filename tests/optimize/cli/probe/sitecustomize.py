"""Test probe, loaded at start-up by the command-line processes the fault tests start (their
``PYTHONPATH`` names this folder): when ``LSTM_OPTUNA_TEST_FIT_LOG`` is set, every Lightning fit
appends one line (``<pid> fit``) to that file as it starts, so a test can send a signal while a
model is training instead of sleeping blindly. It observes only: the fit itself is unchanged.
"""

import importlib.abc
import importlib.util
import os
import sys

_LOG = os.environ.get("LSTM_OPTUNA_TEST_FIT_LOG")
_MODULE = "lightning.pytorch.trainer.trainer"


def _announce_fits(module) -> None:
    fit = module.Trainer.fit

    def announced_fit(self, *args, **kwargs):
        with open(_LOG, "a") as log:
            log.write(f"{os.getpid()} fit\n")
        return fit(self, *args, **kwargs)

    module.Trainer.fit = announced_fit


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps ``Trainer.fit`` right after Lightning's trainer module is executed."""

    def find_spec(self, name, path, target=None):
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _announce_fits(module)

        spec.loader.exec_module = exec_module
        return spec


if _LOG:
    sys.meta_path.insert(0, _Finder())
