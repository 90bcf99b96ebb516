"""Wide expert parallelism: EPLB placement, DeepEP's bytes and links, and how decode scales with the ranks."""

from __future__ import annotations

import math

import pytest

import perfsim
from perfsim.costs.memory import memory_plan, weight_shares
from perfsim.costs.step import StepCostModel
from perfsim.errors import SpecError
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.expert_parallel import distinct_destination_ranks, smallest_redundancy
from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model


def _ep(dp: int, **kw) -> Deployment:
    return Deployment(data_parallel_size=dp, enable_expert_parallel=True, **kw)


def test_distinct_destination_ranks_by_hand():
    # EP8, 32 experts per rank: 1 - C(224, 8) / C(256, 8) per rank
    miss = math.comb(224, 8) / math.comb(256, 8)
    assert distinct_destination_ranks(256, 8, 8) == pytest.approx(8 * (1 - miss), rel=1e-12)
    assert distinct_destination_ranks(256, 8, 8) == pytest.approx(5.30, abs=0.01)
    assert distinct_destination_ranks(256, 8, 32) == pytest.approx(7.27, abs=0.01)
    assert distinct_destination_ranks(256, 8, 256) == pytest.approx(8.0)  # one expert per rank
    assert distinct_destination_ranks(256, 8, 1) == 1.0


def test_ep_sizes_that_do_not_divide_the_experts_run_with_redundant_experts():
    r1, gb300 = load_model("deepseek-r1", "fp4"), load_hardware("gb300")
    assert smallest_redundancy(256, 72) == 32 and smallest_redundancy(256, 96) == 32
    with pytest.raises(SpecError, match='"num_redundant_experts": 32'):
        resolve_deployment(_ep(72), r1, gb300, 1)
    with pytest.raises(SpecError, match="multiple of 72"):
        resolve_deployment(
            _ep(72, enable_eplb=True, eplb_config='{"num_redundant_experts": 16}'), r1, gb300, 1
        )
    for dp in (72, 96):
        dep = resolve_deployment(
            _ep(dp, enable_eplb=True, eplb_config={"num_redundant_experts": 32}), r1, gb300, 1
        )
        assert dep.ep == dp and dep.physical_experts == 288 and dep.eplb
    # each GPU holds 288 / 72 = 4 experts per MoE layer: 32 / 256 more than a 256-expert split
    moe_layers, per_expert = r1.arch.num_moe_layers, r1.arch.expert_params
    routed = {s.module: s.params_per_gpu for s in weight_shares(r1, moe_gpus=72, redundant_experts=32)}
    assert routed["routed_experts"] == pytest.approx(moe_layers * 4 * per_expert)


def test_eplb_balances_the_workloads_expert_popularity():
    r1, gb300 = load_model("deepseek-r1", "fp4"), load_hardware("gb300")

    def gate_up_s(**kw) -> float:
        cm = StepCostModel(r1, gb300, resolve_deployment(_ep(8, **kw), r1, gb300, 1))
        ops = cm.step(
            [cm.stats([8192], [0])] * 8
        ).ops  # prefill: the busiest rank's experts are compute-bound
        return next(o for o in ops if o.name == "moe_gate_up").flops

    # the busiest rank's load over the mean (moe_balance): popularity CV 0.5 and sampling noise without EPLB,
    # sampling noise alone with it
    assert gate_up_s(enable_eplb=True) < 0.95 * gate_up_s()


