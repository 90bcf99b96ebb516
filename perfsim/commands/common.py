"""Helpers shared by commands: output-path checks, and resolving a deployment from flags (auto TP)."""

from __future__ import annotations

from pathlib import Path

from perfsim.commands.options import name_flags
from perfsim.costs.memory import MemoryPlan, plan_deployment_noted
from perfsim.errors import DoesNotFitError, SpecError
from perfsim.specs.deployment import Deployment, ResolvedDeployment
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model


def check_output_path(path: str, suffixes: tuple[str, ...] | None = None) -> None:
    """Refuse, before any work, an output path that is a folder, whose folder does not exist, or whose
    extension is not one of ``suffixes``."""
    target = Path(path)
    if target.is_dir():
        raise SpecError("is a folder; give a file name", source=str(path))
    if not target.parent.exists():
        raise SpecError(f"folder {target.parent} does not exist", source=str(path))
    if suffixes and target.suffix.lower() not in suffixes:
        raise SpecError(
            f"unsupported file type '{target.suffix}'; allowed: {', '.join(suffixes)}", source=str(path)
        )


def check_output_folder(path: str) -> None:
    """Refuse, before any work, an output folder that is an existing file or whose parent does not exist."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise SpecError("exists and is not a folder", source=str(path))
    if not target.exists() and not target.parent.exists():
        raise SpecError(f"folder {target.parent} does not exist", source=str(path))


def resolve_for_cli(
    model: Model, hw: HardwareSpec, dep: Deployment, *, must_fit: bool = True
) -> tuple[ResolvedDeployment, MemoryPlan, list[str]]:
    """``plan_deployment_noted`` with errors that name the command-line flag (``--tensor-parallel-size: ...``)."""
    try:
        return plan_deployment_noted(model, hw, dep, must_fit=must_fit)
    except DoesNotFitError:
        raise
    except SpecError as exc:
        raise name_flags(exc, Deployment) from None
