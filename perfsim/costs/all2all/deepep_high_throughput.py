"""DeepEP's high-throughput ("normal") kernels: each token goes once to every rank holding one of its experts.

Dispatch sends one copy per destination rank (FP8 with block scales for block-FP8 experts, else BF16) plus its
top-k ids and weights; the expert rank sums its experts' outputs per token and the combine returns one BF16 row
per (token, rank) [vLLM 0.14.1 deepep_ht_prepare_finalize.py:118-134, 228-280, 333-357]. Across nodes a token
crosses the NIC once per destination rank here (DeepEP forwards within the node over NVLink; perfsim counts the
NIC bytes per remote rank, an upper bound). The kernels occupy 20 SMs while they run [all2all.py:262], which only
matters when compute overlaps them; dispatch waits on the host, so vLLM runs such instances without CUDA graphs
(``resolve_deployment``).
"""

from __future__ import annotations

from perfsim.costs.all2all.registry import register_all2all
from perfsim.costs.all2all.routing import DeepEPBackend
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime

#: top-k ids (int64) and weights (fp32) travelling with each dispatched copy of DeepSeek's top-8
TOPK_METADATA_BYTES_PER_EXPERT = 12


@register_all2all("deepep_high_throughput")
class DeepEPHighThroughput(DeepEPBackend):
    """Dispatch and combine with one copy per destination rank."""

    def __init__(self, ctx: CostContext):
        moe = ctx.model.arch.moe
        self.header_bytes = (moe.top_k if moe else 0) * TOPK_METADATA_BYTES_PER_EXPERT
        super().__init__(ctx)

    def ops(self, moe_tokens: int, layers: int) -> list[OpTime]:
        """One dispatch and one combine per layer for this rank's ``moe_tokens / dp`` tokens."""
        ctx, route, tokens = self.ctx, self.route, self.rank_tokens(moe_tokens)
        if tokens is None or route is None:
            return []
        latency = ctx.params.deepep_latency_s
        out = []
        for name, per_copy in (
            ("moe_dispatch_deepep", self.dispatch_bytes),
            ("moe_combine_deepep", self.combine_bytes),
        ):
            nvl = tokens * route.nvlink_ranks_per_token * per_copy
            nic = tokens * route.nic_ranks_per_token * per_copy
            out.append(ctx.kernels.comm_op(name, layers, (route.time_s(nvl, nic, latency), nvl + nic)))
        return out
