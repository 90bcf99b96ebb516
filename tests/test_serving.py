"""Serving simulation: scheduler semantics, hand-computed latencies, Little's law, P/D, DP lockstep."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perfsim.costs.constant import ConstantStepCost
from perfsim.costs.memory import memory_plan
from perfsim.costs.params import CostParams
from perfsim.serving.metrics import RequestRecord, bench_metrics
from perfsim.serving.request import Request, RequestStatus
from perfsim.serving.scheduler import Scheduler
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
    params = CostParams(api_server_latency_s=api_s)
    return simulate(model, hw, resolved, plan, params, bench, cost_model=cost), resolved


# ---- scheduler ------------------------------------------------------------------------------------


def sched(**kw):
    args = dict(
        max_num_seqs=16, max_num_batched_tokens=8192, num_blocks=10_000, block_size=64, max_model_len=100_000
    )
    args.update(kw)
    return Scheduler(**args)


def drain(s, steps=500):
    """Run a scheduler alone (each step completes before the next is scheduled); return the batches."""
    batches = []
    for _ in range(steps):
        if not s.has_work():
            break
        b = s.schedule()
        batches.append(b)
        s.update_from_output(b)
    return batches


def test_chunked_prefill_splits_a_20k_prompt_into_budget_sized_chunks():
    s = sched()
    s.add_request(Request(0, 20_000, 20_000, 4))
    chunks = []
    for _ in range(3):
        b = s.schedule()
        chunks.append((int(b.new_tokens[0]), int(b.context[0]), int(b.sample_seq.size)))
        s.update_from_output(b)
    assert chunks == [(8192, 0, 0), (8192, 8192, 0), (3616, 16384, 1)]  # only the last chunk samples


def test_running_first_then_fcfs_with_last_admission_chunked():
    s = sched(max_num_batched_tokens=1000)
    s.add_request(Request(0, 600, 600, 3))
    s.update_from_output(s.schedule())  # request 0 prefilled: next it decodes
    for i in (1, 2):
        s.add_request(Request(i, 600, 600, 3))
    b = s.schedule()
    assert b.new_tokens.tolist() == [1, 600, 399]  # decode first, then FCFS; the last admitted is chunked
    assert b.context.tolist() == [600, 0, 0]
    assert b.sample_seq.size == 2 and b.sample_drafts.tolist() == [0, 0]  # the chunked one emits nothing


def test_max_num_seqs_limits_admission():
    s = sched(max_num_seqs=2)
    for i in range(3):
        s.add_request(Request(i, 10, 10, 5))
    b = s.schedule()
    assert len(b) == 2 and len(s.waiting) == 1


def test_kv_exhaustion_preempts_the_last_admitted_and_recomputes():
    s = sched(num_blocks=6, block_size=16)
    reqs = [Request(i, 40, 40, 30) for i in range(2)]
    for r in reqs:
        s.add_request(r)
    scheduled = 0
    for b in drain(s):
        scheduled += int(b.new_tokens.sum())
    assert s.num_preemptions > 0
    assert all(r.status == RequestStatus.FINISHED and r.num_output_tokens == 30 for r in reqs)
    assert scheduled > sum(40 + 29 for _ in reqs)  # recomputed tokens were scheduled again
    assert reqs[1].num_preemptions >= 1 and reqs[1].num_preemptions >= reqs[0].num_preemptions  # LIFO victim
    assert s.num_free_blocks == 6


def test_no_admission_in_a_step_with_preemption():
    s = sched(num_blocks=4, block_size=16)
    for i in range(2):
        s.add_request(Request(i, 30, 30, 40))
    s.update_from_output(s.schedule())
    late = Request(2, 5, 5, 2)
    s.add_request(late)
    for _ in range(60):
        b = s.schedule()
        if b.num_preempted:
            assert late.status == RequestStatus.WAITING  # nothing is admitted in a step that preempted
            return
        s.update_from_output(b)
    pytest.fail("expected a preemption")


def test_mtp_drafts_cut_by_the_budget_are_not_credited():
    s = sched(max_num_batched_tokens=4, num_spec_tokens=2, accept=lambda m: np.full(m, 2))
    reqs = [Request(i, 1, 1, 30) for i in range(2)]
    for r in reqs:
        s.add_request(r)
    for _ in range(60):
        if not s.has_work():
            break
        b = s.schedule()
        tokens = s.update_from_output(b).num_tokens
        scheduled = dict(zip(range(len(b.new_tokens)), b.new_tokens.tolist(), strict=True))
        assert all(t <= 3 for t in tokens.tolist()) and sum(scheduled.values()) <= 4
        r, n = s.running, s.running.n
        sampled = r.num_output_tokens[:n] + r.num_output_placeholders[:n]
        assert np.all(r.num_computed_tokens[:n] <= r.num_prompt_tokens[:n] + sampled)
    assert all(r.status == RequestStatus.FINISHED and r.num_output_tokens == 30 for r in reqs)


def test_async_preemption_keeps_the_in_flight_token():
    s = sched(num_blocks=4, block_size=16)
    first, second = Request(0, 31, 31, 40), Request(1, 16, 16, 2)  # 2 + 1 blocks after prefill
    s.add_request(first)
    s.add_request(second)
    in_flight = s.schedule()  # both prefill; second samples its first token
    s.update_from_output(in_flight)
    in_flight = s.schedule()  # decode step N (in flight): second takes the last block, samples its last token
    nxt = (
        s.schedule()
    )  # step N+1, scheduled before N completes (async): first needs a block, second is preempted
    assert nxt.num_preempted and second.status == RequestStatus.PREEMPTED
    out = s.update_from_output(in_flight)
    assert 1 in out.request_ids.tolist()  # the victim's in-flight token still reaches the client
    assert second in out.finished and second.num_output_tokens == 2 and second not in s.waiting


def test_async_mtp_schedules_no_empty_steps_when_drafts_are_rejected():
    """vLLM skips a request only when its in-flight steps finish it even if every draft is rejected."""
    s = sched(num_spec_tokens=2)  # default acceptance: every draft rejected
    req = Request(0, 8, 8, 4)
    s.add_request(req)
    in_flight = s.schedule()  # prefill; samples token 1
    steps = 1
    while req.status != RequestStatus.FINISHED:
        nxt = s.schedule()  # async: scheduled before the previous step completes
        s.update_from_output(in_flight)
        in_flight = nxt
        steps += 1
        assert steps < 20
        if req.status != RequestStatus.FINISHED:
            assert len(nxt) == 1  # every step after the prefill carries the request (verify of 1 + 2 drafts)
    # 4 tokens, one per step when all drafts are rejected: prefill + 3 verify steps, then the result arrives
    assert req.num_output_tokens == 4 and steps <= 5


def test_mtp_drafts_stop_at_max_model_len():
    s = sched(num_spec_tokens=3, max_model_len=100)
    s.add_request(Request(0, 90, 90, 10))
    s.update_from_output(s.schedule())
    for _ in range(20):
        b = s.schedule()
        if not len(b):
            break
        assert int((b.context + b.new_tokens).max()) <= 99  # positions stay below max_model_len, as in vLLM
        s.update_from_output(b)


def test_decode_blocks_grow_at_block_boundaries():
    s = sched(block_size=16)
    s.add_request(Request(0, 16, 16, 3))
    s.update_from_output(s.schedule())
    assert s.num_free_blocks == 10_000 - 1
    s.update_from_output(s.schedule())  # computes token 17: a second block
    assert s.num_free_blocks == 10_000 - 2


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
