"""Cost model: hand-computed work per operator, invariants, and the known shapes of MLA vs DSA."""

from __future__ import annotations

import numpy as np
import pytest

from perfsim.costs.batch import batch_stats, capped_pairs, causal_pairs
from perfsim.costs.comm import Link, all_reduce
from perfsim.costs.memory import weight_shares
from perfsim.costs.params import CostParams
from perfsim.costs.step import StepCostModel
from perfsim.specs.cudagraphs import capture_sizes
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.dtypes import WEIGHT_BYTES
from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model


def cost_model(name="deepseek-v3.2", precision="fp4", hw="gb300", tp=2, params=None, **dep):
    model, gpu = load_model(name, precision), load_hardware(hw)
    return StepCostModel(model, gpu, resolve_deployment(Deployment(**dep), model, gpu, tp), params)


def ops(cost):
    return {o.name: o for o in cost.ops}


# ---- batch statistics -------------------------------------------------------------------------------


def test_pair_counts_by_hand():
    assert causal_pairs(np.array([4]), np.array([0]))[0] == 1 + 2 + 3 + 4
    assert causal_pairs(np.array([1]), np.array([5]))[0] == 6
    assert capped_pairs(np.array([3]), np.array([2046]), 2048)[0] == 2047 + 2048 + 2048
    assert capped_pairs(np.array([2]), np.array([10]), 2048)[0] == 11 + 12
    assert capped_pairs(np.array([2]), np.array([5000]), 2048)[0] == 2 * 2048


def test_batch_split_decode_and_prefill():
    s = batch_stats([1, 1, 1, 4], [5, 5, 5, 0], decode_threshold=1, topk=2048)
    assert (s.dec_reqs, s.dec_tokens, s.dec_pairs, s.dec_kv_tokens) == (3, 3, 18, 18)
    assert (s.pre_reqs, s.pre_tokens, s.pre_pairs, s.pre_kv_tokens) == (1, 4, 10, 4)
    assert s.num_tokens == 7 and s.max_seq_len == 6


def test_batch_sums_equal_per_request_pair_counts():
    rng = np.random.default_rng(7)
    for threshold in (1, 2):
        new = rng.integers(1, 3, 300)
        new[:5] = rng.integers(3, 5000, 5)  # a few prefill chunks
        ctx = rng.integers(0, 6000, 300)
        s = batch_stats(new, ctx, decode_threshold=threshold, topk=2048)
        dec = new <= threshold
        assert s.dec_pairs == causal_pairs(new[dec], ctx[dec]).sum()
        assert s.pre_pairs == causal_pairs(new[~dec], ctx[~dec]).sum()
        assert s.dec_sparse_pairs == capped_pairs(new[dec], ctx[dec], 2048).sum()
        assert s.pre_sparse_pairs == capped_pairs(new[~dec], ctx[~dec], 2048).sum()
        assert (s.dec_kv_tokens, s.pre_ctx_tokens) == ((new + ctx)[dec].sum(), ctx[~dec].sum())


# ---- hand-computed operator work ----------------------------------------------------------------------


def test_gemm_flops_by_hand():
    cm = cost_model(tp=2)
    c = cm.step(cm.stats([4], [0]))
    o = ops(c)
    # q_b: 4 tokens x (64 local heads x 192) x 1536, 61 layers
    assert o["attn_q_b_proj"].flops == 2 * 4 * 64 * 192 * 1536 * 61
    # fused q_a + kv_a is replicated: full 1536 + 576 outputs on every rank
    assert o["attn_qkv_a_proj"].flops == 2 * 4 * (1536 + 576) * 7168 * 61


def test_dense_mla_prefill_attention_flops_by_hand():
    cm = cost_model("deepseek-r1", tp=2)
    o = ops(cm.step(cm.stats([4], [0])))
    # non-absorbed: 64 local heads x (192 + 128) x 2 flops per (query, key) pair, 10 causal pairs
    assert o["attn_prefill_mha"].flops == 2 * 64 * (192 + 128) * 10 * 61
    # kv_b expands the latent of every key token: 4 tokens x 64 x 256 x 512
    assert o["attn_kv_b_expand"].flops == 2 * 4 * 64 * 256 * 512 * 61


