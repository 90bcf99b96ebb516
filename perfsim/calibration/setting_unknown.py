"""A run setting a measurement source does not state: the deployment flag, its stated default and the values
it may take (read from a sidecar rule's ``fit:``; ``perfsim.calibration.run_settings`` fits it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perfsim.errors import SpecError


@dataclass(frozen=True)
class SettingUnknown:
    """A deployment setting (``key``, a vLLM serve flag as a Deployment field) that a source does not state:
    ``default`` when nothing was fitted, one of ``candidates`` after a calibration."""

    name: str
    key: str
    default: int
    candidates: tuple[int, ...]
    why: str = ""


def parse_setting_unknown(spec: Any, default: Any, why: str, source: str, field: str) -> SettingUnknown:
    """A sidecar rule's ``fit: {name, key, candidates}`` (its ``deployment`` gives the key's stated default)."""
    if not isinstance(spec, dict) or set(spec) != {"name", "key", "candidates"}:
        raise SpecError(
            "expected {name: TEXT, key: DEPLOYMENT_FIELD, candidates: [INTEGERS]}", source=source, field=field
        )
    candidates = spec["candidates"]
    if (
        not isinstance(candidates, list)
        or len(candidates) < 2
        or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in candidates)
    ):
        raise SpecError("expected at least two positive integers", source=source, field=f"{field}.candidates")
    if not isinstance(default, int) or isinstance(default, bool) or default not in candidates:
        raise SpecError(
            f"the rule's deployment must state {spec['key']} as one of the candidates (its default)",
            source=source,
            field=f"{field}.key",
        )
    return SettingUnknown(
        name=str(spec["name"]), key=str(spec["key"]), default=default, candidates=tuple(candidates), why=why
    )
