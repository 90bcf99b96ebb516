"""Where DeepEP sends a token: the ranks and nodes holding its experts, and which link each copy takes.

Under uniform routing a rank holding ``g = E / EP`` of the ``E`` physical experts receives a token with
probability ``1 - C(E - g, k) / C(E, k)`` (``perfsim.specs.expert_parallel.distinct_destination_ranks``). Copies to
ranks of the same NVLink domain go over NVLink, the others over the NIC. DeepEP runs NVLink inside one HGX server
(8 GPUs) and, with multi-node NVLink (MNNVL), across an NVL72 rack.
"""

from __future__ import annotations

from dataclasses import dataclass

from perfsim.costs.comm import Link, link
from perfsim.costs.kernels import CostContext
from perfsim.specs.dtypes import ACT_BYTES, FP8_BYTES, FP32_BYTES
from perfsim.specs.expert_parallel import distinct_destination_ranks

#: FP8 block-quantized activations carry one FP32 scale per 128 values
FP8_BLOCK = 128


@dataclass(frozen=True)
class DeepEPRoute:
    """One rank's view of a DeepEP exchange: remote destinations per token over NVLink and over the NIC."""

    nvlink_ranks_per_token: float
    nic_ranks_per_token: float
    nvlink: Link
    nic: Link
    domain_ranks: int

    @classmethod
    def build(cls, ctx: CostContext) -> DeepEPRoute:
        """Destinations of a token of ``ctx``'s deployment (EP = TP x DP, physical experts with EPLB)."""
        dep, hw, p, moe = ctx.dep, ctx.hw, ctx.params, ctx.model.arch.moe
        assert moe is not None
        ep = dep.ep
        experts = dep.physical_experts or moe.num_experts
        p_rank = distinct_destination_ranks(experts, moe.top_k, ep) / ep
        domain = min(ep, hw.scaleup_domain_gpus)
        nvlink = link(hw, "nvlink", p)
        nic = link(hw, "nic", p)
        return cls(
            nvlink_ranks_per_token=(domain - 1) * p_rank,
            nic_ranks_per_token=(ep - domain) * p_rank,
            nvlink=Link(
                name="nvlink",
                bandwidth_Bps=hw.scaleup_bandwidth_Bps * p.deepep_eff,
                latency_s=nvlink.latency_s,
            ),
            nic=Link(
                name="nic", bandwidth_Bps=hw.scaleout_bandwidth_Bps * p.deepep_eff, latency_s=nic.latency_s
            ),
            domain_ranks=domain,
        )

    def time_s(self, nvlink_bytes: float, nic_bytes: float, latency_s: float) -> float:
        """One call moving ``nvlink_bytes`` and ``nic_bytes`` per rank: both links run at once."""
        if nvlink_bytes <= 0 and nic_bytes <= 0:
            return 0.0
        return latency_s + max(nvlink_bytes / self.nvlink.bandwidth_Bps, nic_bytes / self.nic.bandwidth_Bps)


def dispatch_token_bytes(ctx: CostContext, *, header_bytes: float = 0.0) -> float:
    """Bytes of one dispatched token copy: FP8 with 128-block scales for block-FP8 experts, else BF16 (vLLM
    quantizes other formats, NVFP4 included, after the receive) [deepep_ht_prepare_finalize.py:228-280]."""
    h = ctx.hidden
    block_fp8 = (
        ctx.model.recipe.dtype("routed_experts") == "fp8" and ctx.kernels.compute_dtype("fp8") == "fp8"
    )
    if block_fp8:
        return h * FP8_BYTES + h / FP8_BLOCK * FP32_BYTES + header_bytes
    return h * ACT_BYTES + header_bytes


class DeepEPBackend:
    """What DeepEP's two kernel families share: the bytes of a dispatched and of a combined token, and the route
    of this instance's ranks (None without expert parallelism). Subclasses say how many copies travel."""

    #: control bytes travelling with each dispatched copy (subclasses set it)
    header_bytes: float = 0.0

    def __init__(self, ctx: CostContext):
        self.ctx = ctx
        moe = ctx.model.arch.moe
        self.top_k = moe.top_k if moe else 0
        self.dispatch_bytes = dispatch_token_bytes(ctx, header_bytes=self.header_bytes)
        self.combine_bytes = ctx.hidden * ACT_BYTES
        self.route = DeepEPRoute.build(ctx) if ctx.dep.ep > 1 and moe else None

    def rank_tokens(self, moe_tokens: int) -> float | None:
        """This rank's share of a step's MoE tokens, or None when no all-to-all runs (DP 1 or no EP)."""
        if self.ctx.dep.dp <= 1 or self.route is None:
            return None
        return moe_tokens / self.ctx.dep.dp
