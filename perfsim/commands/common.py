"""Helpers shared by commands: output-path checks, and resolving a deployment from flags (auto TP)."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from perfsim.commands.options import name_flags
from perfsim.costs.memory import MemoryPlan, plan_deployment_noted
from perfsim.errors import DoesNotFitError, SpecError
from perfsim.specs.deployment import Deployment, ResolvedDeployment
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.model import Model

#: the arguments that name outputs
OUTPUT_ARGS = ("out", "json", "plot")


def input_files(args: argparse.Namespace) -> list[str]:
    """Every existing file a command's arguments other than its outputs name (inputs no output may overwrite)."""
    out: list[str] = []
    for key, value in vars(args).items():
        if key in OUTPUT_ARGS:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item and Path(item).is_file():
                out.append(item)
    return out


def check_output_path(path: str, suffixes: tuple[str, ...] | None = None, inputs: Sequence[str] = ()) -> None:
    """Refuse, before any work, an output path that is a folder or not a regular file, whose folder does not
    exist or cannot be written, that is one of the command's ``inputs``, or whose extension is not one of
    ``suffixes``."""
    target = Path(path)
    if target.is_dir():
        raise SpecError("is a folder; give a file name", source=str(path))
    if target.exists() and not target.is_file():
        raise SpecError(
            "exists and is not a regular file (a pipe or a device?); give a file name", source=str(path)
        )
    if not target.parent.exists():
        raise SpecError(f"folder {target.parent} does not exist", source=str(path))
    try:  # a file can be created beside it (not so in /proc, /sys or a read-only folder)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".perfsim-probe-"):
            pass
    except OSError as exc:
        raise SpecError(f"cannot be written there ({exc.strerror})", source=str(path)) from None
    if target.exists() and not os.access(target, os.W_OK):
        raise SpecError("cannot be written (permissions)", source=str(path))
    if any(target.exists() and target.samefile(f) for f in inputs):
        raise SpecError(
            "is also an input of this command: it would be overwritten; write elsewhere", source=str(path)
        )
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
