"""Every efficiency factor and overhead of the cost model, in one place, with units and bounds.

Spec sheets give peaks; kernels reach a fraction of them that depends on the kernel class and on its
size. ``CostParams`` names each such fraction or overhead, with a physically motivated default (the
"spec-only" prediction) and the bounds calibration must respect (an efficiency never exceeds 1).
Calibration profiles (``calibrations/*.yaml``) override a few of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field


def _param(default: float, lo: float, hi: float, unit: str, description: str) -> float:
    return Field(
        default=default,
        ge=lo,
        le=hi,
        description=description,
        json_schema_extra={"unit": unit, "bounds": [lo, hi]},
    )


class CostParams(BaseModel):
    """Named efficiencies (fractions of peak, 0-1) and overheads (seconds) of the cost model.

    Defaults come from published kernel figures where they exist (DeepGEMM, FlashMLA, FlashAttention on
    Hopper/Blackwell; see the field descriptions) and are the spec-only prediction.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # ---- dense and grouped GEMMs ------------------------------------------------------------------
    gemm_eff_nvfp4: float = _param(
        0.65,
        0.05,
        1.0,
        "fraction",
        "Peak fraction of large NVFP4 GEMMs (block-scaled FP4 tensor cores; CUTLASS / TRT-LLM-gen kernels).",
    )
    gemm_eff_fp8: float = _param(
        0.80,
        0.05,
        1.0,
        "fraction",
        "Peak fraction of large FP8 block-scaled GEMMs before the M/N/K size factors (DeepGEMM's H800 table fits "
        "0.82 of the 1,979 TFLOPS spec).",
    )
    gemm_eff_bf16: float = _param(
        0.80,
        0.05,
        1.0,
        "fraction",
        "Peak fraction of large BF16 GEMMs before the M/N/K size factors (cuBLAS).",
    )
    gemm_m_half_tokens: float = _param(
        16.0,
        1.0,
        4096.0,
        "tokens",
        "Rows (tokens per expert for grouped GEMMs) at which a GEMM reaches half its peak fraction: padding of "
        "small M to the kernel's token tile. vLLM's FlashInfer MoE tiles tokens per expert in 8-64-row tiles "
        "(calculate_tile_tokens_dim: 1.3x the mean, next power of two), and skinny dense GEMMs put the tokens "
        "on the narrow side of the MMA (swap-AB), so decode-sized M pads to about 8-16 rows, not 128.",
    )
    gemm_nk_half: float = _param(
        512.0,
        0.0,
        8192.0,
        "elements",
        "Output columns N and reduction depth K at which a GEMM reaches half its peak fraction in that dimension "
        "(small N: idle SMs; short K: unhidden tile prologue/epilogue). 512 reproduces DeepGEMM's H800 table.",
    )
    # ---- attention ---------------------------------------------------------------------------------
    attn_prefill_eff: float = _param(
        0.55,
        0.05,
        1.0,
        "fraction",
        "Peak fraction (BF16) of dense causal MLA prefill attention (FlashInfer/FA ragged; SM100 FMHA ~1,460 of "
        "2,250 TFLOPS).",
    )
    attn_decode_eff: float = _param(
        0.55,
        0.05,
        1.0,
        "fraction",
        "Peak fraction (BF16) of absorbed MLA decode attention when compute-bound (FlashMLA: 660 of ~865 TFLOPS "
        "on H800).",
    )
    sparse_attn_eff: float = _param(
        0.45,
        0.02,
        1.0,
        "fraction",
        "Peak fraction (BF16) of DeepSeek sparse attention (FlashMLA sparse; 1,450 of 2,250 TFLOPS on B200 in "
        "its own benchmark, less in vLLM with head padding and gathers).",
    )
    indexer_eff: float = _param(
        0.35,
        0.02,
        1.0,
        "fraction",
        "Peak fraction (FP8) of the lightning indexer's logits kernels (DeepGEMM fp8_mqa_logits).",
    )
    topk_eff: float = _param(
        0.25,
        0.01,
        1.0,
        "fraction",
        "Fraction of HBM bandwidth at which the indexer's per-row top-k reads its candidate logits.",
    )
    # ---- memory and communication -------------------------------------------------------------------
    hbm_eff: float = _param(
        0.85,
        0.3,
        1.0,
        "fraction",
        "Fraction of peak HBM bandwidth that large streaming kernels reach (FlashMLA decode: 3,000 of 3,350 GB/s "
        "on H800; DeepGEMM's memory-bound shapes fit 0.82).",
    )
    mem_bytes_half: float = _param(
        0.0,
        0.0,
        1e9,
        "B",
        "Bytes one kernel moves at which it reaches half its streaming bandwidth: the ramp-up and tail of a short "
        "kernel run alone (DeepGEMM's isolated H800 small-M benchmarks fit 6 MB). 0 by default: inside CUDA graphs "
        "with programmatic dependent launch consecutive kernels overlap these, and the serving data agree.",
    )
    comm_eff: float = _param(
        0.70, 0.1, 1.0, "fraction", "Fraction of link bandwidth that collectives reach (NVLink or NIC)."
    )
    comm_latency_s: float = _param(
        8e-6, 0.0, 1e-3, "s", "Fixed latency of one collective (launch + synchronization) on NVLink."
    )
    nic_latency_s: float = _param(
        20e-6, 0.0, 1e-2, "s", "Fixed latency of one collective or transfer crossing the NIC (RDMA)."
    )
    # ---- MoE ----------------------------------------------------------------------------------------
    ep_imbalance: float = _param(
        0.15,
        0.0,
        2.0,
        "fraction",
        "Expert-parallel load imbalance: the busiest rank gets (1 + ep_imbalance x (1 - 1/ep)) times the mean "
        "routed tokens (real routing is skewed; EPLB gains of 1.5x are reported at EP32).",
    )
    # ---- fixed costs ----------------------------------------------------------------------------------
    kernel_gap_s: float = _param(
        2.0e-6,
        0.0,
        50e-6,
        "s",
        "GPU time lost per kernel boundary (launch latency, tail of the previous kernel), even inside CUDA graphs.",
    )
    launch_overhead_s: float = _param(
        5.0e-6, 0.0, 100e-6, "s", "CPU time to launch one kernel eagerly (outside CUDA graphs)."
    )
    cpu_step_s: float = _param(
        1.5e-3,
        0.0,
        50e-3,
        "s",
        "CPU time per engine step for scheduling, input preparation and output processing (hidden behind the "
        "GPU with async scheduling when shorter than the GPU step).",
    )
    cpu_per_request_s: float = _param(
        8e-6, 0.0, 1e-3, "s", "Extra CPU time per scheduled request per step (bookkeeping, detokenization)."
    )

    api_server_latency_s: float = _param(
        20e-3,
        0.0,
        1.0,
        "s",
        "Time from the client sending a request until the engine can schedule it: HTTP, tokenization, IPC to "
        "the engine core and the asyncio queue of vLLM's API server process under load.",
    )
    pd_handoff_s: float = _param(
        2e-3,
        0.0,
        0.5,
        "s",
        "Prefill-to-decode hand-off besides the KV bytes: proxy round trip and NIXL handshake (P/D serving).",
    )

    @classmethod
    def bounds(cls, name: str) -> tuple[float, float]:
        """The (low, high) bounds of a parameter, for calibration."""
        extra = cls.model_fields[name].json_schema_extra
        assert isinstance(extra, dict)
        bounds = extra["bounds"]
        assert isinstance(bounds, list)
        lo, hi = bounds
        return float(lo), float(hi)  # type: ignore[arg-type]  # the two floats _param stores

    @classmethod
    def unit(cls, name: str) -> str:
        """Unit of a parameter."""
        extra = cls.model_fields[name].json_schema_extra
        assert isinstance(extra, dict)
        return str(extra["unit"])


