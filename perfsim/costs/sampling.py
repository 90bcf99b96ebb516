"""The end of a forward pass: final norm, the vocabulary projection (lm_head), its gather and the sampler.

vLLM computes the logits outside the model's CUDA graph [v1/worker/gpu_model_runner.py:3326-3327], so the
lm_head GEMM, the all-gather of the logits across TP ranks and the sampler are launched eagerly every step.
"""

from __future__ import annotations

from perfsim.costs.comm import all_gather
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime
from perfsim.specs.dtypes import ACT_BYTES, LOGIT_BYTES

#: passes over [rows, vocab] logits in the greedy sampler: the fp32 cast writes and the argmax reads
#: [v1/sample/sampler.py:90, 144-172]
SAMPLER_LOGIT_PASSES = 3
SAMPLER_KERNELS = 2
#: the rejection sampler's passes over the draft rows' logits: fp32 cast, clone, softmax (even when greedy), the
#: greedy or random acceptance kernel [v1/sample/rejection_sampler.py:92-160, 384-400, 443-498]
REJECTION_LOGIT_PASSES, REJECTION_KERNELS = 6, 4


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
            k.gemm(name, "logits", 1, rows, vocab_local, ctx.hidden, dtype, launch="eager"),
        ]
        if dep.tp > 1:
            message = rows * arch.vocab_size * ACT_BYTES
            ops.append(
                k.comm_op(f"{name}_allgather", 1, all_gather(message, dep.tp, ctx.tp_link), launch="eager")
            )
        ops.append(
            k.memory_op(
                "sampler",
                "logits",
                1,
                rows * arch.vocab_size * LOGIT_BYTES * SAMPLER_LOGIT_PASSES,
                kernels=SAMPLER_KERNELS,
                launch="eager",
            )
        )
        return ops

    def rejection_ops(self, draft_rows: int) -> list[OpTime]:
        """The rejection sampler over ``draft_rows`` rows of draft logits (MTP verification)."""
        if draft_rows <= 0:
            return []
        vocab = self.ctx.model.arch.vocab_size
        return [
            self.ctx.kernels.memory_op(
                "rejection_sampler",
                "logits",
                1,
                draft_rows * vocab * LOGIT_BYTES * REJECTION_LOGIT_PASSES,
                kernels=REJECTION_KERNELS,
                launch="eager",
            )
        ]
