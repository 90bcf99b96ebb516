"""DeepEP's low-latency kernels: one message per (token, expert), in chunks of 256 tokens, CUDA-graph safe.

Each of a token's top-k experts on another rank gets its own copy (no per-rank deduplication): FP8 with block
scales for block-FP8 experts, else BF16, each with a 16-byte header; the combine returns one BF16 row per (token,
expert) and applies the top-k weights in the kernel [DeepEP csrc/config.hpp:148-149, internode_ll.cu:210-278;
vLLM 0.14.1 deepep_ll_prepare_finalize.py:27-29, 206-225, 370-396]. Each rank sends at most
``VLLM_MOE_DP_CHUNK_SIZE`` = 256 tokens per call and loops over chunks [fused_moe/layer.py:779-785].
"""

from __future__ import annotations

import math

from perfsim.costs.all2all.registry import register_all2all
from perfsim.costs.all2all.routing import DeepEPBackend
from perfsim.costs.roofline import OpTime

#: control bytes of one low-latency dispatch message
MESSAGE_HEADER_BYTES = 16
#: vLLM's VLLM_MOE_DP_CHUNK_SIZE default: tokens per rank per low-latency call
DP_CHUNK_TOKENS = 256


@register_all2all("deepep_low_latency")
class DeepEPLowLatency(DeepEPBackend):
    """Dispatch and combine with one copy per remote (token, expert)."""

    header_bytes = MESSAGE_HEADER_BYTES

    def ops(self, moe_tokens: int, layers: int) -> list[OpTime]:
        """Dispatch and combine per layer, one pair per chunk of this rank's ``moe_tokens / dp`` tokens."""
        ctx, route, tokens = self.ctx, self.route, self.rank_tokens(moe_tokens)
        if tokens is None or route is None:
            return []
        ep = ctx.dep.ep
        chunks = max(math.ceil(tokens / DP_CHUNK_TOKENS), 1)
        # experts are uniform over ranks: each of the top-k picks lands on another rank with (ep - 1) / ep
        nvl_share = (route.domain_ranks - 1) / ep
        nic_share = (ep - route.domain_ranks) / ep
        out = []
        for name, per_copy in (
            ("moe_dispatch_deepep_ll", self.dispatch_bytes),
            ("moe_combine_deepep_ll", self.combine_bytes),
        ):
            copies = tokens * self.top_k * per_copy
            t = chunks * route.time_s(
                copies * nvl_share / chunks, copies * nic_share / chunks, ctx.params.deepep_latency_s
            )
            out.append(
                ctx.kernels.comm_op(name, layers, (t, copies * (nvl_share + nic_share)), kernels=chunks)
            )
        return out
