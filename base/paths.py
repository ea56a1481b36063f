"""Where the project's shipped files are, and how a path given by a user is resolved.

The run configs (``configs/*.yaml``), the search spaces (``search_spaces/*.yaml``), the embedded
markets files (``configs/markets/``) and the FreqAI config template (``configs/freqtrade/``) ship
with the package. A source checkout reads its own ``configs/`` and ``search_spaces/`` folders; an
installed package (``pip install .``, not editable) reads its copies, which ``pyproject.toml``
installs as package data of :mod:`base` (``base/_configs/``, ``base/_search_spaces/``): nothing
needs the source tree at run time. :func:`shipped` finds a shipped file either way.

:func:`resolve_path` is how every path of a run config or command line is read: as given when it
exists (absolute, or relative to the current directory), else the shipped copy (so
``--config configs/smoke.yaml`` works from any directory), else, in a source checkout, relative
to the checkout (the embedded candles, ``data/``).

This module sits on the project's floor: it imports nothing of the project.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["SHIPPED", "resolve_path", "shipped", "shipped_folder", "source_root"]

SHIPPED = {"configs": "_configs", "search_spaces": "_search_spaces"}
"""Shipped folders: the name in a source checkout (and in paths users write) -> the name of the
installed copy inside the :mod:`base` package."""


def source_root() -> Path | None:
    """The source checkout this code runs from (the folder with ``pyproject.toml``, ``configs/``
    and ``base/``); None when the package is installed."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "configs").is_dir():
        return root
    return None


def shipped_folder(name: str) -> Path:
    """The shipped folder ``name`` (``"configs"`` or ``"search_spaces"``): the installed copy when
    there is one, else the source checkout's.

    Raises:
        KeyError: ``name`` is not a shipped folder.
    """
    installed = importlib.resources.files("base") / SHIPPED[name]
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    root = source_root()
    return installed if root is None else root / name  # type: ignore[return-value]


def shipped(relative: str | Path) -> Path:
    """A shipped file, written as in the source tree (``"configs/markets/binance_spot.json"``).

    Raises:
        KeyError: the path does not start with a shipped folder.
    """
    parts = Path(relative).parts
    return shipped_folder(parts[0]).joinpath(*parts[1:])


def resolve_path(value: str | Path) -> Path:
    """A path a user gave: as given when it is absolute or exists (relative to the current
    directory), else the shipped copy of ``configs/...`` or ``search_spaces/...`` when there is
    one, else relative to the source checkout (unchanged when the package is installed: a
    missing file is then reported under the name given)."""
    path = Path(value)
    if path.is_absolute() or path.exists():
        return path
    if path.parts and path.parts[0] in SHIPPED:
        copy = shipped(path)
        if copy.exists():
            return copy
    root = source_root()
    return path if root is None else root / path
