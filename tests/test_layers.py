"""The project's layers point down, package by package and floor by floor inside ``optimize``, and
no import cycles.

Every module's imports are read with :mod:`ast` — at module level and inside functions alike — so a
deferred ``import`` inside a function cannot hide an upward dependency or a cycle. ``base`` (the
floor: errors, value checks, lazy faces, paths, YAML reading) imports no other package of the
project; ``lstm`` may not import ``strategy`` or ``optimize``; ``strategy`` may not import
``optimize``; nothing imports ``benchmarks``. Inside ``optimize`` each sub-package or module is a
floor (:data:`OPTIMIZE_FLOORS`) that may import its own floor and the floors below. Cycles are the
strongly connected components of the module graph (one edge per import statement, to the module it
names), whatever floor they lie on.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("base", "lstm", "strategy", "optimize", "benchmarks")
LAYERS = {"base": 0, "lstm": 1, "strategy": 2, "optimize": 3, "benchmarks": 4}
"""Rank of each top-level package: a module may import modules of its own rank or below
(``benchmarks``, not installed, measures the others; nothing imports it)."""

OPTIMIZE_FLOORS = {
    # the version string: imports nothing.
    "optimize._version": 0,
    # the candles (spot, futures, mark prices, funding rates), read and validated.
    "optimize.data": 1,
    # the walk-forward plan: folds and holdout from candle dates.
    "optimize.walkforward": 2,
    # the engine: candles and signals in, trades and metrics out (futures data from the floor
    # below).
    "optimize.backtest": 2,
    # markets files: the exchange's rules of each pair as the engine takes them.
    "optimize.markets": 3,
    # the search space and the objectives: what a study draws and what it maximises.
    "optimize.search": 4,
    # the run config: sections of the floors below, the objective resolved from the search floor.
    "optimize.config": 5,
    # one parameter set scored (inputs, the fold walk, holdout, scoring): no Optuna.
    "optimize.evaluation": 6,
    # the Optuna side: storage, workers, records, the race, the supervisor of a run.
    "optimize.study": 7,
    # reports on a study: statistics, the verdict, the HTML page.
    "optimize.analysis": 8,
    # what drives freqtrade: export of a study's trial, verification, offline runs.
    "optimize.freqtrade": 9,
    # the command line: arguments, calls into the floors below, what is printed.
    "optimize.cli": 10,
    # the package's public face (it names every floor's API) and ``python -m optimize``.
    "optimize": 11,
    "optimize.__main__": 11,
}
"""Floor of each part of ``optimize`` (a module belongs to the longest entry its name starts
with; ``optimize`` is the package's face alone): a module may import its own floor and those
below. Floors of one rank may import each other
(a cycle is still refused)."""


def rank(module: str) -> tuple[int, int] | None:
    """``(package rank, floor rank inside optimize)`` of a module; None: not the project's."""
    package = LAYERS.get(module.split(".")[0])
    if package is None:
        return None
    if module.split(".")[0] != "optimize":
        return package, 0
    parts = module.split(".")
    for k in range(len(parts), 1, -1):  # "optimize" itself is the face, not every module's floor
        floor = OPTIMIZE_FLOORS.get(".".join(parts[:k]))
        if floor is not None:
            return package, floor
    if module in OPTIMIZE_FLOORS:
        return package, OPTIMIZE_FLOORS[module]
    raise AssertionError(f"{module} lies on no floor of OPTIMIZE_FLOORS: give its part a floor.")


def module_name(root: Path, path: Path) -> str:
    """Dotted module name of ``path`` below ``root`` (``pkg/__init__.py`` -> ``pkg``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every ``*.py`` file of ``packages`` below ``root``, by module name."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """Project modules named by one import statement of ``module``.

    A string constant that is exactly a dotted project module name (``"optimize.cli.export"``)
    counts too: it is how modules are imported by name (``importlib.import_module(name)``, lazy
    export tables). Bare package names are left out: ``"lstm"`` is mostly a dict key.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if "." in node.value and node.value in known else []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return [_owner(name, known) for name in names if _owner(name, known)]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        if sub in known:  # ``from pkg import submodule``
            out.append(sub)
        elif _owner(target, known):
            out.append(_owner(target, known))
    return out


def _owner(name: str, known: set[str]) -> str | None:
    """The longest project module that ``name`` is or lies in (None: not the project's)."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in known:
            return candidate
    return None


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """Module -> project modules it imports (module-level and function-level imports)."""
    modules = project_modules(root, packages)
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):
            edges.update(_imported(node, name, is_package, known))
        edges.discard(name)
        graph[name] = edges
    return graph


def layer_violations(graph: Mapping[str, set[str]]) -> list[str]:
    """``"a imports b"`` for every import of a higher layer's module, or of a higher floor's
    inside ``optimize``."""
    out = []
    for module, targets in sorted(graph.items()):
        own = rank(module)
        for target in sorted(targets):
            theirs = rank(target)
            if own is not None and theirs is not None and theirs > own:
                out.append(f"{module} imports {target}")
    return out


def import_cycles(graph: Mapping[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(component)
    return sorted(cycles, key=sorted)


def test_layers_point_down():
    assert layer_violations(import_graph(REPO_ROOT)) == []


def test_no_import_cycles():
    assert [sorted(c) for c in import_cycles(import_graph(REPO_ROOT))] == []


# --- the checker itself can fail ---------------------------------------------------------------


def test_the_checker_flags_upward_imports_and_cycles_in_a_graph():
    graph = {
        "base.errors": {"lstm.checks"},  # the floor imports nothing of the project
        "lstm.checks": {"base.errors"},  # every package may import the floor
        "lstm.model": {"strategy.target"},  # lstm -> strategy: upward
        "strategy.target": {"optimize.data", "lstm.model"},  # strategy -> optimize: upward
        "optimize.data": set(),
        "optimize.a": {"optimize.b"},
        "optimize.b": {"optimize.c"},
        "optimize.c": {"optimize.a", "strategy.target"},
    }
    floors = {**OPTIMIZE_FLOORS, "optimize.a": 0, "optimize.b": 0, "optimize.c": 0}
    with _floors(floors):
        assert layer_violations(graph) == [
            "base.errors imports lstm.checks",
            "lstm.model imports strategy.target",
            "strategy.target imports optimize.data",
        ]
        assert import_cycles(graph) == [
            {"base.errors", "lstm.checks"},
            {"lstm.model", "strategy.target"},
            {"optimize.a", "optimize.b", "optimize.c"},
        ]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_flags_an_upward_import_and_a_cycle_between_floors_of_optimize():
    graph = {
        "optimize.data": {"optimize.evaluation.walk"},  # the data floor reaches up: refused
        "optimize.evaluation.walk": {"optimize.data", "optimize.evaluation.inputs"},
        "optimize.evaluation.inputs": {"optimize.markets"},  # downward: fine
        "optimize.markets": {"optimize.backtest.futures"},
        "optimize.backtest.futures": set(),
        "optimize.study.runner": {"optimize.cli"},  # the study reaches the CLI: refused
        "optimize.cli": {"optimize.study.runner", "optimize"},  # the face sits above the CLI
        "optimize": {"optimize.cli"},
        "optimize.config": {"optimize.search.space"},  # fine
        "optimize.search.space": set(),
    }
    assert layer_violations(graph) == [
        "optimize.cli imports optimize",
        "optimize.data imports optimize.evaluation.walk",
        "optimize.study.runner imports optimize.cli",
    ]
    assert import_cycles(graph) == [
        {"optimize", "optimize.cli", "optimize.study.runner"},
        {"optimize.data", "optimize.evaluation.walk"},
    ]
    # a module of optimize on no floor is named, not ranked silently
    with pytest.raises(AssertionError, match=r"optimize\.new_thing\.part lies on no floor"):
        layer_violations({"optimize.new_thing.part": {"optimize.data"}})


def test_every_part_of_optimize_has_a_floor():
    parts = {m for m in project_modules(REPO_ROOT, ["optimize"])}
    assert all(rank(m) is not None for m in parts)
    named = {f for f in OPTIMIZE_FLOORS if any(m == f or m.startswith(f + ".") for m in parts)}
    assert named == set(OPTIMIZE_FLOORS), "a floor names no module: remove it"


@contextlib.contextmanager
def _floors(floors: dict[str, int]):
    """Within the block, :data:`OPTIMIZE_FLOORS` is ``floors``."""
    saved = dict(OPTIMIZE_FLOORS)
    OPTIMIZE_FLOORS.clear()
    OPTIMIZE_FLOORS.update(floors)
    try:
        yield
    finally:
        OPTIMIZE_FLOORS.clear()
        OPTIMIZE_FLOORS.update(saved)


def test_the_checker_reads_imports_inside_functions_and_relative_ones(tmp_path):
    files = {
        "lstm/__init__.py": "",
        "lstm/model.py": "def late():\n    from strategy.target import score\n",
        "strategy/__init__.py": "",
        "strategy/target.py": "from . import helper\n",
        "strategy/helper.py": "import importlib\nM = importlib.import_module('strategy.target')\n",
        "optimize/__init__.py": "",
        "optimize/data.py": "import strategy.helper\nfrom lstm import model\nimport numpy\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert graph["optimize.data"] == {"strategy.helper", "lstm.model"}
    assert layer_violations(graph) == ["lstm.model imports strategy.target"]
    assert import_cycles(graph) == [{"strategy.target", "strategy.helper"}]


def test_every_public_name_of_a_package_face_resolves():
    """``lstm``, ``optimize`` and its sub-packages name their API lazily (:mod:`base.lazy`): each
    name must import, from the module the face says, without importing anything else first."""
    import importlib

    faces = [
        m
        for m, p in project_modules(REPO_ROOT, ["lstm", "optimize"]).items()
        if p.name == "__init__.py" and "lazy_exports(" in p.read_text()
    ]
    assert len(faces) >= 8, faces
    for face in faces:
        package = importlib.import_module(face)
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{face}.{name}"
    import optimize

    assert "open_study" in dir(optimize) and optimize.__version__