def test_deepep_low_latency_bytes_and_time_by_hand():
    """EP8 on one NVL72 rack, 128 decode tokens per rank, NVFP4 experts (BF16 dispatch): each token sends one
    14,352-byte message to each of its 8 experts on another rank (7/8 of them), and gets 14,336 bytes back."""
    r1, gb300 = load_model("deepseek-r1", "fp4"), load_hardware("gb300")
    dep = resolve_deployment(_ep(8, all2all_backend="deepep_low_latency"), r1, gb300, 1)
    cm = StepCostModel(r1, gb300, dep)
    ops = {o.name: o for o in cm.step([cm.stats([1] * 128, [2000] * 128)] * 8).ops}
    layers, p = r1.arch.num_moe_layers, cm.params
    bandwidth = 900e9 * p.deepep_eff
    for name, per_copy in (("moe_dispatch_deepep_ll", 2 * 7168 + 16), ("moe_combine_deepep_ll", 2 * 7168)):
        sent = 128 * 8 * 7 / 8 * per_copy
        assert ops[name].comm_bytes == pytest.approx(sent * layers)
        assert ops[name].time_s == pytest.approx((p.deepep_latency_s + sent / bandwidth) * layers)
    assert "moe_dispatch_allgather" not in ops
    assert dep.cudagraph_mode != "NONE"  # low latency keeps CUDA graphs


def test_deepep_high_throughput_sends_one_copy_per_destination_rank_and_runs_eager():
    v3, h200 = load_model("deepseek-r1", "fp8"), load_hardware("h200")
    dep = resolve_deployment(_ep(16, all2all_backend="deepep_high_throughput"), v3, h200, 1)
    assert dep.cudagraph_mode == "NONE" and any("without CUDA graphs" in n for n in dep.notes)
    cm = StepCostModel(v3, h200, dep)
    ops = {o.name: o for o in cm.step([cm.stats([256], [0])] * 16).ops}
    p_rank = distinct_destination_ranks(256, 8, 16) / 16
    copy = 7168 + 7168 / 128 * 4 + 8 * 12  # FP8 with block scales, top-k ids and weights
    nvl, nic = 256 * 7 * p_rank * copy, 256 * 8 * p_rank * copy  # 7 peers in the HGX node, 8 in the other
    want = cm.params.deepep_latency_s + max(
        nvl / (h200.scaleup_bandwidth_Bps * cm.params.deepep_eff),
        nic / (h200.scaleout_bandwidth_Bps * cm.params.deepep_eff),
    )
    got = ops["moe_dispatch_deepep"]
    assert got.comm_bytes == pytest.approx((nvl + nic) * r1_layers(v3))
    assert got.time_s == pytest.approx(want * r1_layers(v3))


def r1_layers(model) -> int:
    return model.arch.num_moe_layers


def test_deepep_buffers_take_memory_from_the_kv_cache():
    r1, gb300 = load_model("deepseek-r1", "fp4"), load_hardware("gb300")
    plain = memory_plan(r1, gb300, resolve_deployment(_ep(8), r1, gb300, 1))
    ll = memory_plan(
        r1, gb300, resolve_deployment(_ep(8, all2all_backend="deepep_low_latency"), r1, gb300, 1)
    )
    assert ll.non_torch_bytes - plain.non_torch_bytes == pytest.approx(4 * 256 * 256 * (2 * 7168 + 7168 / 32))


def test_decode_per_gpu_keeps_its_level_from_8_to_64_ranks_with_deepep_on_nvl72():
    """Published wide-EP decode stays within 7.6k-13.4k tok/s/GPU from 8 to 64+ ranks; all-gather does not."""

    def per_gpu(dp: int, backend: str) -> float:
        r = perfsim.predict(
            "deepseek-r1",
            "gb300",
            precision="fp4",
            deployment={
                "tensor_parallel_size": 1,
                "data_parallel_size": dp,
                "enable_expert_parallel": True,
                "all2all_backend": backend,
            },
            bench={
                "random_input_len": 1000,
                "random_output_len": 1000,
                "max_concurrency": 128 * dp,
                "num_prompts": 128 * dp,
            },
        )
        return r["output_throughput_per_gpu"]

    assert per_gpu(64, "deepep_low_latency") >= 0.75 * per_gpu(8, "deepep_low_latency")
    assert per_gpu(64, "allgather_reducescatter") < 0.75 * per_gpu(8, "allgather_reducescatter")


