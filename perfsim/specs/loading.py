"""Safe loading of spec files and translation of validation errors into clear messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from perfsim.errors import SpecError

M = TypeVar("M", bound=BaseModel)


#: the largest input file perfsim reads (bundled ones are under 1 MB; a bench-serve file with per-request lists
#: of 100,000 requests is about 20 MB)
MAX_INPUT_BYTES = 64 * 2**20
#: YAML nesting and alias references beyond any real spec, profile or grid (alias bombs stop here)
MAX_YAML_DEPTH, MAX_YAML_ALIASES = 32, 100
#: values of a YAML document with its aliases expanded (a few aliases of aliases reach billions)
MAX_YAML_VALUES = 1_000_000


def read_text(path: Path) -> str:
    """A text file's contents; missing files, folders, pipes, huge and binary files are clear errors."""
    if not path.exists():
        raise SpecError("file not found", source=str(path))
    if path.is_dir():
        raise SpecError("is a folder, expected a file", source=str(path))
    if not path.is_file():
        raise SpecError("is not a regular file (a pipe or a device?)", source=str(path))
    size = path.stat().st_size
    if size > MAX_INPUT_BYTES:
        raise SpecError(
            f"is {size / 2**20:.0f} MiB; perfsim reads files up to {MAX_INPUT_BYTES >> 20} MiB",
            source=str(path),
        )
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise SpecError("not a text file (cannot decode it as UTF-8)", source=str(path)) from None
    except OSError as exc:
        raise SpecError(f"cannot read it ({exc.strerror})", source=str(path)) from None


def load_yaml_file(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; errors name the file."""
    text = read_text(path)
    try:
        data = safe_yaml(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML ({yaml_problem(exc)})", source=str(path)) from None
    except ValueError as exc:
        raise SpecError(str(exc), source=str(path)) from None
    if not isinstance(data, dict):
        raise SpecError("expected a mapping (key: value) at the top level", source=str(path))
    return data


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses documents nested deeper than ``MAX_YAML_DEPTH`` or with more than
    ``MAX_YAML_ALIASES`` alias references."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise ValueError(f"more than {MAX_YAML_ALIASES} YAML aliases (*name): refused")
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise ValueError(f"YAML nested deeper than {MAX_YAML_DEPTH} levels: refused")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        seen: set[Any] = set()
        for key in keys:
            if isinstance(key, str | int | float | bool) and key in seen:
                raise ValueError(
                    f"duplicate key '{key}' (line {node.start_mark.line + 1}): the first would be lost"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line error as one line: what is wrong and where (line, column)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def _check_expanded_size(data: Any) -> None:
    """Refuse a document whose values, counted with every alias expanded, exceed ``MAX_YAML_VALUES``."""
    stack, seen = [data], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_YAML_VALUES:
            raise ValueError(f"more than {MAX_YAML_VALUES:,} values once its aliases are expanded: refused")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def safe_yaml(text: str) -> Any:
    """``yaml.safe_load`` with bounded nesting, aliases and expanded size (``ValueError`` beyond them)."""
    loader = _BoundedLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    _check_expanded_size(data)
    return data


def parse_json(text: str) -> Any:
    """``json.loads``, with nesting too deep for Python's parser reported as a ``json.JSONDecodeError``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def load_json_file(path: Path) -> dict[str, Any]:
    """Read a JSON object; errors name the file."""
    text = read_text(path)
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"not valid JSON ({exc})", source=str(path)) from None
    if not isinstance(data, dict):
        raise SpecError("expected a JSON object at the top level", source=str(path))
    return data


def validation_error_to_spec_error(exc: Exception, source: Path | str | None) -> SpecError:
    """Turn a pydantic ``ValidationError`` into a ``SpecError`` naming the file and the field."""
    if not isinstance(exc, ValidationError):
        return SpecError(str(exc), source=str(source) if source else None)
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field (typo?)"
        problems.append(f"field '{loc}': {msg}")
    text = "; ".join(problems)
    return SpecError(text, source=str(source) if source else None)


def build_settings(cls: type[M], values: dict | None, what: str) -> M:
    """``cls(**values)`` for a pydantic settings class; errors become one ``SpecError`` naming the fields."""
    try:
        return cls(**(values or {}))
    except ValidationError as exc:
        raise SpecError(f"invalid {what} settings: {validation_error_to_spec_error(exc, None)}") from None
    except TypeError as exc:
        raise SpecError(f"invalid {what} settings: {exc}") from None
