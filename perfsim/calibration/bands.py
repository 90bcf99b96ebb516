"""How much to trust a prediction: error bands from a profile's held-out residuals, widened off its domain."""

from __future__ import annotations

import math
from typing import Any

from perfsim.calibration.measurement import parallel_kind
from perfsim.calibration.profiles import borrowed_kernels, provenance, read_profile
from perfsim.calibration.stats import abs_error_stats
from perfsim.specs.hardware import HardwareSpec

#: error bands widen by this factor for each way a prediction leaves the calibrated domain, compounding: a
#: judgement, not a fit (no held-out data outside the domain exist to fit it); two departures give 2.25x
EXTRAPOLATION_WIDENING = 1.5
#: error bands come from the cross-validation residuals of rows with the same model and parallelism when
#: at least this many exist, else from every row of the metric class
MIN_SIMILAR_ROWS = 3


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
    where = provenance(profile, hw, kernels_from=borrowed_kernels(calibration, hw)[1])
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
    for what, value, key in (
        ("tensor parallel size", dep.tp, "tensor_parallel_sizes"),
        ("data parallel size", dep.dp, "data_parallel_sizes"),
        ("expert parallel size", dep.ep, "expert_parallel_sizes"),
        ("KV cache dtype", dep.kv_cache_dtype, "kv_cache_dtypes"),
    ):
        seen = domain.get(key)
        if seen and value not in seen and not (key == "kv_cache_dtypes" and "auto" in seen):
            notes.append(f"{what} {value} is outside the calibrated set ({', '.join(map(str, seen))})")
            widen *= EXTRAPOLATION_WIDENING
    if "enforce_eager" in domain and dep.cudagraph_mode == "NONE" and not domain["enforce_eager"]:
        notes.append("eager mode (no CUDA graphs) was not calibrated")
        widen *= EXTRAPOLATION_WIDENING
    if "request_rate" in domain and math.isfinite(bench.request_rate):
        rng = domain["request_rate"]
        if rng is None or not rng[0] <= bench.request_rate <= rng[1]:
            span = (
                f"the calibrated range {rng[0]:g}-{rng[1]:g}/s"
                if rng
                else "every calibrated run sent at once"
            )
            notes.append(f"request rate {bench.request_rate:g}/s is outside {span} (extrapolated)")
            widen *= EXTRAPOLATION_WIDENING
    ratios = domain.get("range_ratio")
    if ratios and not ratios[0] - 1e-9 <= bench.random_range_ratio <= ratios[1] + 1e-9:
        notes.append(
            f"--random-range-ratio {bench.random_range_ratio:g} is outside the calibrated "
            f"{ratios[0]:g}-{ratios[1]:g} (extrapolated)"
        )
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