def test_mla_per_pair_costs_match_reference():
    # models.md: absorbed 278,528 flops per pair (128 heads), non-absorbed 81,920: 3.4x fewer
    cm = cost_model("deepseek-r1", tp=1, hw="gb300")
    dec = ops(cm.step(cm.stats([1] * 3, [5] * 3)))["attn_decode_mla"]
    assert dec.flops / (18 * 61) == 278_528
    pre = ops(cm.step(cm.stats([4], [0])))["attn_prefill_mha"]
    assert pre.flops / (10 * 61) == 81_920


def test_indexer_logits_flops_per_pair():
    cm = cost_model(tp=2)
    s = cm.stats([1] * 3, [5] * 3)
    o = ops(cm.step(s))
    assert o["indexer_logits"].flops == 2 * 64 * 128 * s.pairs * 61  # 16,384 per pair, all 64 heads per rank


def test_sparse_prefill_pads_heads_to_128_on_blackwell():
    s_tp2 = ops(cost_model(tp=2).step(cost_model(tp=2).stats([16], [0])))["sparse_attn_prefill"]
    s_tp1 = ops(cost_model(tp=1).step(cost_model(tp=1).stats([16], [0])))["sparse_attn_prefill"]
    assert s_tp2.flops == s_tp1.flops  # 64 heads per rank are padded to 128: no saving from TP2
    hopper = cost_model(tp=2, hw="h200")
    s_h = ops(hopper.step(hopper.stats([16], [0])))["sparse_attn_prefill"]
    assert s_h.flops == s_tp1.flops / 2  # Hopper pads to 64 only


def test_linear_flops_equal_two_times_active_params_times_tokens():
    for name in ("deepseek-v3", "deepseek-v3.2", "deepseek-v2"):
        model, gpu = load_model(name, "bf16"), load_hardware("b200")
        cm = StepCostModel(model, gpu, resolve_deployment(Deployment(), model, gpu, 1))
        tokens = 40
        c = cm.step(cm.stats([1] * tokens, [100] * tokens))  # decode: one lm_head row per token
        linear = sum(
            o.flops
            for o in c.ops
            if o.name.startswith(
                (
                    "attn_q",
                    "attn_o",
                    "attn_absorb",
                    "indexer_w",
                    "dense_gate",
                    "dense_down",
                    "shared_",
                    "moe_router",
                    "moe_gate",
                    "moe_down",
                    "lm_head",
                )
            )
        )
        arch = model.arch
        h = arch.hidden_size
        non_matmul = arch.num_layers * (2 * h + arch.attention_params()["attn_norms"]) + h  # norms
        non_matmul += arch.num_layers * 2 * arch.indexer.head_dim if arch.indexer else 0  # indexer k_norm
        non_matmul += arch.num_moe_layers * (arch.router_params - arch.moe.num_experts * h)  # router bias
        assert linear == pytest.approx(2 * (arch.active_params - non_matmul) * tokens, rel=1e-9), name


def test_tp_allreduce_bytes_per_layer():
    cm = cost_model(tp=2)
    t = 512
    o = ops(cm.step(cm.stats([t], [0])))
    assert o["attn_allreduce"].comm_bytes / 61 == 2 * 7168 * t * 2 * (2 - 1) / 2
    assert all_reduce(1e6, 4, Link("x", 1e9, 0.0)) == (pytest.approx(1.5e-3), pytest.approx(1.5e6))


# ---- physics checks ------------------------------------------------------------------------------------


def test_fp4_experts_beat_fp8_at_large_batch_and_tie_on_activation_traffic():
    fp4 = cost_model(precision="fp4", tp=4)
    fp8 = cost_model(precision="fp8", tp=4)
    big4 = ops(fp4.step(fp4.stats([32768], [0])))
    big8 = ops(fp8.step(fp8.stats([32768], [0])))
    assert big4["moe_gate_up"].bound == "compute" and big8["moe_gate_up"].bound == "compute"
    assert big4["moe_gate_up"].time_s < 0.6 * big8["moe_gate_up"].time_s  # 15 vs 5 PFLOPS dense
    for name in ("moe_act", "moe_finalize"):  # BF16 activation traffic is the same for both
        assert big4[name].time_s == pytest.approx(big8[name].time_s)
    small4 = ops(fp4.step(fp4.stats([1], [100])))
    small8 = ops(fp8.step(fp8.stats([1], [100])))
    ratio = small8["moe_gate_up"].time_s / small4["moe_gate_up"].time_s
    assert small4["moe_gate_up"].bound == "memory"
    # weight-read bound: close to the 1.78x weight-byte ratio (FP4's smaller reads ramp up a little worse)
    assert 1.5 < ratio <= WEIGHT_BYTES["fp8"] / WEIGHT_BYTES["nvfp4"] + 1e-9


