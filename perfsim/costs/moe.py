"""Mixture-of-experts layers: router, shared experts, routed experts as grouped GEMMs, expert parallelism.

Routed experts see the tokens of every DP rank (padded to the largest rank, as DP ranks step in lockstep).
Without expert parallelism every GPU holds a 1/(TP x DP) slice of every expert; with it, whole experts
(num_experts / EP per GPU) and the busiest rank's load follows the routing statistics (``moe_balance``).
The number of distinct experts a step reads follows the workload's expert popularity
(``expert_coverage``): hot experts are read by almost every step, cold ones are skipped more often than
uniform routing says, which shortens small decode batches. Tokens reach the experts through the deployment's
all-to-all backend (``perfsim.costs.all2all``).
"""

from __future__ import annotations

from perfsim.costs.all2all import all2all_backend
from perfsim.costs.expert_coverage import expected_active_experts
from perfsim.costs.kernels import CostContext
from perfsim.costs.moe_balance import ep_load_factor
from perfsim.costs.mxfp4_moe import expert_tiling, routed_expert_dims
from perfsim.costs.roofline import OpTime, with_kernels
from perfsim.specs.dtypes import ACT_BYTES, FP32_BYTES

#: kernels of the router (a clone of the input for the shared-expert stream, then the BF16 gate GEMM) and of
#: the routing (grouped top-k) [fused_moe/layer.py:914; deepseek_v2.py:355; fused_moe.py:1407-1425]
ROUTER_KERNELS, ROUTING_KERNELS = 2, 1
#: the routed input's FP4/FP8 quantization plus the router logit and bias casts [flashinfer_fp4_moe.py:286-311]
PERMUTE_QUANT_KERNELS = 3
#: SiLU and mul of the shared expert run as two native kernels on its side stream [activation.py:90-93]
SHARED_ACT_KERNELS = 2
#: the expert-output combine and the routed-output scaling + shared-expert add [deepseek_v2.py:360-375]
FINALIZE_KERNELS = 2


class MoEBlock:
    """The MoE layers of one model on one deployment."""

    def __init__(self, ctx: CostContext):
        self.ctx = ctx
        self.all2all = all2all_backend(ctx, ctx.dep.all2all_backend)
        self.dims = ctx.model.arch.moe
        self.grouped = self.dims is not None and (self.dims.n_group or 1) > 1

    def ops(self, t: int, moe_tokens: int, layers: int, *, mtp: bool) -> list[OpTime]:
        """One step's MoE operators: ``t`` (padded) tokens on this rank, ``moe_tokens`` over the DP group."""
        moe = self.dims
        if layers == 0 or moe is None:
            return []
        ctx, k = self.ctx, self.ctx.kernels
        dep, p, rec = ctx.dep, ctx.params, ctx.model.recipe
        h = ctx.hidden
        router = k.gemm("moe_router", "moe", layers, t, moe.num_experts, h, "bf16")
        ops = [
            with_kernels(router, ROUTER_KERNELS),
            k.memory_op(
                "moe_routing", "moe", layers, t * moe.num_experts * FP32_BYTES * 2, kernels=ROUTING_KERNELS
            ),
        ]
        if moe.num_shared_experts:
            shared_inter = moe.num_shared_experts * moe.intermediate_size // dep.tp
            sdt = rec.dtype("shared_expert", mtp=mtp)
            ops += [
                k.gemm("shared_gate_up", "moe", layers, t, 2 * shared_inter, h, sdt),
                k.memory_op(
                    "shared_act", "moe", layers, t * shared_inter * ACT_BYTES * 3, kernels=SHARED_ACT_KERNELS
                ),
                k.gemm("shared_down", "moe", layers, t, h, shared_inter, sdt),
            ]
        # routed experts: tokens from every DP rank meet the experts of this GPU. EPLB places replicas by the
        # measured expert loads: the workload's popularity skew is balanced away, the sampling noise of one
        # step's tokens is not
        cv = 0.0 if dep.eplb else p.expert_popularity_cv
        experts = dep.physical_experts if dep.ep > 1 and dep.physical_experts else moe.num_experts
        if dep.ep > 1:
            local_experts = experts / dep.ep
            imbalance = ep_load_factor(experts, moe.top_k, dep.ep, moe_tokens, cv, grouped=self.grouped)
            assignments = moe_tokens * moe.top_k / dep.ep * imbalance
        else:
            local_experts = moe.num_experts
            assignments = moe_tokens * moe.top_k
        active = expected_active_experts(local_experts, moe.top_k / experts, moe_tokens, cv)
        rdt = rec.dtype("routed_experts", mtp=mtp)
        a_in = k.activation_in_bytes(k.compute_dtype(rdt))
        # the expert kernels run the shapes vLLM padded them to, with their own row tiles (MXFP4)
        h_pad, inter = routed_expert_dims(rdt, ctx.hw, h, dep.expert_slice(moe.intermediate_size))
        tiling = expert_tiling(rdt, ctx.hw, p)
        ops += [
            # quantize the layer input once, then write one (quantized) copy per routed assignment
            k.memory_op(
                "moe_permute_quant",
                "moe",
                layers,
                moe_tokens * h * (ACT_BYTES + a_in) + assignments * h * a_in,
                kernels=PERMUTE_QUANT_KERNELS,
            ),
            k.grouped_gemm("moe_gate_up", layers, assignments, active, 2 * inter, h_pad, rdt, tiling=tiling),
            k.memory_op("moe_act", "moe", layers, assignments * inter * ACT_BYTES * 3),
            k.grouped_gemm("moe_down", layers, assignments, active, h_pad, inter, rdt, tiling=tiling),
            k.memory_op(
                "moe_finalize",
                "moe",
                layers,
                assignments * h * ACT_BYTES + moe_tokens * h * ACT_BYTES,
                kernels=FINALIZE_KERNELS,
            ),
        ]
        ops += self.all2all.ops(moe_tokens, layers)
        if dep.tp > 1:
            ops.append(ctx.tp_allreduce("moe_allreduce", layers, t * h * ACT_BYTES))
        return ops
