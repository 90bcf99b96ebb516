"""Calibration profiles: fitted ``CostParams`` with their data, errors and domain, as YAML.

A profile (``calibrations/<name>.yaml``) records what was fitted, on which measurements, when, with
which in-sample and leave-one-group-out errors, and the per-row cross-validation residuals from which
every prediction's error band is derived. ``default`` selects the bundled vLLM 0.14.1 profile.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from perfsim.calibration.stats import abs_error_stats
from perfsim.costs.params import CostParams
from perfsim.errors import SpecError, UnknownNameError
from perfsim.paths import data_dir
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.loading import load_yaml_file, validation_error_to_spec_error

DEFAULT_PROFILE = "vllm-0.14.1"
#: error bands widen by this factor for each way a prediction leaves the calibrated domain, compounding: a
#: judgement, not a fit (no held-out data outside the domain exist to fit it); two departures give 2.25x
EXTRAPOLATION_WIDENING = 1.5
#: error bands come from the cross-validation residuals of rows with the same model and parallelism when
#: at least this many exist, else from every row of the metric class
MIN_SIMILAR_ROWS = 3


def known_profiles() -> list[str]:
    """Names of the bundled calibration profiles."""
    return sorted(p.stem for p in data_dir("calibrations").glob("*.yaml"))


def resolve_profile_path(name: str | None) -> Path | None:
    """The YAML file of a profile name or path (None for 'none' / spec-only)."""
    if name == "default":
        path = data_dir("calibrations") / f"{DEFAULT_PROFILE}.yaml"
        return path if path.exists() else None
    if not name or name == "none":
        return None
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise SpecError("calibration file not found", source=str(path))
        return path
    path = data_dir("calibrations") / f"{name}.yaml"
    if not path.exists():
        raise UnknownNameError("calibration", name, [*known_profiles(), "none", "default"])
    return path


class ProfileDomain(BaseModel):
    """What a profile was fitted on (hardware, models, ...; length and load ranges as [low, high])."""

    model_config = ConfigDict(extra="allow")
    hardware: list[str] = []
    models: list[str] = []
    precisions: list[str] = []
    parallel: list[str] = []
    isl: tuple[int, int] | None = None
    osl: tuple[int, int] | None = None
    concurrency: tuple[int, int] | None = None
    mtp: bool = False
    disaggregated: bool = False


class ProfileResidual(BaseModel):
    """One cross-validation residual: a measured row's group keys and its signed error (%)."""

    model_config = ConfigDict(extra="allow")
    model: str
    parallel: str
    metric_class: str
    error_pct: float


class _ProfileShape(BaseModel):
    """The parts of a profile that predictions read; the rest is a record for people."""

    model_config = ConfigDict(extra="allow")
    params: dict[str, float | dict[str, Any]]
    domain: ProfileDomain = ProfileDomain()
    cv_residuals: list[ProfileResidual] = []


@functools.lru_cache(maxsize=16)
def _read_profile(path: str, _stamp: float) -> dict[str, Any]:
    data = load_yaml_file(Path(path))
    try:
        _ProfileShape(**data)
    except ValidationError as exc:
        raise validation_error_to_spec_error(exc, path) from None
    return data


def read_profile(name: str | None) -> dict[str, Any] | None:
    """The parsed profile YAML (None for spec-only)."""
    path = resolve_profile_path(name)
    if path is None:
        return None
    return _read_profile(str(path), path.stat().st_mtime)


def params_from_profile(profile: dict[str, Any] | None, source: str = "profile") -> CostParams:
    """``CostParams`` with the profile's fitted values over the defaults."""
    if profile is None:
        return CostParams()
    values = profile.get("params")
    if not isinstance(values, dict):
        raise SpecError("expected a 'params' mapping of cost parameter values", source=source, field="params")
    for key, v in values.items():
        if isinstance(v, dict) and "value" not in v:
            raise SpecError(
                "expected 'value: NUMBER' (or a bare number)", source=source, field=f"params.{key}"
            )
    try:
        return CostParams(**{k: (v["value"] if isinstance(v, dict) else v) for k, v in values.items()})
    except ValidationError as exc:
        raise validation_error_to_spec_error(exc, source) from None


def profile_params(name: str | None) -> tuple[CostParams, str]:
    """Cost parameters of a profile name or path and its label ('spec-only (none)' without one)."""
    path = resolve_profile_path(name)
    if path is None:
        return CostParams(), "spec-only (none)"
    return params_from_profile(read_profile(str(path)), str(path)), path.stem


def load_params(name: str | None, hw: HardwareSpec) -> tuple[CostParams, str]:
    """Cost parameters of a profile (or defaults for 'none') and a provenance string.

    'default' selects the bundled vLLM 0.14.1 profile when it exists, else the spec-only parameters.
    """
    path = resolve_profile_path(name)
    if path is None:
        return CostParams(), "spec-only (no calibration)"
    profile = read_profile(str(path))
    return params_from_profile(profile, str(path)), f"{path.stem} ({provenance(profile, hw)})"


