"""One hierarchy: every error class of the project is a ``ProjectError``, keeps the built-in base
its callers catch, and says how the command line exits."""

from __future__ import annotations

import ast
import importlib
import signal
from pathlib import Path

import pytest

from base.errors import (
    ConfigError,
    DataError,
    ExportError,
    InputError,
    Interrupted,
    OutputError,
    ProjectError,
    SignalReceived,
    StorageError,
    StudyError,
)
from tests.test_layers import REPO_ROOT, module_name

PACKAGES = ("base", "lstm", "strategy", "optimize")


def defined_exception_classes() -> dict[str, type]:
    """Every class defined in the project's packages that derives from ``BaseException``."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            names = [n.name for n in tree.body if isinstance(n, ast.ClassDef) and n.bases]
            if not names:
                continue
            module = importlib.import_module(module_name(REPO_ROOT, Path(path)))
            for name in names:
                cls = getattr(module, name)
                if isinstance(cls, type) and issubclass(cls, BaseException):
                    found[f"{module.__name__}.{name}"] = cls
    return found


def test_every_project_error_is_a_project_error():
    classes = defined_exception_classes()
    assert len(classes) >= 15, sorted(classes)
    outside = [
        name
        for name, cls in classes.items()
        if not issubclass(cls, ProjectError) and cls is not SignalReceived
    ]
    assert outside == []


@pytest.mark.parametrize(
    "path, bases",
    [
        ("optimize.config.ConfigError", (ValueError, ConfigError)),
        ("optimize.search.space.SearchSpaceError", (ValueError, ConfigError)),
        ("optimize.data.CandleValidationError", (ValueError, DataError)),
        ("optimize.data.PairNotFoundError", (FileNotFoundError, DataError)),
        ("optimize.study.storage.StorageError", (ValueError, StorageError)),
        ("optimize.study.records.RecordError", (ValueError, StudyError)),
        ("optimize.study.runner.StudyInputError", (ValueError, InputError)),
        ("base.checks.WrongTypeError", (TypeError, ValueError, InputError)),
        ("optimize.study.supervisor.RobustnessInterrupted", (ValueError,)),
    ],
)
def test_existing_errors_keep_the_bases_their_callers_catch(path, bases):
    module, name = path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, ProjectError)
    for base in bases:
        assert issubclass(cls, base), (cls, base)


def test_kinds_and_exit_codes():
    for kind in (ConfigError, DataError, StorageError, StudyError, ExportError):
        assert issubclass(kind, InputError) and issubclass(kind, ValueError)
        assert kind("x").exit_code == 2
    assert issubclass(OutputError, OSError) and OutputError("x").exit_code == 2
    assert Interrupted(signal.SIGINT).exit_code == 130
    assert Interrupted(signal.SIGTERM).exit_code == 143
    assert str(Interrupted(signal.SIGTERM)) == "interrupted by SIGTERM"
    # a signal on its way out is no Exception (third-party code cannot swallow it) ...
    assert not issubclass(SignalReceived, Exception)
    assert not issubclass(SignalReceived, KeyboardInterrupt)  # Lightning: sys.exit(1)
    # ... and becomes the error the command line reports
    assert SignalReceived(signal.SIGINT).as_error().exit_code == 130


def test_the_value_checks_raise_project_errors():
    from base.checks import check_int, check_number

    with pytest.raises(InputError, match=r"n must be an integer >= 1, but got n=0\."):
        check_int("n", 0, 1)
    with pytest.raises(InputError) as err:
        check_number("x", "1")
    assert isinstance(err.value, TypeError)
