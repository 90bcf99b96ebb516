"""The error for an executor whose optional package is missing."""

from __future__ import annotations

from perfsim.errors import SpecError


def missing_extra(extra: str, exc: ImportError) -> SpecError:
    """The error for an executor whose package is not installed."""
    return SpecError(f"--executor {extra} needs {exc.name or extra}: pip install 'perfsim[{extra}]'")
