"""The simulator's shortcuts (decode blocks, cached shape costs) must not change predictions."""

from __future__ import annotations

import pytest

from perfsim.costs.memory import memory_plan
from perfsim.costs.params import CostParams
from perfsim.serving.metrics import bench_metrics
from perfsim.serving.simulate import simulate
from perfsim.serving.workload import BenchConfig
from perfsim.specs.deployment import Deployment, resolve_deployment
from perfsim.specs.hardware import load_hardware
from perfsim.specs.model import load_model

KEYS = (
    "duration",
    "output_throughput",
    "total_token_throughput",
    "mean_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "mean_itl_ms",
    "p99_itl_ms",
    "max_output_tokens_per_s",
)


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
    ],
)
def test_fast_path_matches_step_by_step(name, dep, bench):
    model, hw = load_model(name, "fp4"), load_hardware("gb300")
    resolved = resolve_deployment(Deployment(**dep), model, hw, 2)
    plan = memory_plan(model, hw, resolved)
    cfg = BenchConfig(**bench)
    results = []
    for fast in (True, False):
        sim = simulate(model, hw, resolved, plan, CostParams(), cfg, fast=fast)
        results.append(bench_metrics(sim.view, sim.duration_s, num_sent=sim.num_sent))
    for key in KEYS:
        assert results[0][key] == pytest.approx(results[1][key], rel=0.005), key
