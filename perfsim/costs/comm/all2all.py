"""MoE token dispatch and combine across the expert group: one class per vLLM all-to-all backend.

vLLM's ``--all2all-backend`` picks how the tokens of every DP rank reach the experts of every GPU and how the
expert outputs come back. Each backend here turns one MoE layer's tokens into communication operators; a new
backend is one class registered with ``@register_all2all("name")``. vLLM 0.14.1's default,
``allgather_reducescatter``, gathers every rank's hidden states (BF16) on every rank and reduce-scatters the
outputs [distributed/device_communicators/all2all.py, AgRsAll2AllManager].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from perfsim.costs.comm.collectives import all_gather, reduce_scatter
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime
from perfsim.specs.dtypes import ACT_BYTES

#: vLLM 0.14.1's default --all2all-backend
DEFAULT_ALL2ALL_BACKEND = "allgather_reducescatter"


class All2AllBackend(Protocol):
    """Dispatch and combine of one MoE layer's tokens over the data-parallel ranks of an instance."""

    def ops(self, moe_tokens: int, layers: int) -> list[OpTime]:
        """Communication operators for ``moe_tokens`` tokens (all DP ranks, padded) in each of ``layers`` layers."""
        ...


ALL2ALL_BACKENDS: dict[str, Callable[[CostContext], All2AllBackend]] = {}


def register_all2all(name: str) -> Callable[[type], type]:
    """Register an all-to-all backend class under vLLM's ``--all2all-backend`` name."""

    def wrap(cls: type) -> type:
        ALL2ALL_BACKENDS[name] = cls
        return cls

    return wrap


def all2all_backend(ctx: CostContext, name: str = DEFAULT_ALL2ALL_BACKEND) -> All2AllBackend:
    """The registered backend ``name`` for a deployment."""
    return ALL2ALL_BACKENDS[name](ctx)


@register_all2all("allgather_reducescatter")
class AllGatherReduceScatter:
    """Every rank gathers all DP ranks' BF16 hidden states, and reduce-scatters the expert outputs back."""

    def __init__(self, ctx: CostContext):
        self.ctx = ctx

    def ops(self, moe_tokens: int, layers: int) -> list[OpTime]:
        """All-gather before the experts and reduce-scatter after them (nothing without data parallelism)."""
        ctx = self.ctx
        if ctx.dep.dp <= 1:
            return []
        message = moe_tokens * ctx.hidden * ACT_BYTES
        comm = ctx.kernels.comm_op
        return [
            comm("moe_dispatch_allgather", layers, all_gather(message, ctx.dep.dp, ctx.moe_link)),
            comm("moe_combine_reducescatter", layers, reduce_scatter(message, ctx.dep.dp, ctx.moe_link)),
        ]
