"""The project's one set of value checks, shared by every typed parameter and settings object.

Each check returns the value in its plain Python type or raises with one message naming the key,
what was expected and the value: ``"hidden_dim must be an integer >= 1, but got hidden_dim=0."``.
A bad value raises :class:`base.errors.InputError` (a ``ValueError``); a value of the wrong type
raises :class:`WrongTypeError`, an ``InputError`` that is a ``TypeError`` too (as numpy's
``AxisError`` is both), so callers catching either see every bad value. The
loaders prefix the file and the section with :func:`located`. This module sits on the project's
floor (it imports nothing of the project but :mod:`base.errors`) so that ``lstm``, ``strategy``
and ``optimize`` all use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any, NoReturn

from base.errors import InputError

__all__ = ["WrongTypeError", "check_choice", "check_int", "check_number", "fail", "located"]


class WrongTypeError(InputError, TypeError):
    """A value of the wrong type (for example ``2.0`` or ``True`` where an integer is expected)."""


def fail(name: str, value: Any, expected: str, error: type[Exception] = InputError) -> NoReturn:
    """Raise ``error`` saying that ``name`` must be ``expected`` but got ``value``."""
    raise error(f"{name} must be {expected}, but got {name}={value!r}.")


def located(source: str, where: str, message: object) -> str:
    """The loaders' one-line error: ``"<file>: <section or section.key>: <message>"``."""
    return f"{source}: {where}: {message}"


def check_int(name: str, value: Any, minimum: int | None = None) -> int:
    """An integer (not a bool), ``>= minimum`` unless that is None, as a plain ``int``."""
    expected = "an integer" if minimum is None else f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(name, value, expected, WrongTypeError)
    if minimum is not None and value < minimum:
        fail(name, value, expected)
    return int(value)


def check_number(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number (not a bool) in the interval from ``low`` to ``high``, as a ``float``.

    Args:
        name: the key, as the message names it.
        value: the value to check.
        low, high: the bounds; infinite bounds leave that side open.
        low_open, high_open: exclude the bound itself.
    """
    expected = "a finite number"
    if math.isinf(high) and not math.isinf(low):
        expected += f" {'>' if low_open else '>='} {low}"
    elif not math.isinf(high):
        expected += f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(name, value, expected, WrongTypeError)
    out = float(value)
    too_low = out <= low if low_open else out < low
    too_high = out >= high if high_open else out > high
    if not math.isfinite(out) or too_low or too_high:
        fail(name, value, expected)
    return out


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """One of ``choices``."""
    if value not in choices:
        fail(name, value, f"one of {tuple(choices)}")
    return value
