"""The steady state of a decode instance whose batch fills its KV cache (decode-throughput benchmarks).

Decode benchmarks of disaggregated deployments set the batch to what the KV cache holds and report output
tokens per second per GPU. In steady state requests are spread evenly over their output: each rank runs
``B = KV tokens per rank / (ISL + OSL / 2)`` requests (at most ``max_num_seqs``) whose contexts are spread
uniformly over ``[ISL, ISL + OSL)``, every rank alike, one token each per step. The throughput is
``B x DP / step time``; nothing needs simulating.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perfsim.costs.interface import StepCostProvider
from perfsim.costs.memory import MemoryPlan
from perfsim.specs.deployment import ResolvedDeployment


def decode_batch(plan: MemoryPlan, dep: ResolvedDeployment, isl: int, osl: int) -> int:
    """Requests per rank whose KV, on average half-way through their output, fills the cache."""
    return max(1, min(dep.max_num_seqs, int(plan.kv_capacity_tokens // (isl + osl / 2))))


def decode_steady_state(
    costs: StepCostProvider, plan: MemoryPlan, isl: int, osl: int, *, batch: int | None = None
) -> dict[str, Any]:
    """Output tokens/s of the instance (``output_throughput``), its GPUs, the batch per rank and the step (s)."""
    dep = costs.dep
    b = batch or decode_batch(plan, dep, isl, osl)
    contexts = np.linspace(isl, isl + osl, b, endpoint=False).astype(np.int64)
    stats = costs.stats(np.ones(b, dtype=np.int64), contexts)
    step_s = costs.step_profile([stats] * dep.dp).total_s
    gpus = dep.tp * dep.dp
    return {
        "output_throughput": b * dep.dp / step_s,
        "num_gpus": gpus,
        "decode_batch_per_rank": b,
        "step_s": step_s,
    }
