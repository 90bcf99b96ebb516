"""MoE token dispatch and combine across the expert group: one module per vLLM all-to-all backend.

vLLM's ``--all2all-backend`` picks how the tokens of every DP rank reach the experts of every GPU and how the
expert outputs come back. Each backend turns one MoE layer's tokens into communication operators; a new
backend is one module with a class registered by ``@register_all2all("name")`` and imported here.
"""

from perfsim.costs.all2all import allgather_reducescatter, deepep_high_throughput, deepep_low_latency
from perfsim.costs.all2all.registry import (
    ALL2ALL_BACKENDS,
    DEFAULT_ALL2ALL_BACKEND,
    All2AllBackend,
    register_all2all,
)
from perfsim.costs.kernels import CostContext


def all2all_backend(ctx: CostContext, name: str = DEFAULT_ALL2ALL_BACKEND) -> All2AllBackend:
    """The registered backend ``name`` for a deployment."""
    if name not in ALL2ALL_BACKENDS:
        raise KeyError(f"no all-to-all backend '{name}'; known: {', '.join(sorted(ALL2ALL_BACKENDS))}")
    return ALL2ALL_BACKENDS[name](ctx)


__all__ = [
    "ALL2ALL_BACKENDS",
    "DEFAULT_ALL2ALL_BACKEND",
    "All2AllBackend",
    "all2all_backend",
    "allgather_reducescatter",
    "deepep_high_throughput",
    "deepep_low_latency",
    "register_all2all",
]
