"""Helpers shared by commands: output-path checks, and resolving a deployment from flags (auto TP)."""

from __future__ import annotations

from pathlib import Path

from perfsim.commands.options import name_flags
from perfsim.costs.memory import (
    MemoryPlan,
    check_fits,
    memory_plan,
    no_fitting_tp_message,
    smallest_fitting_tp,
)
from perfsim.errors import DoesNotFitError, SpecError
from perfsim.specs.deployment import Deployment, ResolvedDeployment, resolve_deployment
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
    """Resolve vLLM defaults (auto TP = the smallest that fits) and check the memory plan.

    Errors name the command-line flag (``--tensor-parallel-size: ...``) or say by how much it does not fit.
    With ``must_fit=False`` (costing a single step) a deployment that does not fit is kept, with a note.
    """
    notes: list[str] = []
    try:
        tp = dep.tensor_parallel_size or smallest_fitting_tp(model, hw, dep)
        if tp is None:
            message = no_fitting_tp_message(model, hw)
            if must_fit:
                raise DoesNotFitError(message)
            tp = min(hw.scaleup_domain_gpus, model.arch.mla.num_heads)
            notes.append(f"{message}; costing -tp {tp} anyway")
        resolved = resolve_deployment(dep, model, hw, tp)
    except SpecError as exc:
        raise name_flags(exc, Deployment) from None
    try:
        plan = check_fits(model, hw, resolved)
    except DoesNotFitError as exc:
        if must_fit:
            raise
        notes.append(f"{exc} (costing the step anyway)")
        plan = memory_plan(model, hw, resolved)
    return resolved, plan, notes
