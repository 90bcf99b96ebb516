"""Deployment defaults and the memory plan (weights per GPU, KV capacity by vLLM's formula)."""

from __future__ import annotations

import math

import pytest

from perfsim.costs.memory import (
    check_fits,
    memory_plan,
    model_weight_bytes,
    smallest_fitting_tp,
    weight_shares,
)
from perfsim.errors import DoesNotFitError, SpecError
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.dtypes import WEIGHT_BYTES
from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model


def test_vllm_defaults_on_gb300(v32_fp4, gb300):
    r = resolve_deployment(Deployment(), v32_fp4, gb300, 2)
    assert (r.max_num_batched_tokens, r.max_num_seqs) == (8192, 1024)
    assert r.gpu_memory_utilization == 0.9 and r.async_scheduling
    assert r.block_size == 64 and r.attention_backend == "FLASHMLA_SPARSE"
    assert r.kv_cache_dtype == "fp8_ds_mla"
    assert r.cudagraph_mode == "FULL_AND_PIECEWISE" and r.max_cudagraph_capture_size == 512
    assert r.num_gpus == 2


def test_block_size_by_backend(r1_fp4, gb300):
    assert resolve_deployment(Deployment(), r1_fp4, gb300, 2).block_size == 128  # CUTLASS_MLA on Blackwell
    assert (
        resolve_deployment(Deployment(), r1_fp4, load_hardware("h200"), 8).block_size == 64
    )  # FlashMLA path
    assert resolve_deployment(Deployment(), r1_fp4, gb300, 2).kv_cache_dtype == "bfloat16"
    mtp = resolve_deployment(Deployment(num_speculative_tokens=1), r1_fp4, gb300, 2)
    assert (mtp.attention_backend, mtp.block_size, mtp.cudagraph_mode) == (
        "FLASHINFER_MLA",
        64,
        "FULL_AND_PIECEWISE",
    )
    assert any("CUTLASS_MLA" in n for n in mtp.notes)


def test_attention_backend_choices(r1_fp4, v32_fp4, gb300):
    h200 = load_hardware("h200")
    # Hopper: vLLM's priority list takes FLASH_ATTN_MLA for a BF16 cache, dense FlashMLA for FP8; both get block 64
    bf16 = resolve_deployment(Deployment(), r1_fp4, h200, 8)
    fp8 = resolve_deployment(Deployment(kv_cache_dtype="fp8"), r1_fp4, h200, 8)
    assert (bf16.attention_backend, bf16.block_size) == ("FLASH_ATTN_MLA", 64)
    assert (fp8.attention_backend, fp8.block_size) == ("FLASHMLA", 64)
    # explicit choices keep vLLM's block rules: FlashInfer keeps 32, CUTLASS rounds a bad size to 128 with a note
    fi = resolve_deployment(Deployment(attention_backend="FLASHINFER_MLA", block_size=32), r1_fp4, gb300, 2)
    assert fi.block_size == 32 and not any(
        "CUTLASS_MLA" in n for n in fi.notes
    )  # no departure note when asked
    cut = resolve_deployment(Deployment(block_size=64), r1_fp4, gb300, 2)
    assert cut.block_size == 128 and any("forces KV block size 128" in n for n in cut.notes)
    # V3.2 with MTP stays on sparse MLA, whose indexer downgrades graphs to PIECEWISE
    v32_mtp = resolve_deployment(Deployment(num_speculative_tokens=1), v32_fp4, gb300, 2)
    assert (v32_mtp.attention_backend, v32_mtp.cudagraph_mode) == ("FLASHMLA_SPARSE", "PIECEWISE")
    with pytest.raises(
        SpecError, match="cannot run deepseek-v3 on h200 .* with CUTLASS_MLA; allowed: auto, FLASH"
    ):
        resolve_deployment(Deployment(attention_backend="CUTLASS_MLA"), r1_fp4, h200, 8)
    with pytest.raises(SpecError, match="on gb300 .* with FLASHMLA;"):  # dense FlashMLA is Hopper-only
        resolve_deployment(Deployment(attention_backend="FLASHMLA"), r1_fp4, gb300, 2)
    with pytest.raises(SpecError, match="allowed: auto, FLASHMLA_SPARSE"):
        resolve_deployment(Deployment(attention_backend="CUTLASS_MLA"), v32_fp4, gb300, 2)
    with pytest.raises(SpecError, match="allowed: auto, CUTLASS_MLA"):
        resolve_deployment(Deployment(attention_backend="FLASHMLA_SPARSE"), r1_fp4, gb300, 2)
    with pytest.raises(SpecError, match="FLASH_ATTN_MLA attention backend does not take a fp8_e4m3 KV cache"):
        resolve_deployment(
            Deployment(attention_backend="FLASH_ATTN_MLA", kv_cache_dtype="fp8"), r1_fp4, h200, 8
        )


