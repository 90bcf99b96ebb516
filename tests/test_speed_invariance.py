"""The simulator's shortcuts (decode blocks, cached shape costs) must not change predictions.

Decode blocks are exact where the arithmetic is: every operator's work is linear in the step index, so a
block's step times interpolate exactly between its first and last step. Fast and step-by-step simulation
therefore agree to rounding (relative 1e-9) on every metric.
"""

from __future__ import annotations

import numpy as np
import pytest

from perfsim.costs.memory import memory_plan
from perfsim.costs.params import CostParams
from perfsim.costs.step import StepCostModel
from perfsim.serving.metrics import bench_metrics
from perfsim.serving.simulate import simulate
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model

#: relative agreement of fast and step-by-step simulation: rounding only
EXACT = 1e-9


def _simulate_both(name: str, dep: dict, bench: dict, tp: int = 2) -> tuple[dict, dict, int, int]:
    model, hw = load_model(name, "fp4"), load_hardware("gb300")
    resolved = resolve_deployment(Deployment(**dep), model, hw, tp)
    plan = memory_plan(model, hw, resolved)
    cfg = BenchConfig(**bench, percentile_metrics="ttft,tpot,itl,e2el", metric_percentiles="50,90,99")
    out = []
    for fast in (True, False):
        sim = simulate(model, hw, resolved, plan, CostParams(), cfg, fast=fast)
        metrics = bench_metrics(
            sim.view,
            sim.duration_s,
            num_sent=sim.num_sent,
            percentiles=(50, 90, 99),
            selected=("ttft", "tpot", "itl", "e2el"),
        )
        out.append((metrics, sum(e.steps for e in sim.engines.values()), sim))
    (fast_m, fast_steps, fast_sim), (slow_m, slow_steps, slow_sim) = out
    assert any(isinstance(t, np.ndarray) for t, _, _ in fast_sim.log), "the fast path used no decode block"
    assert not any(isinstance(t, np.ndarray) for t, _, _ in slow_sim.log)
    return fast_m, slow_m, fast_steps, slow_steps


@pytest.mark.parametrize(
    ("name", "dep", "bench"),
    [
        (
            "deepseek-v3.2",
            {},
            dict(num_prompts=300, random_input_len=2048, random_output_len=256, max_concurrency=96),
        ),
        (
            "deepseek-r1",
            {"max_num_batched_tokens": 16384},
            dict(
                num_prompts=200,
                random_input_len=3000,
                random_output_len=300,
                request_rate=6.0,
                random_range_ratio=0.5,
            ),
        ),
        (
            "deepseek-r1",
            {"gpu_memory_utilization": 0.72},
            dict(num_prompts=300, random_input_len=2048, random_output_len=400, max_concurrency=400),
        ),
        # long decode: a few requests decode 4,000 tokens each, almost all of it in blocks, crossing V3.2's
        # 2,048-token sparse top-k cap on the way (where step times change slope)
        (
            "deepseek-v3.2",
            {},
            dict(num_prompts=8, random_input_len=512, random_output_len=4000, max_concurrency=8),
        ),
    ],
)
def test_fast_path_matches_step_by_step(name, dep, bench):
    fast, slow, fast_steps, slow_steps = _simulate_both(name, dep, bench)
    assert fast_steps == slow_steps  # a block of n steps counts n steps
    _assert_same_metrics(fast, slow)


def _assert_same_metrics(fast: dict, slow: dict) -> None:
    """Every bench metric of the fast run equals the step-by-step one (floats to rounding)."""
    assert fast.keys() == slow.keys()
    for key, value in slow.items():
        if isinstance(value, float):
            assert fast[key] == pytest.approx(value, rel=EXACT, abs=1e-12), key
        else:
            assert fast[key] == value, key


def test_data_parallel_decode_blocks_are_exact():
    fast, slow, _, _ = _simulate_both(
        "deepseek-r1",
        {"data_parallel_size": 2, "enable_expert_parallel": True},
        dict(
            num_prompts=40,
            random_input_len=1024,
            random_output_len=600,
            max_concurrency=40,
            random_range_ratio=0.4,
        ),
        tp=1,
    )
    for key in ("duration", "mean_tpot_ms", "p99_itl_ms", "median_e2el_ms", "output_throughput"):
        assert fast[key] == pytest.approx(slow[key], rel=EXACT), key


def test_dual_batch_overlap_decode_blocks_are_exact():
    """DBO steps switch between compute- and communication-bound halves; decode blocks must see it."""
    fast, slow, _, _ = _simulate_both(
        "deepseek-r1",
        {
            "data_parallel_size": 4,
            "enable_expert_parallel": True,
            "all2all_backend": "deepep_low_latency",
            "enable_dbo": True,
        },
        dict(num_prompts=160, random_input_len=512, random_output_len=300, max_concurrency=160),
        tp=1,
    )
    for key in ("duration", "mean_tpot_ms", "p99_itl_ms", "median_e2el_ms", "output_throughput"):
        assert fast[key] == pytest.approx(slow[key], rel=EXACT), key


@pytest.mark.parametrize("name", ["deepseek-v3.2", "deepseek-r1"])
def test_decode_block_times_equal_each_step_costed_alone(name):
    """The two-point interpolation of a block reproduces every step's own cost, crossing the top-k cap too."""
    model, hw = load_model(name, "fp4"), load_hardware("gb300")
    cm = StepCostModel(model, hw, resolve_deployment(Deployment(), model, hw, 2))
    contexts = [np.array([100, 1500, 2000, 2040, 6000], dtype=np.int64)]
    steps = 300
    block = cm.decode_block_profile(contexts, steps)
    ones = np.ones(contexts[0].size, dtype=np.int64)
    each = [cm.step_profile([cm.stats(ones, contexts[0] + j)]).total_s for j in range(steps)]
    assert block.step_times_s.shape == (steps,)
    assert np.allclose(block.step_times_s, each, rtol=EXACT, atol=0)
    assert each[-1] > each[0]  # contexts grew: the steps are not all alike


@pytest.mark.parametrize(
    ("dep", "bench"),
    [
        (  # two replicas behind the router, closed loop: each replica's blocks are cut by the other's traffic
            {"num_instances": 2},
            dict(num_prompts=120, random_input_len=1024, random_output_len=300, max_concurrency=24),
        ),
        (  # the same with Poisson arrivals and uneven lengths
            {"num_instances": 2},
            dict(
                num_prompts=100,
                random_input_len=2048,
                random_output_len=200,
                request_rate=3.0,
                random_range_ratio=0.5,
            ),
        ),
        (  # synchronous scheduling: a step is planned when the previous one ends
            {"num_instances": 2, "async_scheduling": False},
            dict(num_prompts=80, random_input_len=1024, random_output_len=250, max_concurrency=16),
        ),
        (  # P/D: decode instances receive requests after KV transfers, their blocks cut by each arrival
            {"num_prefill_instances": 1, "num_decode_instances": 2},
            dict(num_prompts=80, random_input_len=2048, random_output_len=300, max_concurrency=32),
        ),
    ],
    ids=["replicas", "replicas-poisson", "replicas-sync", "pd-1p2d"],
)
def test_watched_decode_blocks_of_several_engines_are_exact(dep, bench):
    fast, slow, fast_steps, slow_steps = _simulate_both("deepseek-v3.2", dep, bench)
    assert fast_steps == slow_steps
    _assert_same_metrics(fast, slow)
