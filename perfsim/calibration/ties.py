"""Parameters derived from fitted ones: GEMM efficiencies of precisions the data do not exercise."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from perfsim.calibration.param_space import bounds_of, default_of, split_name

#: GEMM efficiencies by weight precision; the defaults come from each kernel family's own benchmarks
GEMM_EFF_PARAMS = ("gemm_eff_nvfp4", "gemm_eff_fp8", "gemm_eff_bf16")


def tie_gemm_efficiencies(
    values: Mapping[str, float], keep: Collection[str] = ()
) -> tuple[dict[str, float], dict[str, str]]:
    """Carry the fitted GEMM derating of each GPU generation over to its GEMM precisions that were not fitted.

    Kernel benchmarks overstate what GEMMs reach inside a serving engine (shapes, fused quantization, launch
    gaps) by a similar factor for every precision, so an unfitted GEMM efficiency takes its generation's default
    times the geometric mean of fitted/default over the fitted ones; keys in ``keep`` are left alone. Returns the
    values and, per derived key, a sentence saying how it was derived (empty when no GEMM efficiency was fitted).
    """
    out = dict(values)
    why: dict[str, str] = {}
    by_generation: dict[str, list[str]] = {}
    for key in values:
        base, generation = split_name(key)
        if base in GEMM_EFF_PARAMS:
            by_generation.setdefault(generation or "", []).append(key)
    for generation, fitted in by_generation.items():
        ratio = math.exp(sum(math.log(values[k] / default_of(k)) for k in fitted) / len(fitted))
        fitted_bases = {split_name(k)[0] for k in fitted}
        for base in GEMM_EFF_PARAMS:
            if base in fitted_bases:
                continue
            key = f"{base}@{generation}" if generation else base
            if key in keep:  # set elsewhere (a base profile's fitted value): not derived here
                continue
            lo, hi = bounds_of(key)
            out[key] = min(max(default_of(key) * ratio, lo), hi)
            names = ", ".join(sorted(fitted))
            why[key] = f"not fitted: default x {ratio:.3g}, the geometric mean of fitted/default of {names}"
    return out, why
