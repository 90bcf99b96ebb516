"""vLLM 0.14.1's default all-to-all backend: all-gather the tokens of every DP rank, reduce-scatter the outputs.

Every rank gathers all DP ranks' BF16 hidden states before the experts and reduce-scatters the expert outputs
back [distributed/device_communicators/all2all.py, AgRsAll2AllManager].
"""

from __future__ import annotations

from perfsim.costs.all2all.registry import register_all2all
from perfsim.costs.comm import all_gather, reduce_scatter
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime
from perfsim.specs.dtypes import ACT_BYTES


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
