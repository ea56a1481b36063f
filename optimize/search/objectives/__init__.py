"""Study objectives: small plug-ins behind one interface, one per file.

Each file defines ``OBJECTIVE``, an :class:`~optimize.search.objectives.base.Objective` — a pure
function of a backtest's metrics dict — named like the file (``sharpe.py`` defines ``"sharpe"``).
The same function scores each fold (reported to the pruner) and the concatenated out-of-sample
result (the trial's value).

The built-ins are the files of this package. A study adds its own from a folder named in the run
config (``study.objectives_path``), like freqtrade's hyperopt losses: ``<folder>/<name>.py`` is
loaded when ``study.objective: <name>`` asks for it. There is no registry: :func:`get_objective`
resolves a name from the built-ins and the folder it is given, every time, and the run config
resolves its objective once, when it is validated (:attr:`optimize.config.StudyConfig.
resolved_objective`); code that scores trials takes the objective from the config.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path

from base.checks import WrongTypeError
from base.errors import ConfigError
from optimize.search.objectives.base import Objective, finite

_NOT_OBJECTIVES = frozenset({"base"})
"""Modules of this package that are not objectives."""


def _builtins() -> dict[str, Objective]:
    found = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name in _NOT_OBJECTIVES or module.name.startswith("_"):
            continue
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        found[module.name] = _checked(loaded, module.name, f"{module.name}.py")
    return found


def _checked(module: object, name: str, where: str) -> Objective:
    """The module's ``OBJECTIVE``, checked to be an :class:`Objective` named ``name``."""
    objective = getattr(module, "OBJECTIVE", None)
    if not isinstance(objective, Objective):
        got = "nothing" if objective is None else type(objective).__name__
        raise WrongTypeError(
            f"objective file {where} must define OBJECTIVE, an "
            f"optimize.search.objectives.Objective named {name!r} (see "
            f"optimize/search/objectives/sharpe.py), but got OBJECTIVE={got}."
        )
    if objective.name != name:
        raise ConfigError(
            f"objective file {where} must define an Objective named like the file, {name!r}, but "
            f"got OBJECTIVE.name={objective.name!r}."
        )
    return objective


OBJECTIVES: dict[str, Objective] = _builtins()
"""The built-in objectives by name."""


def user_objective_names(path: Path | str | None) -> list[str]:
    """Names of the objective files in ``path`` (``*.py`` not starting with ``_``), sorted."""
    if path is None:
        return []
    return sorted(p.stem for p in Path(path).glob("*.py") if not p.stem.startswith("_"))


def available_objectives(path: Path | str | None = None) -> list[str]:
    """Every name :func:`get_objective` accepts with ``path``: the built-ins and the files there."""
    return sorted({*OBJECTIVES, *user_objective_names(path)})


def load_objective_file(file: Path | str) -> Objective:
    """Load one user objective file (``<name>.py`` defining ``OBJECTIVE``); each call executes the
    file again.

    Raises:
        WrongTypeError: the file does not define ``OBJECTIVE`` as an :class:`Objective`.
        ConfigError: the objective is not named like the file, or the name is a built-in's.
    """
    file = Path(file).resolve()
    name = file.stem
    if name in OBJECTIVES:
        raise ConfigError(
            f"objective file {file} has the name of the built-in objective {name!r}; rename it."
        )
    spec = importlib.util.spec_from_file_location(f"optimize_user_objectives.{name}", file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"objective file {file} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return _checked(module, name, str(file))


def get_objective(name: str, path: Path | str | None = None) -> Objective:
    """Resolve an objective by name: a built-in, or the file ``<path>/<name>.py``.

    Args:
        name: the objective's name (``study.objective``).
        path: folder of user objective files (``study.objectives_path``); None: built-ins only.

    Raises:
        ConfigError: unknown name (the available ones are listed).
        WrongTypeError, ConfigError: a user file that does not define the objective properly (see
            :func:`load_objective_file`; the message names the file).
    """
    if name in OBJECTIVES:
        if path is not None and (Path(path) / f"{name}.py").is_file():
            load_objective_file(Path(path) / f"{name}.py")  # raises: shadows a built-in
        return OBJECTIVES[name]
    if path is not None and (Path(path) / f"{name}.py").is_file():
        return load_objective_file(Path(path) / f"{name}.py")
    raise ConfigError(
        f"objective must be one of {available_objectives(path)}, but got objective={name!r}."
    )


__all__ = [
    "OBJECTIVES",
    "Objective",
    "available_objectives",
    "finite",
    "get_objective",
    "load_objective_file",
]
