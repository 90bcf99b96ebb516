"""Capacity planning: which vLLM deployment, on how many GPUs, meets a workload's SLOs at the lowest cost.

``config`` (the search space, workload and SLOs), ``candidates`` (deployments that fit, and those pruned with
vLLM's reason), ``evaluate`` (one simulated point), ``recommend`` (one pick per SLO
set), ``commands`` (its ``vllm serve`` / ``vllm bench serve`` lines) and ``plan`` (all of it, on an executor).
"""

from perfsim.planning.config import PlanConfig
from perfsim.planning.plan import LARGE_PLAN_POINTS, PlanResult, plan

__all__ = ["LARGE_PLAN_POINTS", "PlanConfig", "PlanResult", "plan"]
