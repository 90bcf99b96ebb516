"""The end of a forward pass: final norm, the vocabulary projection (lm_head), its gather and the sampler."""

from __future__ import annotations

from perfsim.costs.comm import all_gather
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime
from perfsim.specs.dtypes import ACT_BYTES, LOGIT_BYTES

#: passes over [rows, vocab] fp32 logits in the sampler (cast, greedy argmax / top-k)
SAMPLER_LOGIT_PASSES = 3


class Sampling:
    """Logits and sampling of the rows a step samples (one per request, 1 + k with MTP verification)."""

    def __init__(self, ctx: CostContext):
        self.ctx = ctx

    def logits_ops(self, rows: int, name: str, dtype: str) -> list[OpTime]:
        """Final norm, the vocab-parallel ``name`` GEMM with ``dtype`` weights, the logits gather, the sampler."""
        ctx, k = self.ctx, self.ctx.kernels
        arch, dep = ctx.model.arch, ctx.dep
        vocab_local = arch.vocab_size / dep.tp
        ops = [
            k.memory_op("final_norm", "other", 1, rows * ctx.hidden * ACT_BYTES * 2),
            k.gemm(name, "logits", 1, rows, vocab_local, ctx.hidden, dtype),
        ]
        if dep.tp > 1:
            ops.append(
                k.comm_op(
                    f"{name}_allgather",
                    1,
                    all_gather(rows * arch.vocab_size * ACT_BYTES, dep.tp, ctx.tp_link),
                )
            )
        ops.append(
            k.memory_op("sampler", "logits", 1, rows * arch.vocab_size * LOGIT_BYTES * SAMPLER_LOGIT_PASSES)
        )
        return ops
