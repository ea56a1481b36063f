"""YAML files of the project (run configs, search spaces): one reader, strict about what it reads.

:func:`read_yaml` resolves the path (:func:`base.paths.resolve_path`), reads UTF-8 text and parses
it with :class:`Loader`, YAML's safe loader without implicit timestamps and refusing a key given
twice; every failure is one error of the caller's kind naming the file (and the line).

This module sits on the project's floor: it imports nothing of the project but :mod:`base`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from base.errors import ConfigError
from base.paths import resolve_path

__all__ = ["Loader", "read_yaml"]


class Loader(yaml.SafeLoader):
    """YAML's safe loader for configs and spaces, with two changes.

    No implicit timestamps: an unquoted ``2025-06-01`` stays text, so an impossible date such as
    ``2025-13-45`` is reported by the key that holds it, not by the parser. No duplicate keys: a
    key given twice in one mapping is an error naming the key and both lines (YAML's loader would
    silently keep the last, e.g. a second ``data:`` block dropping the first one's keys).
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base loader reports it
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r}: first on line {first.start_mark.line + 1}, again on "
                    f"line {key_node.start_mark.line + 1}; expected each key once per mapping",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: Path | str, *, what: str, error: type[ConfigError]) -> tuple[Any, Path]:
    """Resolve (see :func:`base.paths.resolve_path`) and parse a YAML file: the one reader of run
    configs and search spaces.

    Raises:
        error: no such file, a folder, a file that cannot be read or is not UTF-8 text, not valid
            YAML, or a key given twice in one mapping; the message names the file (``what``
            names the kind of file) and, for YAML errors, the line.
    """
    path = resolve_path(path)
    if path.is_dir():
        raise error(f"{what} {path} is a folder; expected a YAML file.")
    if not path.is_file():
        raise error(f"{what} {path} does not exist.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise error(
            f"{path}: line {line}: byte 0x{exc.object[exc.start]:02x} is not UTF-8 text; expected "
            f"a UTF-8 YAML {what}."
        ) from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    try:
        return yaml.load(text, Loader=Loader), path
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({_one_line(exc)}).") from None


def _one_line(exc: yaml.YAMLError) -> str:
    """A YAML error's problem and position on one line."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(str(problem).split())
