"""Spec-only cost parameters and physical bounds per GPU generation, where they differ from the defaults.

``CostParams``' defaults are Blackwell's. A kernel's published rate differs between generations (FlashMLA's
sparse kernels on B200 and H800), so the spec-only value and the bound of such a parameter are kept here per
generation; calibration keys kernel parameters by generation (``perfsim.calibration.param_space``).
"""

from __future__ import annotations

from perfsim.costs.params import B200_BF16_TFLOPS, H800_BF16_TFLOPS, CostParams

#: spec-only values that differ from the (Blackwell) defaults on other GPU generations, with sources
GENERATION_DEFAULTS: dict[str, dict[str, float]] = {
    "hopper": {
        # FlashMLA README: sparse prefill 640, FP8 sparse decode 410 TFLOPS on H800 (989 TFLOPS BF16)
        "sparse_prefill_eff": 0.9 * 640 / H800_BF16_TFLOPS,
        "sparse_decode_eff": 0.9 * 410 / H800_BF16_TFLOPS,
        # vLLM's fused_marlin_moe at 1,024-4,096 tokens (Mixtral shapes): 265-291 TFLOPS on H100 (flagos-ai/FlagGems
        # PR 4350's full-Hopper table); Marlin issues Ampere-style mma.sync and dequantizes in the main loop
        "gemm_eff_weight_only": 0.30,
        # the same kernel at 1-32 tokens: time = intercept + weights / rate over the weights its experts touch; the
        # slope gives 21 weights per SM-cycle on both H20 (78 SMs; PRs 3609, 4483) and H100 (132 SMs; PR 4350), far
        # below either GPU's HBM rate, and the intercept 32-36 us per fused call of two GEMMs and three small kernels
        "weight_dequant_per_sm_cycle": 21.0,
        "weight_only_gemm_latency_s": 12e-6,
    },
}
#: physical bounds per generation where they are narrower than the generic ones: a kernel in vLLM never beats
#: its own published benchmark (FlashMLA README: B200 1,450 / 350, H800 640 / 410 TFLOPS)
GENERATION_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "blackwell": {
        "sparse_prefill_eff": (0.05, 1450 / B200_BF16_TFLOPS),
        "sparse_decode_eff": (0.02, 350 / B200_BF16_TFLOPS),
    },
    "hopper": {
        "sparse_prefill_eff": (0.05, 640 / H800_BF16_TFLOPS),
        "sparse_decode_eff": (0.02, 410 / H800_BF16_TFLOPS),
    },
}


def spec_params(generation: str) -> CostParams:
    """The spec-only parameters of a GPU generation ('blackwell', 'hopper', ...)."""
    return CostParams(**GENERATION_DEFAULTS.get(generation, {}))


def bounds_for(name: str, generation: str) -> tuple[float, float]:
    """The physical bounds of a parameter on a GPU generation."""
    return GENERATION_BOUNDS.get(generation, {}).get(name, CostParams.bounds(name))
