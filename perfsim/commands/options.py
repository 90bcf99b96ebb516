"""Shared option handling: build validated config models from CLI flags with flag-named errors."""

from __future__ import annotations

import argparse
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from perfsim.commands.fields import collect_model_arguments, flag_for
from perfsim.errors import SpecError

M = TypeVar("M", bound=BaseModel)


def model_from_args(args: argparse.Namespace, model_cls: type[M], **overrides: object) -> M:
    """Validate the flags given for ``model_cls``; errors name the flag and the reason."""
    values = collect_model_arguments(args, model_cls)
    values.update(overrides)
    try:
        return model_cls.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"][0] if err["loc"] else None
            message = err["msg"].removeprefix("Value error, ")
            if loc not in model_cls.model_fields:  # a check across flags: its message names them
                problems.append(message)
                continue
            rest = err["loc"][1:]
            flag = flag_for(model_cls, str(loc))
            if rest and isinstance(rest[0], int):  # one value of a flag that takes several
                value = err.get("input")
                problems.append(f"{flag} {value!r} (value {rest[0] + 1}): {message}")
                continue
            inner = ".".join(str(part) for part in rest)  # a key inside a JSON-valued flag
            problems.append(f"{flag} {inner}: {message}" if inner else f"{flag}: {message}")
        raise SpecError("; ".join(problems)) from None


def name_flags(exc: SpecError, model_cls: type[BaseModel]) -> SpecError:
    """Re-word a ``SpecError`` about a field of ``model_cls`` to name its command-line flag."""
    if exc.field and exc.field in model_cls.model_fields:
        message = str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc)
        return SpecError(f"{flag_for(model_cls, exc.field)}: {message}")
    return exc
