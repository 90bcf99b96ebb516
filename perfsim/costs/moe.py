"""Mixture-of-experts layers: router, shared experts, routed experts as grouped GEMMs, expert parallelism.

Routed experts see the tokens of every DP rank (padded to the largest rank, as DP ranks step in lockstep).
Without expert parallelism every GPU holds a 1/(TP x DP) slice of every expert; with it, whole experts
(num_experts / EP per GPU) and the busiest rank gets ``1 + ep_imbalance x (1 - 1/EP)`` times the mean load.
The number of distinct experts a step touches follows uniform routing: each of E local experts is picked
with probability 1 - (1 - top_k / num_experts)^tokens. Tokens reach the experts through the deployment's
all-to-all backend (``perfsim.costs.all2all``).
"""

from __future__ import annotations

from perfsim.costs.all2all import all2all_backend
from perfsim.costs.comm import all_reduce
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime
from perfsim.specs.dtypes import ACT_BYTES

#: Kernels of an MoE block per layer: router GEMM, routing top-k, permute / quantize, two grouped GEMMs,
#: activation, finalize, shared-expert GEMMs and activation, all-reduce
KERNELS_MOE = 12


class MoEBlock:
    """The MoE layers of one model on one deployment."""

    kernels_per_layer = KERNELS_MOE

    def __init__(self, ctx: CostContext):
        self.ctx = ctx
        self.all2all = all2all_backend(ctx)

    def ops(self, t: int, moe_tokens: int, layers: int, *, mtp: bool) -> list[OpTime]:
        """One step's MoE operators: ``t`` (padded) tokens on this rank, ``moe_tokens`` over the DP group."""
        if layers == 0:
            return []
        ctx, k = self.ctx, self.ctx.kernels
        dep, p, rec = ctx.dep, ctx.params, ctx.model.recipe
        moe, h = ctx.model.arch.moe, ctx.hidden
        ops = [k.gemm("moe_router", "moe", layers, t, moe.num_experts, h, "bf16")]
        if moe.num_shared_experts:
            shared_inter = moe.num_shared_experts * moe.intermediate_size // dep.tp
            sdt = rec.dtype("shared_expert", mtp=mtp)
            ops += [
                k.gemm("shared_gate_up", "moe", layers, t, 2 * shared_inter, h, sdt),
                k.memory_op("shared_act", "moe", layers, t * shared_inter * ACT_BYTES * 3),
                k.gemm("shared_down", "moe", layers, t, h, shared_inter, sdt),
            ]
        # routed experts: tokens from every DP rank meet the experts of this GPU
        if dep.ep > 1:
            local_experts = moe.num_experts / dep.ep
            inter = moe.intermediate_size
            imbalance = 1.0 + p.ep_imbalance * (1 - 1 / dep.ep)
            assignments = moe_tokens * moe.top_k / dep.ep * imbalance
        else:
            local_experts = moe.num_experts
            inter = moe.intermediate_size // dep.moe_tp
            assignments = moe_tokens * moe.top_k
        p_pick = moe.top_k / moe.num_experts
        active = local_experts * (1.0 - (1.0 - p_pick) ** moe_tokens)
        rdt = rec.dtype("routed_experts", mtp=mtp)
        a_in = k.activation_in_bytes(k.compute_dtype(rdt))
        ops += [
            # quantize the layer input once, then write one (quantized) copy per routed assignment
            k.memory_op(
                "moe_permute_quant",
                "moe",
                layers,
                moe_tokens * h * (ACT_BYTES + a_in) + assignments * h * a_in,
            ),
            k.grouped_gemm("moe_gate_up", layers, assignments, active, 2 * inter, h, rdt),
            k.memory_op("moe_act", "moe", layers, assignments * inter * ACT_BYTES * 3),
            k.grouped_gemm("moe_down", layers, assignments, active, h, inter, rdt),
            k.memory_op(
                "moe_finalize", "moe", layers, assignments * h * ACT_BYTES + moe_tokens * h * ACT_BYTES
            ),
        ]
        ops += self.all2all.ops(moe_tokens, layers)
        if dep.tp > 1:
            ops.append(k.comm_op("moe_allreduce", layers, all_reduce(t * h * ACT_BYTES, dep.tp, ctx.tp_link)))
        return ops
