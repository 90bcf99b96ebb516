"""Dense (non-expert) parts of a decoder: the token embedding, the residual norms and the dense MLP layers."""

from __future__ import annotations

from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime
from perfsim.specs.dtypes import ACT_BYTES

#: Passes over a [tokens, hidden] BF16 tensor per decoder layer by its two fused add + RMSNorm kernels, each
#: reading hidden and residual and writing both [deepseek_v2.py:1203-1231; Inductor fuses add + norm].
HIDDEN_PASSES_PER_LAYER = 8
RESIDUAL_NORM_KERNELS = 2


class DenseLayers:
    """Embedding, residual norms and dense MLPs of one model on one deployment."""

    def __init__(self, ctx: CostContext):
        self.ctx = ctx

    def embedding_ops(self, t: int) -> list[OpTime]:
        """The embedding lookup of ``t`` tokens (and its all-reduce: vLLM's VocabParallelEmbedding masks)."""
        ctx = self.ctx
        ops = [ctx.kernels.memory_op("embedding", "other", 1, t * ctx.hidden * ACT_BYTES * 2)]
        if ctx.dep.tp > 1:
            ops.append(ctx.tp_allreduce("embedding_allreduce", 1, t * ctx.hidden * ACT_BYTES))
        return ops

    def norm_ops(self, t: int, layers: int) -> list[OpTime]:
        """The two fused residual add + RMSNorm kernels of ``layers`` decoder layers over ``t`` tokens."""
        return [
            self.ctx.kernels.memory_op(
                "residual_norms",
                "other",
                layers,
                HIDDEN_PASSES_PER_LAYER * t * self.ctx.hidden * ACT_BYTES,
                kernels=RESIDUAL_NORM_KERNELS,
            )
        ]

    def mlp_ops(self, t: int, layers: int, *, mtp: bool) -> list[OpTime]:
        """The dense MLP of ``layers`` layers (gate/up, SiLU x mul, down; TP split by columns)."""
        if layers == 0:
            return []
        ctx, k = self.ctx, self.ctx.kernels
        h, dep = ctx.hidden, ctx.dep
        inter = ctx.model.arch.dense_intermediate_size // dep.tp
        dt = ctx.model.recipe.dtype("dense_mlp", mtp=mtp)
        ops = [
            k.gemm("dense_gate_up", "dense_mlp", layers, t, 2 * inter, h, dt),
            k.memory_op("dense_act", "dense_mlp", layers, t * inter * ACT_BYTES * 3),
            k.gemm("dense_down", "dense_mlp", layers, t, h, inter, dt),
        ]
        if dep.tp > 1:
            ops.append(ctx.tp_allreduce("dense_allreduce", layers, t * h * ACT_BYTES))
        return ops
