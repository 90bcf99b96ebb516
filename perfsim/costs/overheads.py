"""Fixed costs of an engine step: kernel boundaries, eager launches by CUDA-graph mode, and CPU time.

A step's GPU time adds a gap per kernel boundary (even inside CUDA graphs); kernels outside graphs are
launched one by one from the CPU, which can take longer than the GPU work; the scheduler, input preparation
and output processing take CPU time per step and per request, hidden behind the GPU with async scheduling.
"""

from __future__ import annotations

from perfsim.costs.params import CostParams

#: Kernels outside the decoder layers: embedding, final norm, lm_head, logits gather, sampler, input prep.
KERNELS_OUTSIDE_LAYERS = 6
#: Extra kernels of an MTP drafter pass besides its layer: the two input norms, concat, eh_proj, shared-head norm,
#: draft sampling, and the hidden-state / position bookkeeping between passes.
KERNELS_MTP_EXTRA = 8
#: Piecewise CUDA graphs split each layer around the attention op: two graph replays per layer.
GRAPH_PIECES_PER_LAYER = 2


def eager_launches(graph_mode: str, kernels: int, layers: int, eager_per_layer: int) -> int:
    """CPU launches of a forward of ``kernels`` kernels over ``layers`` layers in ``graph_mode``.

    FULL: one graph replay; PIECEWISE: the attention kernels of each layer eagerly plus the graph pieces
    around them; NONE: every kernel.
    """
    if graph_mode == "FULL":
        return 1
    if graph_mode == "PIECEWISE":
        return layers * (eager_per_layer + GRAPH_PIECES_PER_LAYER)
    return kernels


def cpu_step_s(params: CostParams, num_reqs: int) -> float:
    """CPU time (s) of one engine step scheduling ``num_reqs`` requests."""
    return params.cpu_step_s + params.cpu_per_request_s * num_reqs


def step_period_s(gpu_s: float, launch_s: float, cpu_s: float, async_scheduling: bool) -> float:
    """The step period (s): the forward (GPU time, or the CPU launch time if longer) and the step's CPU time,
    overlapped with async scheduling, one after the other without."""
    forward = gpu_s if gpu_s > launch_s else launch_s
    if async_scheduling:
        return forward if forward > cpu_s else cpu_s
    return forward + cpu_s
