"""The MTP drafter (DeepSeek multi-token prediction) that runs after each verify step.

One pass over the step's tokens proposes the first draft; each of the k - 1 further drafts is a one-token
pass per request. A pass is eh_proj (2h -> h) over the concatenated embedding and hidden state, one MoE
decoder layer with its own BF16 weights and the drafter's own lm_head. Its count-only part is cached by
shape like the main step's; the k - 1 one-token passes are identical, so one is costed and scaled.
"""

from __future__ import annotations

import dataclasses

from perfsim.costs.attention import AttentionFamily
from perfsim.costs.batch import BatchStats, uniform_decode_stats
from perfsim.costs.dense import DenseLayers
from perfsim.costs.kernels import CostContext
from perfsim.costs.moe import MoEBlock
from perfsim.costs.overheads import cpu_launches
from perfsim.costs.roofline import OpTime
from perfsim.costs.sampling import Sampling
from perfsim.costs.step_cache import KernelCounts, StaticPart, cache_put, kernel_counts, static_part
from perfsim.specs.dtypes import ACT_BYTES

#: the drafter's input kernels (enorm, hnorm and their concat) and its bookkeeping between passes (hidden
#: states and positions) [model_executor/models/deepseek_mtp.py; v1/spec_decode/eagle.py]
MTP_INPUT_KERNELS, MTP_BOOKKEEPING_KERNELS = 3, 2


def as_mtp(op: OpTime) -> OpTime:
    """The same operator, filed under the MTP drafter."""
    return dataclasses.replace(
        op, name=op.name if op.name.startswith("mtp") else "mtp_" + op.name, category="mtp"
    )


def scaled(op: OpTime, times: int) -> OpTime:
    """``times`` identical runs of an operator as one entry."""
    return dataclasses.replace(
        op,
        time_s=op.time_s * times,
        flops=op.flops * times,
        bytes=op.bytes * times,
        comm_bytes=op.comm_bytes * times,
    )


@dataclasses.dataclass(slots=True)
class DraftCost:
    """The drafter's operators of one step, with its kernels and CPU launches."""

    ops: tuple[OpTime, ...]
    kernels: int
    launches: int


class MTPDrafter:
    """The MTP drafter of a deployment with ``num_speculative_tokens`` > 0."""

    def __init__(
        self,
        ctx: CostContext,
        attention: AttentionFamily,
        dense: DenseLayers,
        moe: MoEBlock,
        sampling: Sampling,
        cache: dict[tuple, StaticPart],
        decode_threshold: int,
    ):
        self.ctx, self.attention, self.dense, self.moe, self.sampling = ctx, attention, dense, moe, sampling
        self.cache = cache
        self.decode_threshold = decode_threshold
        self.num_drafts = ctx.dep.num_speculative_tokens

    def cost(self, b: BatchStats, t: int) -> DraftCost:
        """Drafting after a step of batch ``b`` padded to ``t`` tokens."""
        k = self.num_drafts
        reqs = max(b.num_reqs, 1)
        first = self._static(b.num_tokens, t, reqs)
        core = [as_mtp(o) for o in self.attention.core_ops(b, 1, mtp=True)]
        ops = list(first.ops) + core
        counts = first.counts + kernel_counts(core)
        if k > 1:
            one = uniform_decode_stats(
                reqs, b.max_seq_len, decode_threshold=self.decode_threshold, topk=self.attention.sparse_topk
            )
            rest = self._static(reqs, reqs, reqs)
            rest_core = tuple(self.attention.core_ops(one, 1, mtp=True))
            ops += [scaled(as_mtp(o), k - 1) for o in rest.ops + rest_core]
            counts = counts + (rest.counts + kernel_counts(rest_core)).scaled(k - 1)
        return DraftCost(ops=tuple(ops), kernels=counts.kernels, launches=self._launches(counts, k))

    def _launches(self, counts: KernelCounts, passes: int) -> int:
        """CPU launches of the drafter: every kernel (the V3.2 drafter runs eagerly in vLLM 0.14.1), or its
        attention and eager kernels between piecewise graph pieces (an MLA drafter)."""
        if self.attention.eager_drafter:
            return counts.kernels
        return cpu_launches("PIECEWISE", counts, passes)

    def _static(self, tokens: int, t: int, rows: int) -> StaticPart:
        """Count-only operators of one drafter pass over ``t`` padded tokens sampling ``rows`` rows (cached)."""
        key = ("mtp", tokens, t, rows)
        part = self.cache.get(key)
        if part is None:
            ctx, k = self.ctx, self.ctx.kernels
            h = ctx.hidden
            ops = [
                k.memory_op("mtp_input_norms", "mtp", 1, t * h * ACT_BYTES * 4, kernels=MTP_INPUT_KERNELS),
                k.gemm("mtp_eh_proj", "mtp", 1, t, h, 2 * h, "bf16"),
                k.memory_op("mtp_bookkeeping", "mtp", 1, t * h * ACT_BYTES, kernels=MTP_BOOKKEEPING_KERNELS),
            ]
            ops += [
                as_mtp(o)
                for o in (
                    self.dense.norm_ops(t, 1)
                    + self.attention.static_ops(tokens, t, 1, mtp=True)
                    + self.moe.ops(t, t * ctx.dep.dp, 1, mtp=True)
                    + self.sampling.logits_ops(rows, "mtp_lm_head", "bf16")
                )
            ]
            part = static_part(ops)
            cache_put(self.cache, key, part)
        return part
