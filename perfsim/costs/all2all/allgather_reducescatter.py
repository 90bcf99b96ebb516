"""vLLM 0.14.1's default all-to-all backend: all-gather the tokens of every DP rank, reduce-scatter the outputs.

Every rank gathers all DP ranks' hidden states and router logits (BF16) before the experts and reduce-scatters
the BF16 expert outputs back [distributed/device_communicators/all2all.py, AgRsAll2AllManager; fused_moe/
layer.py:1922-1969]. With NVFP4 experts on FlashInfer's kernels the hidden states are quantized first and
gathered as FP4 values with FP8 block scales [fused_moe/layer.py:1941-1955, quantization/modelopt.py:1567-1584].
"""

from __future__ import annotations

from perfsim.costs.all2all.registry import register_all2all
from perfsim.costs.comm import all_gather, reduce_scatter
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime
from perfsim.specs.dtypes import ACT_BYTES, FP8_BYTES, WEIGHT_BYTES

#: NVFP4 block size: one FP8 scale per 16 values
NVFP4_BLOCK = 16


@register_all2all("allgather_reducescatter")
class AllGatherReduceScatter:
    """Every rank gathers all DP ranks' tokens, and reduce-scatters the expert outputs back."""

    def __init__(self, ctx: CostContext):
        self.ctx = ctx
        h, moe = ctx.hidden, ctx.model.arch.moe
        routed = ctx.model.recipe.dtype("routed_experts")
        if ctx.kernels.compute_dtype(routed) == "nvfp4":
            hidden_bytes = h * (WEIGHT_BYTES["nvfp4"] - FP8_BYTES / NVFP4_BLOCK) + h / NVFP4_BLOCK * FP8_BYTES
        else:
            hidden_bytes = h * ACT_BYTES
        #: bytes of one gathered token: its hidden state and its router logits
        self.dispatch_bytes = hidden_bytes + (moe.num_experts if moe else 0) * ACT_BYTES

    def ops(self, moe_tokens: int, layers: int) -> list[OpTime]:
        """All-gather before the experts and reduce-scatter after them (nothing without data parallelism)."""
        ctx = self.ctx
        if ctx.dep.dp <= 1:
            return []
        comm = ctx.kernels.comm_op
        dispatch = all_gather(moe_tokens * self.dispatch_bytes, ctx.dep.dp, ctx.moe_link)
        combine = reduce_scatter(moe_tokens * ctx.hidden * ACT_BYTES, ctx.dep.dp, ctx.moe_link)
        return [
            comm("moe_dispatch_allgather", layers, dispatch),
            comm("moe_combine_reducescatter", layers, combine),
        ]
