"""Convenience functions of the public API that combine several layers (specs, costs, calibration)."""

from __future__ import annotations

from typing import Any

from perfsim.calibration.measurements import load_measurements
from perfsim.calibration.profiles import load_params, prediction_values, profile_settings
from perfsim.calibration.validate import ValidationReport
from perfsim.calibration.validate import validate as run_validation
from perfsim.costs.interface import StepCost
from perfsim.costs.memory import MemoryPlan, plan_deployment, plan_deployment_noted
from perfsim.costs.step import StepCostModel
from perfsim.specs.deployment import Deployment
from perfsim.specs.hardware import HardwareSpec, load_hardware
from perfsim.specs.loading import build_settings
from perfsim.specs.model import Model, load_model


def _specs(model: str | Model, hw: str | HardwareSpec, precision: str) -> tuple[Model, HardwareSpec]:
    m = model if isinstance(model, Model) else load_model(model, precision)
    g = hw if isinstance(hw, HardwareSpec) else load_hardware(hw)
    return m, g


def memory_plan(
    model: str | Model = "deepseek-v3.2",
    hw: str | HardwareSpec = "gb300",
    precision: str = "auto",
    deployment: Deployment | dict | None = None,
) -> MemoryPlan:
    """Per-GPU memory plan (weights, activations, KV capacity) of a deployment; TP auto when not given."""
    m, g = _specs(model, hw, precision)
    dep = (
        deployment
        if isinstance(deployment, Deployment)
        else build_settings(Deployment, deployment, "deployment")
    )
    return plan_deployment(m, g, dep)[1]


def explain_step(
    new_tokens: list[int],
    context_tokens: list[int],
    *,
    model: str | Model = "deepseek-v3.2",
    hw: str | HardwareSpec = "gb300",
    precision: str = "auto",
    deployment: Deployment | dict | None = None,
    calibration: str | None = "default",
    must_fit: bool = True,
) -> StepCost:
    """Cost of one engine step for a batch given per request as (new tokens, context tokens).

    ``must_fit=False`` costs the step even when the deployment's weights or one request's KV do not fit
    (as ``perfsim explain`` does)."""
    m, g = _specs(model, hw, precision)
    dep = (
        deployment
        if isinstance(deployment, Deployment)
        else build_settings(Deployment, deployment, "deployment")
    )
    resolved, _plan, _notes = plan_deployment_noted(m, g, dep, must_fit=must_fit)
    params, _provenance = load_params(calibration, g)
    cost_model = StepCostModel(m, g, resolved, params)
    stats = cost_model.stats(new_tokens, context_tokens)
    return cost_model.step([stats] * resolved.dp)


def validate(
    files: list[str] | None = None, *, calibration: str = "default", assume: dict[str, Any] | None = None
) -> ValidationReport:
    """Predict measured runs (default: the bundled measurements) and return a ``ValidationReport``."""
    rows = load_measurements(files, assume=assume)
    values, label = prediction_values(calibration)
    return run_validation(rows, values, label, settings=profile_settings(calibration))