def provenance(profile: dict[str, Any] | None, hw: HardwareSpec) -> str:
    """'spec-only', 'calibrated on this hardware' or 'transferred from <the profile's hardware>'."""
    if profile is None:
        return "spec-only"
    fitted_on = (profile.get("domain") or {}).get("hardware", [])
    return (
        "calibrated on this hardware"
        if hw.name in fitted_on
        else (f"transferred from {', '.join(sorted(fitted_on)) or 'other hardware'}")
    )


def write_profile(path: Path, profile: dict[str, Any]) -> None:
    """Write a profile YAML (plain types only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# perfsim calibration profile: fitted cost-model parameters, the data they were fitted on, and\n"
        "# their in-sample and leave-one-group-out cross-validated errors. Written by `perfsim calibrate`.\n"
    )
    path.write_text(header + yaml.safe_dump(profile, sort_keys=False, width=110))


def parallel_kind(*, dp: int, expert_parallel: bool, disaggregated: bool) -> str:
    """The parallelism class calibration rows and error bands are grouped by: pd, dp+ep, dp or tp."""
    if disaggregated:
        return "pd"
    return "dp+ep" if expert_parallel else ("dp" if dp > 1 else "tp")


def _parallel_kind(dep) -> str:
    return parallel_kind(dp=dep.dp, expert_parallel=dep.ep > 1, disaggregated=dep.disaggregated)


def prediction_band(calibration: str | None, model, hw: HardwareSpec, dep, bench) -> dict[str, Any]:
    """How much to trust a prediction.

    Returns the calibration's cross-validated error (median and 90th percentile of absolute errors, %)
    per metric class over the most similar calibration rows (same model and parallelism when there are
    such rows), widened for every way the scenario leaves the calibrated domain, with a note per way.
    """
    profile = read_profile(calibration) if calibration else None
    if profile is None:
        return {
            "provenance": "spec-only",
            "error_band": None,
            "notes": [
                "spec-only prediction: no calibration applied; expect large errors (see perfsim validate "
                "--calibration none)"
            ],
        }
    domain = profile.get("domain") or {}
    notes: list[str] = []
    where = provenance(profile, hw)
    widen = 1.0
    if hw.name not in domain.get("hardware", []):
        notes.append(f"hardware {hw.name} was not calibrated ({where}); efficiencies assumed to carry over")
        widen *= EXTRAPOLATION_WIDENING
    checks = [
        ("model", model.name, domain.get("models", [])),
        ("precision", model.precision, domain.get("precisions", [])),
        ("parallelism", _parallel_kind(dep), domain.get("parallel", [])),
    ]
    for what, value, seen in checks:
        if seen and value not in seen:
            notes.append(f"{what} {value} is outside the calibrated set ({', '.join(map(str, seen))})")
            widen *= EXTRAPOLATION_WIDENING
    for what, value, rng in (
        ("input length", bench.random_input_len, domain.get("isl")),
        ("output length", bench.random_output_len, domain.get("osl")),
        ("concurrency", bench.max_concurrency, domain.get("concurrency")),
    ):
        if rng and value is not None and not (rng[0] <= value <= rng[1]):
            notes.append(f"{what} {value} is outside the calibrated range {rng[0]}-{rng[1]} (extrapolated)")
            widen *= EXTRAPOLATION_WIDENING
    if dep.num_speculative_tokens and not domain.get("mtp", False):
        notes.append(
            "MTP speculative decoding was not calibrated (acceptance from published DeepSeek figures)"
        )
        widen *= EXTRAPOLATION_WIDENING
    residuals = [r for r in profile.get("cv_residuals", []) if math.isfinite(r.get("error_pct", math.nan))]
    similar = [
        r for r in residuals if r.get("model") == model.name and r.get("parallel") == _parallel_kind(dep)
    ]
    band: dict[str, dict[str, float]] = {}
    for cls in sorted({r["metric_class"] for r in residuals}):
        pool = [r for r in similar if r["metric_class"] == cls]
        if len(pool) < MIN_SIMILAR_ROWS:  # too few similar rows: every row of this metric class
            pool = [r for r in residuals if r["metric_class"] == cls]
        stats = abs_error_stats([r["error_pct"] for r in pool])
        band[cls] = {
            "median_abs_pct": round(stats["median_abs_pct"] * widen, 1),
            "p90_abs_pct": round(stats["p90_abs_pct"] * widen, 1),
            "rows": stats["n"],
        }
    return {"provenance": where, "error_band": band, "extrapolated": widen > 1.0, "notes": notes}
