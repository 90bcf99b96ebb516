"""The small SimPy parts of the serving simulation, each alone: bench client, routers, P/D proxy, MTP acceptance."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import simpy

from perfsim.costs.comm import Link
from perfsim.costs.constant import ConstantStepCost
from perfsim.serving.api_server import ApiServer
from perfsim.serving.client import BenchClient
from perfsim.serving.engine import Engine
from perfsim.serving.pd_proxy import PDProxy
from perfsim.serving.request import Request, RequestStatus
from perfsim.serving.router import DP_LB_WAITING_WEIGHT, RoundRobin, dp_rank_score, least_loaded_rank
from perfsim.serving.spec_decode import Acceptance, SpecStats
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model

# ---- bench client ----------------------------------------------------------------------------------


def _requests(n: int) -> list[Request]:
    return [Request(i, 10, 11, 5) for i in range(n)]


def test_client_holds_at_most_max_concurrency_and_starts_the_clock_at_the_slot():
    env = simpy.Environment()
    reqs = _requests(5)
    client = BenchClient(env, reqs, np.zeros(5), max_concurrency=2)
    sent: list[tuple[float, int]] = []

    def serve(req: Request):  # each request takes 1 s once sent
        sent.append((env.now, req.request_id))
        yield env.timeout(1.0)
        client.finish(req, env.now)

    client.start(lambda req: env.process(serve(req)))
    env.run(until=client.all_finished)
    assert sent == [(0.0, 0), (0.0, 1), (1.0, 2), (1.0, 3), (2.0, 4)]
    assert [r.send_time_s for r in reqs] == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert client.num_finished == 5 and env.now == 3.0


def test_client_waits_for_arrivals_without_a_limit():
    env = simpy.Environment()
    reqs = _requests(3)
    client = BenchClient(env, reqs, np.array([0.5, 0.5, 2.0]), max_concurrency=None)
    client.start(lambda req: client.finish(req, env.now))
    env.run(until=client.all_finished)
    assert [r.send_time_s for r in reqs] == [0.5, 0.5, 2.0]


def test_a_freed_slot_schedules_nothing_when_nobody_waits():
    """The limit frees like asyncio.Semaphore: no event is left at the finish time (it would stop decode blocks)."""
    env = simpy.Environment()
    reqs = _requests(1)
    client = BenchClient(env, reqs, np.zeros(1), max_concurrency=4)
    client.start(lambda req: None)
    env.run()  # the client sends its one request and stops; nothing else is scheduled
    client.finish(reqs[0], env.now)
    assert client.all_finished.triggered
    env.step()  # the all-finished event itself
    assert env.peek() == math.inf


# ---- routers ---------------------------------------------------------------------------------------


def _rank(waiting: int, running: int) -> SimpleNamespace:
    return SimpleNamespace(waiting=[None] * waiting, num_running=running)


def test_dp_balancer_scores_four_times_waiting_plus_running():
    """vLLM's DPLBAsyncMPClient: a waiting request weighs 4 running ones."""
    assert DP_LB_WAITING_WEIGHT == 4
    assert dp_rank_score(_rank(2, 3)) == 11
    # one waiting (score 4) vs three running (score 3): the running rank gets the request
    assert least_loaded_rank([_rank(1, 0), _rank(0, 3)]) == 1
    # ties go to the first rank
    assert least_loaded_rank([_rank(0, 4), _rank(1, 0), _rank(0, 5)]) == 0
    assert least_loaded_rank([_rank(0, 9), _rank(2, 0), _rank(0, 7)]) == 2