def test_dual_batch_overlap_by_hand():
    """Halves of 3 s compute + 2 s all-to-all each: max(6, 4) plus one layer's fill (min(3, 2) over 2 layers)."""
    from perfsim.costs.dbo import overlapped_part
    from perfsim.costs.roofline import OpTime
    from perfsim.costs.step_cache import static_part

    def op(name: str, t: float) -> OpTime:
        return OpTime(
            name=name, category="moe", layers=2, time_s=t, flops=0.0, bytes=0.0, comm_bytes=0.0, bound=""
        )

    half = static_part(
        [op("moe_gate_up", 2.5), op("moe_dispatch_deepep_ll", 1.0), op("moe_combine_deepep_ll", 1.0)]
    )
    part = overlapped_part((half, half), dynamic_s=1.0, moe_layers=2, sm_slowdown=1.0)
    assert part.time_s + 1.0 == pytest.approx(6.0 + 1.0)  # the step adds its attention cores (dynamic_s)
    assert part.ops[-1].name == "dbo_overlap" and part.ops[-1].bound == "overlap-compute"
    slowed = overlapped_part((half, half), dynamic_s=1.0, moe_layers=2, sm_slowdown=1.2)
    assert slowed.time_s + 1.0 == pytest.approx(1.2 * 6.0 + 1.0)


def test_dual_batch_overlap_hides_the_internode_all_to_all_above_its_threshold():
    r1, h200 = load_model("deepseek-r1", "fp8"), load_hardware("h200")

    def step_s(tokens: int, dbo: bool) -> float:
        dep = resolve_deployment(_ep(32, all2all_backend="deepep_low_latency", enable_dbo=dbo), r1, h200, 1)
        cm = StepCostModel(r1, h200, dep)
        return cm.step([cm.stats([1] * tokens, [2000] * tokens)] * 32).total_s

    assert step_s(256, True) < 0.75 * step_s(256, False)  # 4 HGX nodes: the NIC all-to-all is half the step
    assert step_s(16, True) == step_s(16, False)  # below the 32-token decode threshold vLLM does not split
    with pytest.raises(SpecError, match="--enable-dbo needs DP > 1 and --all2all-backend deepep"):
        resolve_deployment(_ep(32, enable_dbo=True), r1, h200, 1)


def test_prefill_and_decode_instances_of_different_shapes():
    """4 x 4 prefill GPUs (DP4/EP4, DeepEP high throughput) and one 16-GPU decode instance (DP16/EP16, low
    latency), as llm-d's wide-EP guide deploys them."""
    r = perfsim.predict(
        "deepseek-r1",
        "gb200",
        precision="fp4",
        deployment={
            "tensor_parallel_size": 1,
            "data_parallel_size": 4,
            "enable_expert_parallel": True,
            "all2all_backend": "deepep_high_throughput",
            "num_prefill_instances": 2,
            "num_decode_instances": 1,
            "decode_data_parallel_size": 16,
            "decode_all2all_backend": "deepep_low_latency",
        },
        bench={
            "random_input_len": 2000,
            "random_output_len": 200,
            "max_concurrency": 256,
            "num_prompts": 512,
        },
    )
    config = r["config"]
    assert r["num_gpus"] == 2 * 4 + 16
    assert config["cudagraph_mode"] == "NONE" and config["all2all_backend"] == "deepep_high_throughput"
    decode = config["decode_instance"]
    assert decode["data_parallel_size"] == 16 and decode["expert_parallel_size"] == 16
    assert decode["all2all_backend"] == "deepep_low_latency" and decode["cudagraph_mode"] != "NONE"
    assert r["output_throughput_per_decode_gpu"] == pytest.approx(
        r["total_output_tokens"] / r["duration"] / 16, rel=1e-9
    )
    with pytest.raises(ValueError, match="--decode-data-parallel-size applies to the decode instances"):
        Deployment(decode_data_parallel_size=8)