GEMMS = {
    "attn_qkv_a_proj",
    "attn_q_b_proj",
    "attn_o_proj",
    "attn_absorb_w_uk",
    "attn_absorb_w_uv",
    "indexer_wq_b",
    "indexer_wk",
    "indexer_weights_proj",
    "dense_gate_up",
    "dense_down",
    "moe_router",
    "shared_gate_up",
    "shared_down",
    "moe_gate_up",
    "moe_down",
    "lm_head",
}


def test_batch_one_decode_is_bound_by_weight_reads():
    cm = cost_model(tp=2)
    c = cm.step(cm.stats([1], [1024]))
    weight_ops = [o for o in c.ops if o.name in GEMMS]
    total_bytes = sum(o.bytes for o in weight_ops)
    assert all(o.bound == "memory" for o in weight_ops if o.bytes > 0.01 * total_bytes)  # all but sub-1% ops
    arch = cm.model.arch
    shares = {s.module: s.bytes_per_gpu for s in weight_shares(cm.model, tp=2, moe_gpus=2)}
    active = sum(v for k, v in shares.items() if k not in ("routed_experts", "embedding", "attn_kv_b"))
    active += shares["routed_experts"] * arch.moe.top_k / arch.moe.num_experts
    weight_time = sum(o.time_s for o in weight_ops if o.bound == "memory")
    kernels = sum(o.layers for o in weight_ops if o.bound == "memory")
    # every kernel streams its weights at the HBM rate, after a fixed ramp of mem_ramp_s
    expected = active / (cm.hw.hbm_bandwidth_Bps * cm.params.hbm_eff) + kernels * cm.params.mem_ramp_s
    assert weight_time == pytest.approx(expected, rel=0.10)
    assert c.gpu_s >= active / cm.hw.hbm_bandwidth_Bps


def test_dsa_attention_costs_more_than_mla_at_2k_prefill():
    v32, r1 = (
        cost_model(tp=2, max_num_batched_tokens=20480),
        cost_model("deepseek-r1", tp=2, max_num_batched_tokens=20480),
    )

    def attention_block(cm):
        by = cm.step(cm.stats([2048] * 10, [0] * 10)).by_category()
        return by["attention"] + by["attention_proj"] + by.get("indexer", 0.0)

    assert attention_block(v32) > 2.0 * attention_block(r1)  # vLLM profiled 2.7x per DSA layer step


def test_dsa_decode_becomes_cheaper_than_mla_between_5k_and_40k():
    v32, r1 = cost_model(tp=2), cost_model("deepseek-r1", tp=2)
    batch = 16
    contexts = np.arange(1000, 60001, 1000)
    faster = [
        v32.step_time(v32.stats([1] * batch, [c] * batch)) < r1.step_time(r1.stats([1] * batch, [c] * batch))
        for c in contexts
    ]
    assert not faster[0] and faster[-1]
    crossover = contexts[faster.index(True)]
    assert 5000 < crossover < 40000


def test_cuda_graph_modes_and_padding():
    cm = cost_model(tp=2)
    assert capture_sizes(512)[:5] == [1, 2, 4, 8, 16] and capture_sizes(512)[-1] == 512
    # MTP with FULL decode graphs: sizes rounded up to multiples of 1 + k, those above the maximum dropped
    assert capture_sizes(512, 3)[:6] == [3, 6, 9, 18, 24, 33] and capture_sizes(512, 3)[-1] == 498
    r1_mtp = cost_model("deepseek-r1", tp=2, num_speculative_tokens=2)
    assert list(r1_mtp.graphs.capture_sizes) == capture_sizes(r1_mtp.dep.max_cudagraph_capture_size, 3)
    dec = cm.step(cm.stats([1] * 100, [500] * 100))
    assert dec.graph_mode == "FULL" and dec.padded_tokens == 104
    mixed = cm.step(cm.stats([1] * 100 + [50], [500] * 100 + [0]))
    assert mixed.graph_mode == "PIECEWISE" and mixed.launch_s > dec.launch_s
    big = cm.step(cm.stats([4096], [0]))
    assert big.graph_mode == "NONE" and big.padded_tokens == 4096