def test_round_robin_cycles():
    rr = RoundRobin(3)
    assert [rr.pick() for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


# ---- P/D proxy -------------------------------------------------------------------------------------


def test_pd_proxy_hands_the_request_over_after_prefill_handoff_and_kv_pull():
    model, hw = load_model("deepseek-v3.2", "fp4"), load_hardware("gb300")
    dep = resolve_deployment(Deployment(num_prefill_instances=1, num_decode_instances=1), model, hw, 2)
    costs = ConstantStepCost(dep, 0.01)
    env = simpy.Environment()
    req = Request(0, 999, 1000, 3)
    done: list[float] = []
    prefill = Engine(env, "p", costs, num_blocks=100, hold_finished=True)
    decode = Engine(env, "d", costs, num_blocks=100, log=[], on_finish=lambda r, t: done.append(t))
    link = Link(name="test", bandwidth_Bps=1e9, latency_s=0.001)
    proxy = PDProxy(
        env,
        [req],
        [prefill],
        [decode],
        api=ApiServer(env, 0.0),
        kv_bytes_per_token=1e3,
        kv_link=link,
        handoff_s=0.002,
    )
    proxy.send(req)
    env.run(until=1.0)
    pull = 0.001 + 1000 * 1e3 / 1e9  # latency + 1 MB at 1 GB/s
    assert proxy.kv_transfer_s == [pytest.approx(pull)]
    # prefill step, proxy hand-off, pull, then three decode steps (the first recomputes the last prompt token)
    assert done == [pytest.approx(0.01 + 0.002 + pull + 3 * 0.01)]
    assert req.status == RequestStatus.FINISHED and not req.do_remote_prefill
    assert prefill.schedulers[0].num_free_blocks == 100  # P freed the prompt's blocks once D had pulled them


# ---- MTP acceptance --------------------------------------------------------------------------------


def test_acceptance_takes_the_longest_accepted_prefix_of_drafts():
    rates = (0.9, 0.8, 0.5)
    draws = Acceptance(rates, np.random.default_rng(1))(200_000)
    assert draws.min() == 0 and draws.max() == 3
    # P(at least i accepted) = r1 x ... x ri
    for i, expected in enumerate(np.cumprod(rates), start=1):
        assert np.mean(draws >= i) == pytest.approx(expected, abs=0.005)
    assert draws.mean() == pytest.approx(0.9 + 0.72 + 0.36, abs=0.01)


def test_spec_stats_count_per_position_as_vllm():
    stats = SpecStats(num_accepted_tokens_per_pos=[0, 0, 0])
    stats.observe(np.array([3, 3, 2, 1]), np.array([3, 1, 2, 0]))
    assert (stats.num_drafts, stats.num_draft_tokens) == (4, 9)
    assert stats.num_accepted_tokens_per_pos == [3, 2, 1]


# ---- decode instance in steady state -------------------------------------------------------------------------


def test_decode_steady_state_by_hand():
    """B = KV tokens per rank / (ISL + OSL/2), capped by max_num_seqs; throughput = B x DP / step time."""
    from perfsim.costs.memory import memory_plan
    from perfsim.serving.steady_decode import decode_batch, decode_steady_state

    model, hw = load_model("deepseek-r1", "fp4"), load_hardware("gb200")
    dep = resolve_deployment(
        Deployment(tensor_parallel_size=1, data_parallel_size=8, enable_expert_parallel=True), model, hw, 1
    )
    plan = memory_plan(model, hw, dep)
    expected = int(plan.kv_capacity_tokens // 3000)  # ISL 2000, OSL 2000: 3000 tokens on average
    assert decode_batch(plan, dep, 2000, 2000) == min(expected, dep.max_num_seqs)
    assert decode_batch(plan, dataclasses.replace(dep, max_num_seqs=100), 2000, 2000) == 100
    res = decode_steady_state(ConstantStepCost(dep, 0.05), plan, 2000, 2000, batch=300)
    assert res["output_throughput"] == pytest.approx(300 * 8 / 0.05)
    assert (res["num_gpus"], res["decode_batch_per_rank"], res["step_s"]) == (8, 300, pytest.approx(0.05))


def _dense_peaks(records) -> tuple[float, int]:
    """Peak chunks per second and peak active requests, counted second by second (the definition)."""
    start = min(r.send_time for r in records)
    end = max(r.chunk_times[-1] for r in records)
    seconds = int(np.ceil(end - start)) + 1
    chunks = np.zeros(seconds)
    active = np.zeros(seconds)
    for r in records:
        np.add.at(chunks, (r.chunk_times - start).astype(int), 1)
        active[int(r.send_time - start) : int(r.chunk_times[-1] - start) + 1] += 1
    return float(chunks.max()), int(active.max())


def test_peak_rates_equal_the_second_by_second_count_with_memory_set_by_the_requests():
    from perfsim.serving.metrics import ClientView, RequestRecord, peak_rates

    rng = np.random.default_rng(7)
    records = []
    for _ in range(40):
        send = float(rng.uniform(0, 30))
        chunks = np.sort(send + rng.uniform(0.05, 12, size=int(rng.integers(1, 30))))
        records.append(
            RequestRecord(send_time=send, prompt_len=10, output_tokens=chunks.size, chunk_times=chunks)
        )
    assert peak_rates(ClientView.from_records(records)) == _dense_peaks(records)
    far = [  # two requests 10^8 simulated seconds apart: two occupied seconds, not 10^8 buckets
        RequestRecord(send_time=0.0, prompt_len=10, output_tokens=2, chunk_times=np.array([0.2, 0.7])),
        RequestRecord(send_time=1e8, prompt_len=10, output_tokens=1, chunk_times=np.array([1e8 + 0.5])),
    ]
    view = ClientView.from_records(far)
    assert view.bucket_chunks.tolist() == [2, 1] and peak_rates(view) == (2.0, 1)
