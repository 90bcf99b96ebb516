"""Every efficiency factor and overhead of the cost model, in one place, with units, bounds and sources.

Spec sheets give peaks; kernels reach a fraction of them that depends on the kernel class, its size and the
GPU generation. ``CostParams`` names each such fraction or overhead with a physically motivated default (the
"spec-only" prediction) and the bounds calibration must respect. Each parameter has a scope:

* ``kernel``: what one GPU generation's kernels reach (efficiencies, ramps). Defaults are Blackwell's;
  ``GENERATION_DEFAULTS`` holds other generations' published values, and a profile fitted on one generation
  does not carry them to another.
* ``link``: collective and transfer costs; ``engine``: vLLM's CPU-side costs per version; ``workload``:
  properties of the benchmark's traffic (routing skew). These carry over between GPUs.
"""

from __future__ import annotations

from perfsim.costs.param_field import param_field as _param
from perfsim.costs.params_links import LinkParams

#: Blackwell B200 dense BF16 peak, the base of FlashMLA's published Blackwell rates (TFLOPS)
B200_BF16_TFLOPS = 2250.0
#: H800 (= H100 SXM) dense BF16 peak, the base of FlashMLA's published Hopper rates (TFLOPS)
H800_BF16_TFLOPS = 989.0


class CostParams(LinkParams):
    """Named efficiencies (fractions of peak, 0-1), overheads (seconds) and rates of the cost model.

    Defaults come from published kernel figures where they exist (DeepGEMM, FlashMLA, FlashAttention on
    Blackwell; see the field descriptions and ``GENERATION_DEFAULTS``) and are the spec-only prediction.
    The link parameters and the model config (no extra keys, validated assignment) come from ``LinkParams``.
    """

    # ---- dense and grouped GEMMs ------------------------------------------------------------------
    gemm_eff_nvfp4: float = _param(
        0.65,
        0.05,
        1.0,
        "fraction",
        "kernel",
        "Peak fraction of large NVFP4 GEMMs (block-scaled FP4 tensor cores; CUTLASS / TRT-LLM-gen kernels).",
    )
    gemm_eff_fp8: float = _param(
        0.80,
        0.05,
        1.0,
        "fraction",
        "kernel",
        "Peak fraction of large FP8 block-scaled GEMMs before the M/N/K size factors (DeepGEMM's H800 table fits "
        "0.82 of the 1,979 TFLOPS spec).",
    )
    gemm_eff_bf16: float = _param(
        0.80,
        0.05,
        1.0,
        "fraction",
        "kernel",
        "Peak fraction of large BF16 GEMMs before the M/N/K size factors (cuBLAS).",
    )
    gemm_eff_weight_only: float = _param(
        0.80,
        0.05,
        1.0,
        "fraction",
        "kernel",
        "BF16-peak fraction of large weight-only GEMMs (4-bit weights dequantized to BF16 in the main loop) before "
        "the size factors. On Blackwell vLLM runs MXFP4 x BF16 through TRT-LLM-gen, assumed at the BF16 rate "
        "(unmeasured); Hopper's Marlin is far slower (GENERATION_DEFAULTS).",
    )
    gemm_m_half_tokens: float = _param(
        16.0,
        1.0,
        4096.0,
        "tokens",
        "kernel",
        "Rows (tokens per expert for grouped GEMMs) at which a GEMM reaches half its peak fraction: padding of "
        "small M to the kernel's token tile. vLLM's FlashInfer MoE tiles tokens per expert in 8-64-row tiles "
        "(calculate_tile_tokens_dim: 1.3x the mean, next power of two), and skinny dense GEMMs put the tokens "
        "on the narrow side of the MMA (swap-AB), so decode-sized M pads to about 8-16 rows, not 128.",
    )
    trtllm_fp4_moe_min_rows: float = _param(
        128.0,
        64.0,
        256.0,
        "rows",
        "kernel",
        "Rows of tensor-core work an expert of TRT-LLM-gen's MXFP4 MoE costs once it has more rows than the small "
        "tile takes (perfsim.costs.mxfp4_moe): the 128-row tile of FlashInfer PR 5301's B200 table, flat from 32 "
        "to 128 rows per expert.",
    )
    gemm_nk_half: float = _param(
        512.0,
        0.0,
        8192.0,
        "elements",
        "kernel",
        "Output columns N and reduction depth K at which a GEMM reaches half its peak fraction in that dimension "
        "(small N: idle SMs; short K: unhidden tile prologue/epilogue). 512 reproduces DeepGEMM's H800 table.",
    )
    gemm_mem_serial: float = _param(
        0.3,
        0.0,
        1.0,
        "fraction",
        "kernel",
        "Fraction of the shorter of a GEMM's compute and weight-streaming times that the kernel does not hide "
        "under the longer (0 = the ideal roofline). Near the ridge point neither unit is saturated: vLLM's GB200 "
        "post shows the NVFP4 MoE kernel 26 % faster per token at 4,096 rows per expert than at 256, where the "
        "6.3 GB of a layer's expert weights take half as long as its math; decode GEMMs of large batches pay it "
        "as a per-request cost on top of the weight reads.",
    )
    # ---- attention ---------------------------------------------------------------------------------
    attn_prefill_eff: float = _param(
        0.55,
        0.05,
        0.8,
        "fraction",
        "kernel",
        "Peak fraction (BF16) of the tensor-core part of dense causal MLA prefill attention (FlashInfer/TRT-LLM "
        "ragged; SM100 FMHA ~1,460 of 2,250 TFLOPS in its own benchmark); its exponentials add to it as "
        "attn_exp_serial says.",
    )
    attn_decode_eff: float = _param(
        0.55,
        0.05,
        0.8,
        "fraction",
        "kernel",
        "Peak fraction (BF16) of absorbed MLA decode attention when compute-bound (FlashMLA: 660 of 989 TFLOPS "
        "on H800), on the heads the kernel computes (CUTLASS MLA pads to 128).",
    )
    attn_exp_serial: float = _param(
        1.0,
        0.0,
        1.0,
        "fraction",
        "kernel",
        "Fraction of the shorter of an attention kernel's tensor-core time and its softmax exponential (SFU) time "
        "not hidden under the longer: 1 = they alternate within each tile. On Blackwell the two are nearly "
        "balanced for MLA prefill (640 flops per exponential at 128+192 head dims); NVIDIA credits Blackwell "
        "Ultra's doubled SFU rate with 2x faster attention layers, which a hidden exponential could not give, and "
        "vLLM's GB200 post measures trtllm_ragged_prefill at 0.33-0.41 of BF16 peak.",
    )
    sparse_prefill_eff: float = _param(
        0.9 * 1450 / B200_BF16_TFLOPS,
        0.05,
        0.7,
        "fraction",
        "kernel",
        "Peak fraction (BF16) of FlashMLA's sparse prefill kernel on the slots and padded heads it computes: "
        "1,450 of 2,250 TFLOPS on B200 in its own benchmark (FlashMLA README), the upper bound on Blackwell (640 of "
        "989 on H800); 0.9 of it by default, for vLLM's batches.",
    )
    sparse_decode_eff: float = _param(
        0.9 * 350 / B200_BF16_TFLOPS,
        0.02,
        0.7,
        "fraction",
        "kernel",
        "Peak fraction (BF16) of FlashMLA's FP8 sparse decode kernel on the slots and padded heads it computes: "
        "at most 350 of 2,250 TFLOPS on B200 ('not really optimized yet', FlashMLA README), the upper bound on "
        "Blackwell (410 of 989 on H800); dequantizing FP8 entries on CUDA cores limits it (FlashMLA's FP8 sparse "
        "deep dive); 0.9 of it by default.",
    )
    indexer_eff: float = _param(
        0.35,
        0.02,
        1.0,
        "fraction",
        "kernel",
        "Peak fraction (FP8) of the lightning indexer's logits kernels (DeepGEMM fp8_mqa_logits, "
        "fp8_paged_mqa_logits).",
    )
    topk_eff: float = _param(
        0.25,
        0.01,
        1.0,
        "fraction",
        "kernel",
        "Fraction of HBM bandwidth at which the indexer's per-row top-k reads its candidate logits.",
    )
    topk_latency_s: float = _param(
        6e-6,
        0.0,
        50e-6,
        "s",
        "kernel",
        "Fixed time of one indexer top-k kernel (launch and the radix passes' setup): the B200 baseline of vLLM "
        "PR #37421 takes 12.4 us for 4 rows of 16k keys, about half of it independent of the length.",
    )
    topk_row_Bps: float = _param(
        10e9,
        1e9,
        200e9,
        "B/s",
        "kernel",
        "Rate at which one thread block of the indexer's top-k streams its row of fp32 logits: the B200 baseline "
        "of vLLM PR #37421 takes 64 us for rows of 164k keys (656 kB).",
    )
    weight_dequant_per_sm_cycle: float = _param(
        64.0,
        8.0,
        64.0,
        "weights/SM/cycle",
        "kernel",
        "Weights a weight-only GEMM (4-bit weights, BF16 math) dequantizes per SM and clock cycle in its main loop; "
        "when that is slower than streaming the weights, the kernel is bound by it. Blackwell's TRT-LLM-gen "
        "MXFP4 x BF16 kernels are not measured and not limited (the upper bound); Hopper's Marlin is "
        "(GENERATION_DEFAULTS). GPUs whose YAML gives no boost clock are not limited.",
    )
    weight_only_gemm_latency_s: float = _param(
        0.0,
        0.0,
        30e-6,
        "s",
        "kernel",
        "Fixed time of one weight-only GEMM call beyond its work (Marlin: stripe set-up and the serialized global "
        "reduction across K slices); 0 on Blackwell (unmeasured), Hopper's in GENERATION_DEFAULTS.",
    )
    # ---- memory ------------------------------------------------------------------------------------
    hbm_eff: float = _param(
        0.85,
        0.5,
        0.92,
        "fraction",
        "kernel",
        "Fraction of peak HBM bandwidth that large streaming kernels reach: published streaming kernels reach "
        "0.82-0.92 of the spec (DeepGEMM's memory-bound shapes fit 0.82, FlashMLA dense decode 3,000 of 3,350 "
        "GB/s on H800), the upper bound.",
    )
    mem_ramp_s: float = _param(
        1.0e-6,
        0.0,
        10e-6,
        "s",
        "kernel",
        "Fixed time a streaming kernel needs before it moves data at full bandwidth (first wave of loads, tail), on "
        "top of the kernel-boundary gap: DeepGEMM's isolated H800 memory-bound shapes imply 2-4.5 us per kernel in "
        "all, of which about 1 us is the launch gap; vLLM 0.14.1 enables programmatic dependent launch for almost "
        "none of its kernels, so consecutive kernels do not hide it.",
    )
    # ---- workload ----------------------------------------------------------------------------------
    expert_popularity_cv: float = _param(
        0.5,
        0.0,
        1.5,
        "fraction",
        "workload",
        "Coefficient of variation of how often the benchmark's tokens pick each routed expert (0 = uniform). "
        "It sets the expert-parallel imbalance with the routing's sampling noise (perfsim.costs.moe_balance) and "
        "how many distinct experts a small batch reads (perfsim.costs.expert_coverage); "
        "EPLB gains 17-34 % on random prompts at EP8 (ROCm/ATOM PR #1210): busiest-rank loads of 1.17-1.34x, "
        "which this closed form reaches with CVs of about 0.5-1.4 (0.5 is the prior, the low end); DeepSeek "
        "reports inherently hot experts.",
    )
    # ---- fixed costs -------------------------------------------------------------------------------
    kernel_gap_s: float = _param(
        1.5e-6,
        0.3e-6,
        10e-6,
        "s",
        "engine",
        "GPU time lost per kernel boundary inside CUDA graphs (launch latency, the tail of the previous "
        "kernel): 0.6-1 us for empty kernels, more with the last wave's tail.",
    )
    launch_overhead_s: float = _param(
        5.0e-6,
        1e-6,
        30e-6,
        "s",
        "engine",
        "CPU time to launch one kernel eagerly (outside CUDA graphs): 3 us raw, 6.8 us through Inductor on GB200 "
        "(tritonbench #1017).",
    )
    cpu_step_s: float = _param(
        1.5e-3,
        0.0,
        20e-3,
        "s",
        "engine",
        "CPU time per engine step of the engine core (scheduling, input preparation, output processing), hidden "
        "behind the GPU with async scheduling when shorter than the GPU step.",
    )
    cpu_per_request_s: float = _param(
        4e-6,
        0.0,
        50e-6,
        "s",
        "engine",
        "Engine-core CPU time per scheduled request per step (schedule, update_from_output and the async "
        "placeholder loop: about 1.1 us per request in update_from_output alone, vLLM PR #46112), hidden like "
        "cpu_step_s.",
    )
    worker_per_request_s: float = _param(
        2e-6,
        0.0,
        20e-6,
        "s",
        "engine",
        "GPU-worker CPU time per scheduled request per step (_update_states, input preparation, bookkeeping), "
        "hidden by async scheduling except in steps that synchronize: a dense-MLA step with a prefill chunk "
        "copies its metadata to the host (mla/common.py:815-819), and MTP waits for the accepted-token counts.",
    )
    api_server_latency_s: float = _param(
        10e-3,
        0.0,
        30e-3,
        "s",
        "engine",
        "Mean time from the client sending a request until the engine can schedule it: HTTP, tokenization (the "
        "tokenizer batches for up to 2 ms), IPC to the engine core: a few ms for prompts of a few thousand tokens.",
    )
    api_server_latency_cv: float = _param(
        0.5,
        0.0,
        2.0,
        "fraction",
        "engine",
        "Coefficient of variation of the front-end latency between requests (lognormal, seeded): the asyncio "
        "queue and the tokenizer's batching window spread arrivals at the engine.",
    )
    step_time_cv: float = _param(
        0.02,
        0.0,
        0.2,
        "fraction",
        "engine",
        "Run-to-run jitter of engine step times (lognormal, seeded): clock and memory contention, host "
        "scheduling. It disperses fixed-length requests that would otherwise stay in lock-step waves.",
    )
    pd_handoff_s: float = _param(
        2e-3,
        0.0,
        0.5,
        "s",
        "engine",
        "Prefill-to-decode hand-off besides the KV bytes: proxy round trip and NIXL handshake (P/D serving).",
    )

    @classmethod
    def bounds(cls, name: str) -> tuple[float, float]:
        """The (low, high) bounds of a parameter, for calibration."""
        lo, hi = _extra(name)["bounds"]
        return float(lo), float(hi)

    @classmethod
    def unit(cls, name: str) -> str:
        """Unit of a parameter."""
        return str(_extra(name)["unit"])

    @classmethod
    def scope(cls, name: str) -> str:
        """Scope of a parameter: kernel, link, engine or workload."""
        return str(_extra(name)["scope"])


def _extra(name: str) -> dict:
    extra = CostParams.model_fields[name].json_schema_extra
    assert isinstance(extra, dict)
    return extra
