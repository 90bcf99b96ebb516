"""Safe loading of spec files and translation of validation errors into clear messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from perfsim.errors import SpecError

M = TypeVar("M", bound=BaseModel)


def read_text(path: Path) -> str:
    """A text file's contents; missing files, folders and binary files are clear errors."""
    if not path.exists():
        raise SpecError("file not found", source=str(path))
    if path.is_dir():
        raise SpecError("is a folder, expected a file", source=str(path))
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
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML ({exc})", source=str(path)) from None
    if not isinstance(data, dict):
        raise SpecError("expected a mapping (key: value) at the top level", source=str(path))
    return data


def load_json_file(path: Path) -> dict[str, Any]:
    """Read a JSON object; errors name the file."""
    text = read_text(path)
    try:
        data = json.loads(text)
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