def test_async_scheduling_hides_cpu_time():
    params = CostParams(cpu_step_s=5e-3)
    model, gpu = load_model("deepseek-v3.2", "fp4"), load_hardware("gb300")
    on = StepCostModel(model, gpu, resolve_deployment(Deployment(), model, gpu, 2), params)
    off = StepCostModel(
        model, gpu, resolve_deployment(Deployment(async_scheduling=False), model, gpu, 2), params
    )
    s = on.stats([1] * 64, [1000] * 64)
    assert off.step_time(s) == pytest.approx(on.step(s).gpu_s + on.step(s).cpu_s)
    assert on.step_time(s) == pytest.approx(max(on.step(s).gpu_s, on.step(s).cpu_s))


def test_data_parallel_lockstep_pads_to_the_largest_rank():
    cm = cost_model("deepseek-r1", tp=1, data_parallel_size=2, enable_expert_parallel=True)
    busy = cm.stats([1] * 64, [1000] * 64)
    idle = cm.stats([], [])
    both_busy = cm.step([busy, busy]).total_s
    one_idle = cm.step([busy, idle]).total_s
    assert one_idle == pytest.approx(both_busy, rel=0.02)  # the idle rank still runs the padded MoE


def test_mtp_draft_adds_cost():
    base = cost_model(tp=2)
    mtp = cost_model(tp=2, num_speculative_tokens=2)
    t0 = base.step_time(base.stats([1] * 32, [2000] * 32))
    t1 = mtp.step_time(mtp.stats([3] * 32, [2000] * 32))
    assert t1 > t0
    assert any(o.category == "mtp" for o in mtp.step(mtp.stats([3] * 32, [2000] * 32)).ops)


def test_mtp_verify_path_by_backend():
    # R1 on Blackwell with one draft: FLASHINFER_MLA verifies 2-token queries on its decode kernel; CUTLASS_MLA
    # (vLLM 0.14.1's default, one query token only) sends them down the prefill path, which up-projects all
    # 16 x 3000 cached tokens: far slower than a plain decode step, as in vLLM.
    plain = cost_model("deepseek-r1", tp=2)
    fast = cost_model("deepseek-r1", tp=2, num_speculative_tokens=1)
    slow = cost_model("deepseek-r1", tp=2, num_speculative_tokens=1, attention_backend="CUTLASS_MLA")
    assert fast.dep.attention_backend == "FLASHINFER_MLA" and fast.decode_threshold == 2
    assert slow.decode_threshold == 1 and slow.dep.cudagraph_mode == "PIECEWISE"
    t_plain = plain.step_time(plain.stats([1] * 16, [3000] * 16))
    t_fast = fast.step_time(fast.stats([2] * 16, [3000] * 16))
    t_slow = slow.step_time(slow.stats([2] * 16, [3000] * 16))
    # twice the tokens touch more experts (40% -> 64% of them at 16 x 8 vs 32 x 8 routed picks) and the BF16
    # draft layer adds its own reads, yet 1.92 tokens per step (92% acceptance) still beat plain decoding
    assert t_plain < t_fast < 1.92 * t_plain
    assert t_slow > 2 * t_fast
    assert "attn_kv_b_expand" in ops(slow.step(slow.stats([2] * 16, [3000] * 16)))


@pytest.mark.parametrize("hw", ["gb300", "b300", "gb200", "b200", "h200", "h100"])
@pytest.mark.parametrize(
    ("name", "precision"),
    [("deepseek-v3.2", "fp4"), ("deepseek-r1", "fp8"), ("deepseek-v2", "bf16"), ("deepseek-v2", "fp4")],
)
def test_every_model_costs_on_every_gpu(hw, name, precision):
    """Invariants on every model, precision and GPU: the roofline holds per operator, the step adds up, and
    more work never costs less."""
    cm = cost_model(name, precision, hw, tp=8)
    c = cm.step(cm.stats([512, 1, 1], [0, 3000, 3000]))
    gpu = cm.hw
    for o in c.ops:
        peak = gpu.peak_flops(o.dtype or "bf16") or gpu.peak_flops("bf16")
        assert o.time_s >= o.flops / peak * (1 - 1e-12), o.name  # no operator beats its tensor-core peak
        assert o.time_s >= o.bytes / gpu.hbm_bandwidth_Bps * (1 - 1e-12), o.name  # nor the HBM bandwidth
        if o.comm_bytes:
            assert o.time_s >= o.comm_bytes / gpu.scaleup_bandwidth_Bps * (1 - 1e-12), o.name
    assert c.gpu_s == pytest.approx(sum(o.time_s for o in c.ops) + c.overhead_s, rel=1e-12)
    assert c.total_s >= max(c.gpu_s, c.launch_s, c.cpu_s) * (1 - 1e-12)
    longer = cm.step(cm.stats([512, 1, 1], [0, 6000, 6000]))
    more = cm.step(cm.stats([512, 1, 1, 1], [0, 3000, 3000, 3000]))
    assert longer.gpu_s > c.gpu_s and more.gpu_s > c.gpu_s


