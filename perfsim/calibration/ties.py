"""Parameters derived from fitted ones: tensor-core kernel efficiencies the data do not exercise."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

from perfsim.calibration.param_space import bounds_of, default_of, split_name

#: GEMM efficiencies by weight precision; the defaults come from each kernel family's own benchmarks
GEMM_EFF_PARAMS = ("gemm_eff_nvfp4", "gemm_eff_fp8", "gemm_eff_bf16")
#: the compute-bound (tensor-core) kernel efficiencies that share one in-engine derating per GPU generation:
#: the GEMMs and the prefill attention kernels (dense and sparse), each defaulting to its kernel's benchmark
TIED_EFF_PARAMS = (*GEMM_EFF_PARAMS, "attn_prefill_eff", "sparse_prefill_eff")


def tie_kernel_efficiencies(
    values: Mapping[str, float], keep: Collection[str] = ()
) -> tuple[dict[str, float], dict[str, str]]:
    """Carry the fitted derating of each GPU generation over to its tensor-core kernels that were not fitted.

    Kernel benchmarks overstate what compute-bound kernels reach inside a serving engine (shapes, fused
    quantization, launch gaps, a clock that the whole engine's load holds below the benchmark's) by a similar
    factor for every family: the bundled Blackwell fit puts GEMMs of three precisions and both prefill
    attention kernels at 0.6-0.9 of their benchmarks. An unfitted member of ``TIED_EFF_PARAMS`` takes its
    generation's default times the geometric mean of fitted/default over the fitted members (a cold-start
    fold that cannot fit sparse attention still inherits the derating); keys in ``keep`` are left alone.
    Returns the values and, per derived key, a sentence saying how it was derived (empty when none was fitted).
    """
    out = dict(values)
    why: dict[str, str] = {}
    by_generation: dict[str, list[str]] = {}
    for key in values:
        base, generation = split_name(key)
        if base in TIED_EFF_PARAMS:
            by_generation.setdefault(generation or "", []).append(key)
    for generation, fitted in by_generation.items():
        ratio = math.exp(sum(math.log(values[k] / default_of(k)) for k in fitted) / len(fitted))
        fitted_bases = {split_name(k)[0] for k in fitted}
        for base in TIED_EFF_PARAMS:
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
