"""Generate command-line flags from pydantic config models, so flags and fields cannot drift.

Each field becomes ``--field-name`` (underscores to dashes) unless its ``json_schema_extra`` lists
``cli`` flags (e.g. ``["-tp", "--tensor-parallel-size"]``, named as in vLLM). The help text is the
field's description; ``Literal`` fields become choices, booleans ``--x/--no-x``, and ``None`` defaults
print as "auto", lists take several values (``--x 1 2 4``) and lists of lists one list per use of the flag. Only
flags the user actually gave are returned, so model defaults stay in one place.
"""

from __future__ import annotations

import argparse
import math
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel


def field_flags(name: str, field: Any) -> list[str]:
    """The command-line spellings of one field."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    flags = extra.get("cli")
    return list(flags) if flags else ["--" + name.replace("_", "-")]


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """Strip ``Optional``; return (type, optional)."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _parse_float(text: str) -> float:
    if text.lower() in ("inf", "infinity"):
        return math.inf
    return float(text)


def add_model_arguments(parser: argparse.ArgumentParser, model_cls: type[BaseModel], *, title: str) -> None:
    """Add one flag per field of ``model_cls`` to ``parser`` (in a group named ``title``)."""
    group = parser.add_argument_group(title)
    for name, field in model_cls.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("cli") is False:
            continue
        flags = field_flags(name, field)
        base, optional = _base_type(field.annotation)
        default = field.get_default(call_default_factory=True)
        shown = "auto" if default is None else default
        help_text = (field.description or "").replace("%", "%%") + f" [default: {shown}]"
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        if base is bool:
            group.add_argument(*flags, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if get_origin(base) is Literal:
            kwargs["choices"] = list(get_args(base))
            kwargs["type"] = type(kwargs["choices"][0])
        elif base is float:
            kwargs["type"] = _parse_float
        elif base in (int, str):
            kwargs["type"] = base
        elif get_origin(base) is list:
            item = get_args(base)[0] if get_args(base) else str
            if get_origin(item) is list:  # a list of lists: the flag may be given again, each time one list
                item = get_args(item)[0] if get_args(item) else str
                kwargs["action"] = "append"
            if get_origin(item) is Literal:
                kwargs["choices"] = list(get_args(item))
                item = type(kwargs["choices"][0])
            kwargs["type"] = _parse_float if item is float else item
            kwargs["nargs"] = "+"
        else:
            kwargs["type"] = str
        kwargs["metavar"] = extra.get("metavar") or (name.upper() if "choices" not in kwargs else None)
        if kwargs["metavar"] is None:
            del kwargs["metavar"]
        group.add_argument(*flags, **kwargs)


def collect_model_arguments(namespace: argparse.Namespace, model_cls: type[BaseModel]) -> dict[str, Any]:
    """The values the user gave for ``model_cls``'s fields (absent flags are left out)."""
    values = vars(namespace)
    return {name: values[name] for name in model_cls.model_fields if name in values}


def flag_for(model_cls: type[BaseModel], name: str) -> str:
    """The main flag of a field, for error messages (e.g. ``--tensor-parallel-size``)."""
    flags = field_flags(name, model_cls.model_fields[name])
    long = [f for f in flags if f.startswith("--")]
    return (long or flags)[0]
