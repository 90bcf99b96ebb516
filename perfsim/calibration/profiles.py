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

from perfsim.costs.params import CostParams
from perfsim.errors import SpecError, UnknownNameError
from perfsim.paths import data_dir
from perfsim.specs.hardware import HardwareSpec
from perfsim.specs.loading import load_yaml_file, validation_error_to_spec_error

DEFAULT_PROFILE = "vllm-0.14.1"
#: error bands widen by this factor for each way a prediction leaves the calibrated domain
EXTRAPOLATION_WIDENING = 1.5


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


@functools.lru_cache(maxsize=16)
def _read_profile(path: str, _stamp: float) -> dict[str, Any]:
    return load_yaml_file(Path(path))


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
    try:
        return CostParams(**{k: (v["value"] if isinstance(v, dict) else v) for k, v in values.items()})
    except Exception as exc:
        raise validation_error_to_spec_error(exc, source) from None


def load_params(name: str | None, hw: HardwareSpec) -> tuple[CostParams, str]:
    """Cost parameters of a profile (or defaults for 'none') and a provenance string.

    'default' selects the bundled vLLM 0.14.1 profile when it exists, else the spec-only parameters.
    """
    path = resolve_profile_path(name)
    if path is None:
        return CostParams(), "spec-only (no calibration)"
    profile = read_profile(str(path))
    params = params_from_profile(profile, str(path))
    fitted_on = set((profile or {}).get("domain", {}).get("hardware", []))
    where = "calibrated on this hardware" if hw.name in fitted_on else (
        f"transferred from {', '.join(sorted(fitted_on)) or 'other hardware'}")
    return params, f"{path.stem} ({where})"


def write_profile(path: Path, profile: dict[str, Any]) -> None:
    """Write a profile YAML (plain types only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# perfsim calibration profile: fitted cost-model parameters, the data they were fitted on, and\n"
              "# their in-sample and leave-one-group-out cross-validated errors. Written by `perfsim calibrate`.\n")
    path.write_text(header + yaml.safe_dump(profile, sort_keys=False, width=110))


def _parallel_kind(dep) -> str:
    kind = "pd" if dep.disaggregated else ("dp+ep" if dep.ep > 1 else ("dp" if dep.dp > 1 else "tp"))
    return kind


def prediction_band(calibration: str | None, model, hw: HardwareSpec, dep, bench) -> dict[str, Any]:
    """How much to trust a prediction.

    Returns the calibration's cross-validated error (median and 90th percentile of absolute errors, %)
    per metric class over the most similar calibration rows (same model and parallelism when there are
    such rows), widened for every way the scenario leaves the calibrated domain, with a note per way.
    """
    profile = read_profile(calibration) if calibration else None
    if profile is None:
        return {"provenance": "spec-only", "error_band": None,
                "notes": ["spec-only prediction: no calibration applied; expect large errors (see perfsim validate "
                          "--calibration none)"]}
    domain = profile.get("domain", {})
    notes: list[str] = []
    provenance = "calibrated on this hardware" if hw.name in domain.get("hardware", []) else (
        f"transferred from {', '.join(domain.get('hardware', [])) or 'other hardware'}")
    widen = 1.0
    if hw.name not in domain.get("hardware", []):
        notes.append(f"hardware {hw.name} was not calibrated ({provenance}); efficiencies assumed to carry over")
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
    for what, value, rng in (("input length", bench.random_input_len, domain.get("isl")),
                             ("output length", bench.random_output_len, domain.get("osl")),
                             ("concurrency", bench.max_concurrency, domain.get("concurrency"))):
        if rng and value is not None and not (rng[0] <= value <= rng[1]):
            notes.append(f"{what} {value} is outside the calibrated range {rng[0]}-{rng[1]} (extrapolated)")
            widen *= EXTRAPOLATION_WIDENING
    if dep.num_speculative_tokens and not domain.get("mtp", False):
        notes.append("MTP speculative decoding was not calibrated (acceptance from published DeepSeek figures)")
        widen *= EXTRAPOLATION_WIDENING
    residuals = [r for r in profile.get("cv_residuals", []) if math.isfinite(r.get("error_pct", math.nan))]
    similar = [r for r in residuals if r.get("model") == model.name and r.get("parallel") == _parallel_kind(dep)]
    band: dict[str, dict[str, float]] = {}
    for cls in sorted({r["metric_class"] for r in residuals}):
        pool = [r for r in similar if r["metric_class"] == cls]
        if len(pool) < 3:  # too few similar rows: every row of this metric class
            pool = [r for r in residuals if r["metric_class"] == cls]
        errs = sorted(abs(r["error_pct"]) for r in pool)
        mid = len(errs) // 2
        median = errs[mid] if len(errs) % 2 else 0.5 * (errs[mid - 1] + errs[mid])
        p90 = errs[min(len(errs) - 1, math.ceil(0.9 * len(errs)) - 1)]
        band[cls] = {"median_abs_pct": round(median * widen, 1), "p90_abs_pct": round(p90 * widen, 1),
                     "rows": len(errs)}
    return {"provenance": provenance, "error_band": band, "extrapolated": widen > 1.0, "notes": notes}
