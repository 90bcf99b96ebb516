"""Serving simulation: scheduler semantics, hand-computed latencies, Little's law, P/D, DP lockstep."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perfsim.costs.constant import ConstantStepCost
from perfsim.costs.memory import memory_plan
from perfsim.costs.params import CostParams
from perfsim.serving.metrics import RequestRecord, bench_metrics
from perfsim.serving.simulate import simulate
from perfsim.serving.workload import BenchConfig, make_workload
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model


def setup(tp=2, **dep):
    model, hw = load_model("deepseek-v3.2", "fp4"), load_hardware("gb300")
    resolved = resolve_deployment(Deployment(**dep), model, hw, tp)
    return model, hw, resolved, memory_plan(model, hw, resolved)


def run(bench, step_s=None, tp=2, api_s=0.0, **dep):
    model, hw, resolved, plan = setup(tp, **dep)
    cost = ConstantStepCost(resolved, step_s) if step_s else None
    params = CostParams(api_server_latency_s=api_s, api_server_latency_cv=0.0, step_time_cv=0.0)
    return simulate(model, hw, resolved, plan, params, bench, cost_model=cost), resolved


# ---- hand-computed latencies -------------------------------------------------------------------------


@pytest.mark.parametrize("async_scheduling", [True, False])
def test_single_request_ttft_and_tpot_with_constant_step(async_scheduling):
    bench = BenchConfig(num_prompts=1, random_input_len=1000, random_output_len=50)
    res, _ = run(bench, step_s=0.01, async_scheduling=async_scheduling)
    m = bench_metrics(res.records, res.duration_s, num_sent=1)
    assert m["mean_ttft_ms"] == pytest.approx(10.0)  # one prefill step
    assert m["mean_tpot_ms"] == pytest.approx(10.0)  # then one token per step
    assert m["duration"] == pytest.approx(0.5)


def test_ttft_includes_the_api_server_latency():
    bench = BenchConfig(num_prompts=1, random_input_len=1000, random_output_len=3)
    res, _ = run(bench, step_s=0.01, api_s=0.004)
    assert res.records[0].ttft == pytest.approx(0.014)
    assert res.records[0].latency == pytest.approx(0.034)


def test_long_prompt_ttft_counts_its_chunks():
    bench = BenchConfig(num_prompts=1, random_input_len=20_001, random_output_len=2)
    res, dep = run(bench, step_s=0.02)
    assert dep.max_num_batched_tokens == 8192
    assert res.records[0].ttft == pytest.approx(3 * 0.02)  # 20,001 tokens in 3 chunks of <= 8192


def test_concurrency_limit_queues_on_the_client():
    bench = BenchConfig(num_prompts=4, random_input_len=100, random_output_len=10, max_concurrency=1)
    res, _ = run(bench, step_s=0.01)
    sends = [r.send_time for r in res.records]
    assert sends == pytest.approx([0.0, 0.1, 0.2, 0.3])  # each waits for the previous one's last token
    assert all(r.ttft == pytest.approx(0.01) for r in res.records)  # the clock starts after the semaphore


def test_littles_law_in_a_closed_loop():
    bench = BenchConfig(
        num_prompts=400,
        random_input_len=512,
        random_output_len=64,
        max_concurrency=32,
        random_range_ratio=0.5,
    )
    res, _ = run(bench)
    m = bench_metrics(res.records, res.duration_s, num_sent=400, selected=("ttft", "e2el"))
    concurrency = m["request_throughput"] * m["mean_e2el_ms"] / 1000
    assert concurrency == pytest.approx(32, rel=0.08)


def test_pd_ttft_includes_the_kv_transfer():
    bench = BenchConfig(num_prompts=1, random_input_len=8000, random_output_len=5)
    res, dep = run(
        bench, step_s=0.01, num_prefill_instances=1, num_decode_instances=1, kv_transfer_link="nic"
    )
    transfer = res.kv_transfer_s[0]
    _model, hw, _, plan = setup()
    expected = CostParams().nic_latency_s + 8000 * plan.kv_bytes_per_token / (
        hw.scaleout_bandwidth_Bps * CostParams().comm_eff
    )
    assert transfer == pytest.approx(expected)
    # P prefill (1 step) + proxy hand-off + KV pull into blocks D allocated + D's one-token step
    assert res.records[0].ttft == pytest.approx(0.01 + CostParams().pd_handoff_s + transfer + 0.01)
    assert dep.num_gpus == 4


def test_pd_prefill_keeps_blocks_until_the_pull_and_decode_allocates_first():
    bench = BenchConfig(num_prompts=40, random_input_len=4000, random_output_len=20, max_concurrency=40)
    res, dep = run(
        bench, step_s=0.01, num_prefill_instances=1, num_decode_instances=1, kv_transfer_link="nic"
    )
    assert all(r.output_tokens == 20 for r in res.records)
    assert len(res.kv_transfer_s) == 40
    # the pulls are serialized on the decode instance's NIC: later requests wait for earlier pulls
    ttfts = sorted(r.ttft for r in res.records)
    assert ttfts[-1] > ttfts[0] + 10 * min(res.kv_transfer_s)


def test_dp_ranks_step_in_lockstep():
    bench = BenchConfig(num_prompts=2, random_input_len=100, random_output_len=20)
    res, dep = run(bench, step_s=0.01, tp=1, data_parallel_size=2, enable_expert_parallel=True)
    a, b = res.records
    assert np.array_equal(a.chunk_times, b.chunk_times)  # one on each rank, same step clock
    assert dep.num_gpus == 2


def test_mtp_emits_more_than_one_token_per_step():
    bench = BenchConfig(num_prompts=20, random_input_len=200, random_output_len=100)
    res, _ = run(bench, step_s=0.01, num_speculative_tokens=2)
    r = res.records[0]
    assert r.output_tokens == 100
    assert len(r.chunk_times) < 100  # chunks carry accepted drafts
    assert all(rec.output_tokens == 100 for rec in res.records)


# ---- metrics ---------------------------------------------------------------------------------------


def test_metrics_equal_numpy_on_recorded_timings():
    recs = [
        RequestRecord(0.0, 100, 3, np.array([0.5, 0.7, 1.0])),
        RequestRecord(0.2, 50, 1, np.array([0.9])),
        RequestRecord(1.1, 70, 4, np.array([1.4, 1.5, 1.9, 2.6])),
    ]
    m = bench_metrics(recs, 2.6, num_sent=3, percentiles=(50, 99), selected=("ttft", "tpot", "itl", "e2el"))
    ttft = np.array([0.5, 0.7, 0.3])
    tpot = np.array([(1.0 - 0.5) / 2, (1.5 - 0.3) / 3])
    itl = np.array([0.2, 0.3, 0.1, 0.4, 0.7])
    e2el = np.array([1.0, 0.7, 1.5])
    assert m["total_input_tokens"] == 220 and m["total_output_tokens"] == 8
    assert m["output_throughput"] == pytest.approx(8 / 2.6)
    assert m["total_token_throughput"] == pytest.approx(228 / 2.6)
    for name, arr in (("ttft", ttft), ("tpot", tpot), ("itl", itl), ("e2el", e2el)):
        assert m[f"mean_{name}_ms"] == pytest.approx(arr.mean() * 1000)
        assert m[f"median_{name}_ms"] == pytest.approx(np.median(arr) * 1000)
        assert m[f"std_{name}_ms"] == pytest.approx(arr.std() * 1000)
        assert m[f"p99_{name}_ms"] == pytest.approx(np.percentile(arr, 99) * 1000)
        assert m[f"p50_{name}_ms"] == pytest.approx(np.percentile(arr, 50) * 1000)
    assert m["request_goodput"] is None  # only with --goodput, as bench serve writes it
    # TTFTs 0.5 / 0.7 / 0.3 s, TPOTs 0.25 / 0 (one token counts as 0) / 0.4 s: ttft:600 tpot:300 keeps the first only
    good = bench_metrics(recs, 2.6, num_sent=3, goodput_ms={"ttft": 600.0, "tpot": 300.0})
    assert good["request_goodput"] == pytest.approx(1 / 2.6)
    assert bench_metrics(recs, 2.6, num_sent=3, goodput_ms={"e2el": 1500.0})[
        "request_goodput"
    ] == pytest.approx(3 / 2.6)
    assert m["max_output_tokens_per_s"] == 4  # second 1 holds the chunks at 1.0, 1.4, 1.5 and 1.9
    assert m["max_concurrent_requests"] == 2  # seconds 0: requests 0, 1; second 1: requests 0, 2


def test_workload_lengths_follow_vllm_random_dataset():
    wl = make_workload(
        BenchConfig(
            num_prompts=2000, random_input_len=1024, random_output_len=128, random_range_ratio=0.5, seed=3
        )
    )
    assert (
        wl.client_prompt_lens.min() >= 511 and wl.client_prompt_lens.max() <= 1535
    )  # (1024 - BOS) x [0.5, 1.5]
    assert np.array_equal(wl.server_prompt_lens, wl.client_prompt_lens + 1)
    assert wl.output_lens.min() >= 64 and wl.output_lens.max() <= 192
    fixed = make_workload(BenchConfig(num_prompts=3, random_input_len=2048))
    assert list(fixed.client_prompt_lens) == [2047] * 3


def test_poisson_arrivals_rescaled_to_n_over_rate():
    wl = make_workload(BenchConfig(num_prompts=100, request_rate=10.0, seed=1))
    assert wl.arrival_s[-1] == pytest.approx(10.0)
    assert np.all(np.diff(wl.arrival_s) >= 0)


def test_identical_seeds_give_identical_json():
    from perfsim.prediction import predict

    bench = {
        "num_prompts": 30,
        "random_input_len": 300,
        "random_output_len": 20,
        "random_range_ratio": 0.3,
        "max_concurrency": 8,
        "seed": 5,
    }
    a = predict(bench=bench, deployment={"tensor_parallel_size": 2}).result
    b = predict(bench=bench, deployment={"tensor_parallel_size": 2}).result
    assert json.dumps(a) == json.dumps(b)
    c = predict(bench={**bench, "seed": 6}, deployment={"tensor_parallel_size": 2}).result
    assert json.dumps(a) != json.dumps(c)


def test_columnar_view_equals_per_request_records():
    bench = BenchConfig(
        num_prompts=80, random_input_len=700, random_output_len=90, max_concurrency=24, random_range_ratio=0.4
    )
    res, _ = run(bench)
    kw = dict(num_sent=80, percentiles=(25, 50, 90, 99), selected=("ttft", "tpot", "itl", "e2el"))
    fast = bench_metrics(res.view, res.duration_s, **kw)
    slow = bench_metrics(res.records, res.duration_s, **kw)
    assert fast.keys() == slow.keys()
    for key in fast:
        if slow[key] is None:
            assert fast[key] is None
        else:
            assert fast[key] == pytest.approx(slow[key], rel=1e-9, abs=1e-12), key


def test_mtp_acceptance_per_position_follows_the_published_rates():
    """With three drafts every verify step accepts the longest run of drafts its draws accept (0.92, 0.717, 0.364
    conditional rates): the fraction of verifies that accept position i is the product of the first i rates."""
    bench = BenchConfig(num_prompts=64, random_input_len=200, random_output_len=400, max_concurrency=64)
    res, dep = run(bench, step_s=0.01, num_speculative_tokens=3)
    (stats,) = [e.spec for e in res.engines.values()]
    by_position = np.array(stats.num_accepted_tokens_per_pos) / stats.num_drafts
    assert by_position == pytest.approx(np.cumprod([0.92, 0.717, 0.364]), abs=0.02)
    assert stats.num_draft_tokens <= 3 * stats.num_drafts


# ---- run-to-run jitter ---------------------------------------------------------------------------------------


def test_jitter_is_seeded_and_disperses_fixed_length_requests():
    """Step-time and front-end jitter follow --seed: the same seed reproduces a run, another seed moves it, and
    without jitter fixed-length prompts make every seed identical (zero-width band)."""
    from perfsim.prediction import predict

    bench = {"num_prompts": 48, "random_input_len": 1024, "random_output_len": 16, "max_concurrency": 16}
    still = CostParams(api_server_latency_cv=0.0, step_time_cv=0.0)
    band = predict(bench=bench, params=still, seed_band=3).result["seed_band"]
    assert band["seeds"] == [0, 1, 2] and band["mean_ttft_ms"][0] == band["mean_ttft_ms"][1]
    jittered = predict(bench=bench, params=CostParams(step_time_cv=0.1), seed_band=3).result
    lo, hi = jittered["seed_band"]["mean_ttft_ms"]
    assert lo < hi and lo <= jittered["mean_ttft_ms"] <= hi
    again = predict(bench=bench, params=CostParams(step_time_cv=0.1)).result
    assert again["mean_ttft_ms"] == jittered["mean_ttft_ms"]  # seed 0 reproduces itself