def test_parallelism_must_divide_heads_and_experts(v32_fp4, gb300):
    with pytest.raises(SpecError, match="does not divide the 128 attention heads"):
        resolve_deployment(Deployment(), v32_fp4, gb300, 3)
    with pytest.raises(SpecError, match="does not divide the 256 routed experts: add --enable-eplb"):
        resolve_deployment(Deployment(data_parallel_size=3, enable_expert_parallel=True), v32_fp4, gb300, 2)
    with pytest.raises(ValueError):
        Deployment(tensor_parallel_size=0)
    with pytest.raises(ValueError, match="num-decode-instances"):
        Deployment(num_prefill_instances=1)


def test_expert_parallel_layout(v32_fp4, gb300):
    r = resolve_deployment(Deployment(data_parallel_size=2, enable_expert_parallel=True), v32_fp4, gb300, 1)
    assert (r.ep, r.moe_tp, r.num_gpus) == (2, 1, 2)


def test_routed_expert_bytes_per_gpu_by_hand(v32_fp4):
    shares = {s.module: s.bytes_per_gpu for s in weight_shares(v32_fp4, tp=2, moe_gpus=2)}
    assert shares["routed_experts"] == pytest.approx(58 * 256 * 44_040_192 * 4.5 / 8 / 2)
    # the fused q_a/kv_a projection is replicated on every TP rank, in BF16
    assert shares["attn_qkv_a"] == pytest.approx(61 * 7168 * (1536 + 576) * 2)
    assert shares["attn_o_proj"] == pytest.approx(61 * 128 * 128 * 7168 * WEIGHT_BYTES["nvfp4"] / 2)


def test_checkpoint_sizes_are_plausible(v32_fp4, r1_fp4):
    # published NVFP4 checkpoints are ~400 GB (R1-0528-NVFP4-v2 listing: 413 GB incl. a BF16 MTP layer)
    assert 370e9 < model_weight_bytes(v32_fp4) < 410e9
    assert 380e9 < model_weight_bytes(r1_fp4) < 420e9
    assert model_weight_bytes(load_model("deepseek-v3", "fp8")) == pytest.approx(688e9, rel=0.03)


def test_kv_capacity_follows_vllms_formula(v32_fp4, gb300):
    r = resolve_deployment(Deployment(), v32_fp4, gb300, 2)
    plan = memory_plan(v32_fp4, gb300, r)
    free = (
        math.ceil(0.9 * gb300.hbm_usable_bytes)
        - plan.weights_bytes
        - plan.activation_peak_bytes
        - plan.non_torch_bytes
    )
    assert plan.num_gpu_blocks == math.floor(free / (48_068 * 64)) - 1
    assert plan.kv_capacity_tokens == plan.num_gpu_blocks * 64
    assert 1.0e6 < plan.kv_capacity_tokens < 1.6e6


def test_mtp_adds_weights_and_a_kv_layer(v32_fp4, gb300):
    base = memory_plan(v32_fp4, gb300, resolve_deployment(Deployment(), v32_fp4, gb300, 2))
    mtp = memory_plan(
        v32_fp4, gb300, resolve_deployment(Deployment(num_speculative_tokens=1), v32_fp4, gb300, 2)
    )
    assert mtp.kv_layers == 62 and mtp.weights_bytes > base.weights_bytes + 10e9  # BF16 MTP layer, TP2


def test_smallest_tp_that_fits(gb300):
    assert smallest_fitting_tp(load_model("deepseek-v3.2", "fp4"), gb300, Deployment()) == 2
    assert smallest_fitting_tp(load_model("deepseek-v3.2", "fp8"), gb300, Deployment()) == 4


def test_refusal_says_by_how_much_and_what_fits(gb300):
    fp8 = load_model("deepseek-v3.2", "fp8")
    with pytest.raises(DoesNotFitError) as err:
        check_fits(fp8, gb300, resolve_deployment(Deployment(), fp8, gb300, 2))
    assert "GiB short" in str(err.value) and "-tp 4" in str(err.value)


def test_a_small_token_budget_lowers_max_num_seqs_as_vllm_does(v32_fp4, gb300):
    """vLLM lowers the default max_num_seqs to the budget [arg_utils.py:2023-2025]; both given, it refuses."""
    dep = resolve_deployment(Deployment(max_num_batched_tokens=100), v32_fp4, gb300, 2)
    assert dep.max_num_seqs == 100 and any("max_num_seqs lowered" in n for n in dep.notes)
    with pytest.raises(SpecError, match="must be <= max_num_batched_tokens"):
        resolve_deployment(Deployment(max_num_batched_tokens=100, max_num_seqs=128), v32_fp4, gb300, 2)
