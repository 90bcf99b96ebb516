"""Fixed costs of an engine step: kernel boundaries, eager launches by CUDA-graph mode, and CPU time.

A step's GPU time adds a gap per kernel boundary (even inside CUDA graphs); kernels outside graphs are
launched one by one from the CPU, which can take longer than the GPU work; the scheduler, input preparation
and output processing take CPU time per step and per request, hidden behind the GPU with async scheduling.
"""

from __future__ import annotations

from perfsim.costs.params import CostParams
from perfsim.costs.step_cache import KernelCounts

#: Piecewise CUDA graphs split each layer around the attention op: two graph replays per layer.
GRAPH_PIECES_PER_LAYER = 2


def cpu_launches(graph_mode: str, counts: KernelCounts, layers: int) -> int:
    """CPU launches of a forward whose kernels are ``counts`` over ``layers`` layers in ``graph_mode``.

    FULL: one graph replay; PIECEWISE: the attention op's kernels of each layer plus the graph pieces around
    them; NONE: every kernel. Kernels outside the model's graph (the logits and the sampler) always launch.
    """
    if graph_mode == "FULL":
        return 1 + counts.eager
    if graph_mode == "PIECEWISE":
        return counts.attention + layers * GRAPH_PIECES_PER_LAYER + counts.eager
    return counts.kernels


def cpu_step_s(params: CostParams, num_reqs: int) -> float:
    """Engine-core CPU time (s) of one step scheduling ``num_reqs`` requests (hidden by async scheduling)."""
    return params.cpu_step_s + params.cpu_per_request_s * num_reqs


def exposed_worker_s(params: CostParams, num_reqs: int, synchronizes: bool) -> float:
    """GPU-worker CPU time (s) a step adds to its period: only when the step synchronizes with the host."""
    return params.worker_per_request_s * num_reqs if synchronizes else 0.0


def step_period_s(gpu_s: float, launch_s: float, cpu_s: float, async_scheduling: bool) -> float:
    """The step period (s): the forward (GPU time, or the CPU launch time if longer) and the step's CPU time,
    overlapped with async scheduling, one after the other without."""
    forward = gpu_s if gpu_s > launch_s else launch_s
    if async_scheduling:
        return forward if forward > cpu_s else cpu_s
    return forward + cpu_s
