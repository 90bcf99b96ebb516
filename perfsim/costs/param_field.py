"""The declaration of one cost parameter: a pydantic field with its unit, physical bounds and scope."""

from __future__ import annotations

from pydantic import Field

SCOPES = ("kernel", "link", "engine", "workload")


def param_field(default: float, lo: float, hi: float, unit: str, scope: str, description: str) -> float:
    """A parameter field: default (the spec-only value), physical bounds ``[lo, hi]``, unit and scope."""
    return Field(
        default=default,
        ge=lo,
        le=hi,
        description=description,
        json_schema_extra={"unit": unit, "bounds": [lo, hi], "scope": scope},
    )