def test_gemm_shape_efficiency_reproduces_deepgemm_h800_table():
    """DeepGEMM's published FP8 GEMM table (H800, 2025-03): achieved TFLOPS per shape, spec-only params."""
    table = [
        (64, 2112, 7168, 206),
        (64, 24576, 1536, 289),
        (64, 32768, 512, 219),
        (64, 7168, 16384, 336),
        (64, 4096, 7168, 287),
        (64, 7168, 2048, 295),
        (128, 2112, 7168, 352),
        (128, 24576, 1536, 535),
        (128, 32768, 512, 358),
        (128, 7168, 16384, 645),
        (128, 4096, 7168, 533),
        (128, 7168, 2048, 510),
        (4096, 2112, 7168, 1009),
        (4096, 24576, 1536, 1125),
        (4096, 32768, 512, 751),
        (4096, 7168, 16384, 1426),
        (4096, 4096, 7168, 1265),
        (4096, 7168, 2048, 1168),
    ]
    # isolated kernels: H800 = H100 compute and bandwidth; per-kernel ramp as the table itself fits it (6 MB at
    # 0.82 x 3.35 TB/s)
    cm = cost_model("deepseek-r1", "fp8", "h100", tp=8, params=CostParams(hbm_eff=0.82, mem_ramp_s=2.2e-6))
    errors = []
    for m, n, k, tflops in table:
        op = cm.gemm_cost(m, n, k, "fp8")
        errors.append(abs(np.log(op.flops / op.time_s / 1e12 / tflops)))
    assert np.median(errors) < 0.15  # within ~15% on the median shape
    assert max(errors) < 0.45


def test_mla_prefill_probe_by_hand():
    """vLLM's GB200 post times trtllm_ragged_prefill on 4 x 2048 tokens; perfsim's probe of the same batch is the
    tensor-core time of the causal pairs plus the exponentials that do not overlap it (attn_exp_serial = 1)."""
    from perfsim.costs.probe import probe_time_s

    model, hw, p = load_model("deepseek-r1", "fp4"), load_hardware("gb200"), CostParams()
    pairs = 4 * 2048 * 2049 / 2
    flops = 2 * pairs * 128 * (192 + 128)  # QK^T over 192 dims, PV over 128, all 128 heads on one GPU
    mma_s = flops / (2500e12 * p.attn_prefill_eff)
    exp_s = pairs * 128 / 5e12  # one exponential per pair and head at GB200's 5 Texp/s
    expected = mma_s + p.attn_exp_serial * exp_s
    assert probe_time_s("mla_prefill_attention", model, hw, p, 4, 2048) == pytest.approx(expected, rel=1e-3)
    overlapped = probe_time_s("mla_prefill_attention", model, hw, CostParams(attn_exp_serial=0.0), 4, 2048)
    assert overlapped == pytest.approx(max(mma_s, exp_s), rel=1e-3)  # the ideal roofline


# ---- GQA families --------------------------------------------------------------------------------------------