#: GEMM efficiencies by weight precision; the defaults come from each kernel family's own benchmarks
GEMM_EFF_PARAMS = ("gemm_eff_nvfp4", "gemm_eff_fp8", "gemm_eff_bf16")


def tie_gemm_efficiencies(params: CostParams, fitted: Sequence[str]) -> tuple[CostParams, dict[str, str]]:
    """Carry the fitted GEMM derating over to the GEMM precisions that were not fitted.

    Kernel benchmarks overstate what GEMMs reach inside a serving engine (shapes, fused quantization,
    launch gaps) by a similar factor for every precision, so an unfitted GEMM efficiency takes its default
    times the geometric mean of fitted/default over the fitted ones. Returns the parameters and, per derived
    name, a sentence saying how it was derived (empty when no GEMM efficiency was fitted).
    """
    fitted_gemm = [n for n in GEMM_EFF_PARAMS if n in fitted]
    if not fitted_gemm:
        return params, {}
    defaults = CostParams()
    log_ratio = sum(math.log(getattr(params, n) / getattr(defaults, n)) for n in fitted_gemm) / len(
        fitted_gemm
    )
    ratio = math.exp(log_ratio)
    derived = [n for n in GEMM_EFF_PARAMS if n not in fitted]
    lo_hi = {n: CostParams.bounds(n) for n in derived}
    update = {n: min(max(getattr(defaults, n) * ratio, lo_hi[n][0]), lo_hi[n][1]) for n in derived}
    why = (
        f"not fitted: default x {ratio:.3g}, the geometric mean of fitted/default of {', '.join(fitted_gemm)}"
    )
    return params.model_copy(update=update), {n: why for n in derived}
