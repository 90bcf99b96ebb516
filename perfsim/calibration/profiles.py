"""Calibration profiles: named sets of fitted ``CostParams`` stored as YAML under ``calibrations/``."""

from __future__ import annotations

from pathlib import Path

from perfsim.costs.params import CostParams
from perfsim.errors import SpecError, UnknownNameError
from perfsim.paths import data_dir
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.loading import load_yaml_file


def known_profiles() -> list[str]:
    """Names of the bundled calibration profiles."""
    return sorted(p.stem for p in data_dir("calibrations").glob("*.yaml"))


DEFAULT_PROFILE = "vllm-0.14.1"


def load_params(name: str | None, hw: HardwareSpec) -> tuple[CostParams, str]:
    """Cost parameters of a profile (or defaults for 'none') and a provenance string.

    'default' selects the bundled vLLM 0.14.1 profile when it exists, else the spec-only parameters.
    """
    if name == "default":
        name = DEFAULT_PROFILE if (data_dir("calibrations") / f"{DEFAULT_PROFILE}.yaml").exists() else "none"
    if not name or name == "none":
        return CostParams(), "spec-only (no calibration)"
    path = Path(name)
    if not path.exists():
        path = data_dir("calibrations") / f"{name}.yaml"
        if not path.exists():
            raise UnknownNameError("calibration", name, [*known_profiles(), "none"])
    data = load_yaml_file(path)
    values = data.get("params")
    if not isinstance(values, dict):
        raise SpecError("expected a 'params' mapping of cost parameter values", source=str(path), field="params")
    try:
        params = CostParams(**{k: (v["value"] if isinstance(v, dict) else v) for k, v in values.items()})
    except Exception as exc:
        from perfsim.specs.loading import validation_error_to_spec_error

        raise validation_error_to_spec_error(exc, path) from None
    fitted_on = set(data.get("hardware", []))
    where = "calibrated on this hardware" if hw.name in fitted_on else (
        f"transferred from {', '.join(sorted(fitted_on)) or 'other hardware'}")
    return params, f"{path.stem} ({where})"


def prediction_band(calibration: str | None, model, hw: HardwareSpec, dep, bench) -> dict:
    """How much to trust a prediction: the calibration's cross-validated error for similar rows."""
    return {"error_band": None, "notes": []}