def test_gqa_decode_reads_the_window_on_sliding_layers_and_everything_on_full_ones():
    """gpt-oss-120b on one B200, FP8 KV: 18 full layers read every cached key, 18 sliding layers the last 128."""
    model, hw = load_model("gpt-oss-120b"), load_hardware("b200")
    dep = resolve_deployment(Deployment(kv_cache_dtype="fp8"), model, hw, 1)
    cm = StepCostModel(model, hw, dep)
    ops = {o.name: o for o in cm.step(cm.stats([1] * 4, [1000] * 4)).ops}
    kv_token = 2 * 8 * 64 * 1  # K and V of 8 heads of 64, one byte each
    q_and_o = 2 * 4 * 64 * 64 * 2  # 4 queries of 64 heads of 64 in, the same out, BF16
    assert ops["attn_decode"].bytes == 18 * (4 * 1001 * kv_token + q_and_o)
    assert ops["attn_decode_sliding"].bytes == 18 * (4 * 128 * kv_token + q_and_o)
    assert (
        ops["attn_decode_sliding"].flops == 18 * 4 * 64 * 64 * 4 * 128
    )  # 4 head_dim flops per pair and head


def test_gqa_kv_heads_replicate_above_their_count_and_the_hybrid_pool_holds_one_group():
    from perfsim.costs.memory import kv_group_layers
    from perfsim.specs.kv_cache import kv_bytes_per_token_layer

    qwen = load_model("qwen3-235b-a22b")
    assert kv_bytes_per_token_layer(qwen, "bfloat16", tp=2) == 2 * 2 * 128 * 2
    assert kv_bytes_per_token_layer(qwen, "bfloat16", tp=8) == 2 * 1 * 128 * 2  # 4 KV heads over 8 ranks
    assert kv_group_layers(qwen) == 94 and kv_group_layers(load_model("gpt-oss-120b")) == 18


def test_mxfp4_experts_run_at_fp8_with_mxfp8_activations_on_blackwell_only():
    model = load_model("gpt-oss-120b")
    for hw_name, activation, want in (
        ("b200", "mxfp8", "fp8"),
        ("b200", "auto", "bf16"),
        ("h200", "mxfp8", "bf16"),
    ):
        hw = load_hardware(hw_name)
        dep = resolve_deployment(Deployment(mxfp4_moe_activation=activation), model, hw, 1)
        cm = StepCostModel(model, hw, dep)
        gate_up = next(o for o in cm.step(cm.stats([512], [0])).ops if o.name == "moe_gate_up")
        assert gate_up.dtype == want, (hw_name, activation)


def test_weight_only_experts_on_hopper_are_bound_by_dequantizing_not_by_hbm():
    """Marlin W4A16 on H200: the touched experts' weights / (21 per SM-cycle x 132 SMs x 1.98 GHz) + 12 us,
    slower than streaming their 4.25-bit bytes; native MXFP8 on B200 keeps the memory roofline."""
    model = load_model("gpt-oss-120b")
    hw = load_hardware("h200")
    cm = StepCostModel(model, hw, resolve_deployment(Deployment(), model, hw, 1))
    gate_up = next(o for o in cm.step(cm.stats([1], [1536])).ops if o.name == "moe_gate_up")
    # one token, top-4 experts, gate and up, as Marlin's padding leaves them (2880 -> 2944 wide, 3072 deep)
    weights = 4 * 2 * 2944 * 3072 * model.arch.num_moe_layers
    want_s = weights / (21.0 * 132 * 1.98e9) + 12e-6 * model.arch.num_moe_layers
    assert gate_up.bound == "dequant"
    assert gate_up.time_s == pytest.approx(want_s, rel=1e-6)
    assert gate_up.time_s > 1.5 * gate_up.bytes / (hw.hbm_bandwidth_Bps * CostParams().hbm_eff)
    b200 = load_hardware("b200")
    cm = StepCostModel(
        model, b200, resolve_deployment(Deployment(mxfp4_moe_activation="mxfp8"), model, b200, 1)
    )
    gate_up = next(o for o in cm.step(cm.stats([1], [1536])).ops if o.name == "moe_gate_up")
    assert gate_up.bound == "memory" and gate_up.dtype == "fp8"


def test_weight_only_kernel_parameters_are_fitted_only_where_weights_run_weight_only():
    from perfsim.calibration.fit import exercised
    from perfsim.calibration.measurements import load_measurements

    rows = {(r.hw, r.engine_version): r for r in load_measurements()}
    assert exercised("weight_dequant_per_sm_cycle", rows[("h200", "0.13.0")])
    assert not exercised("weight_dequant_per_sm_cycle", rows[("b200", "0.13.0")])  # MXFP8 activations
    assert not exercised("gemm_eff_weight_only", rows[("gb300", "0.14.1")])  # native NVFP4
