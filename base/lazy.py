"""Lazy package faces: a package's ``__init__`` names its public API without importing it.

``import optimize`` (or a sub-package) stays cheap and cannot start an import cycle: a name is
imported from its module the first time it is read (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` of a package face.

    Args:
        package: the package's ``__name__`` (used in error messages).
        exports: public name -> dotted module that defines it.

    Returns:
        The three module attributes; a name not in ``exports`` raises ``AttributeError`` as a
        plain module would.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__, sorted(exports)
