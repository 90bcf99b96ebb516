"""Multi-head latent attention (DeepSeek V2/V3/R1, Kimi-K2) as vLLM 0.14.1 runs it.

The fused q_a/kv_a projection is replicated on every TP rank; q_b and o_proj split the heads. Dense MLA
prefill expands the latent KV of context and new tokens with kv_b (the non-absorbed, MHA form) and reads
the cached context back in chunked prefill; decode multiplies queries into the 576-wide latent space
(W_UK / W_UV, BF16 copies of kv_b) and attends to the cached latents (the absorbed form).
"""

from __future__ import annotations

from perfsim.costs.attention.registry import register_attention
from perfsim.costs.batch import BatchStats
from perfsim.costs.comm import all_reduce
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime
from perfsim.specs.deployment import mla_entry_bytes
from perfsim.specs.dtypes import ACT_BYTES

#: Kernels of a dense MLA attention block per layer and those launched eagerly between piecewise CUDA-graph
#: pieces (the attention custom ops)
KERNELS_MLA = 12
EAGER_KERNELS_MLA = 6


class MLAProjections:
    """The parts every MLA variant shares: projections, the KV-cache write, the TP all-reduce, absorption."""

    kernels_per_layer = KERNELS_MLA
    eager_kernels_per_layer = EAGER_KERNELS_MLA
    static_uses_unpadded_tokens = False
    eager_drafter = False
    sparse_topk: int | None = None
    context_breakpoints: tuple[int, ...] = ()

    def __init__(self, ctx: CostContext):
        self.ctx = ctx
        self.mla = ctx.model.arch.mla
        self.heads = self.mla.num_heads // ctx.dep.tp
        self.latent_entry_bytes = mla_entry_bytes(ctx.model, ctx.dep.kv_cache_dtype)

    def static_ops(self, tokens: int, padded: int, layers: int, *, mtp: bool) -> list[OpTime]:
        """Projections, KV writes and the TP all-reduce of the attention block (``padded`` tokens)."""
        ctx, m, t = self.ctx, self.mla, padded
        h, k = ctx.hidden, ctx.kernels
        recipe = ctx.model.recipe

        def dt(module_class: str) -> str:
            return recipe.dtype(module_class, mtp=mtp)

        q_in = m.q_lora_rank or h
        ops = [
            k.gemm(
                "attn_qkv_a_proj",
                "attention_proj",
                layers,
                t,
                (m.q_lora_rank or 0) + m.latent_dim,
                h,
                dt("q_a"),
            ),
            k.gemm("attn_q_b_proj", "attention_proj", layers, t, self.heads * m.qk_head_dim, q_in, dt("q_b")),
            k.memory_op(
                "kv_cache_write",
                "attention",
                layers,
                t * (m.latent_dim * ACT_BYTES + self.latent_entry_bytes),
            ),
        ]
        ops += self.extra_static_ops(tokens, padded, layers, q_in, mtp=mtp)
        ops.append(
            k.gemm("attn_o_proj", "attention_proj", layers, t, h, self.heads * m.v_head_dim, dt("o_proj"))
        )
        if ctx.dep.tp > 1:
            ops.append(
                k.comm_op("attn_allreduce", layers, all_reduce(t * h * ACT_BYTES, ctx.dep.tp, ctx.tp_link))
            )
        return ops

    def extra_static_ops(
        self, tokens: int, padded: int, layers: int, q_in: int, *, mtp: bool
    ) -> list[OpTime]:
        """Variant-specific count-only operators between the KV write and o_proj (none for dense MLA)."""
        return []

    def absorb_ops(self, tokens: int, layers: int) -> list[OpTime]:
        """W_UK and W_UV batched matmuls of the absorbed form (BF16 copies of kv_b), per query token."""
        m, k = self.mla, self.ctx.kernels
        if tokens <= 0:
            return []
        return [
            k.gemm(
                "attn_absorb_w_uk",
                "attention",
                layers,
                tokens,
                self.heads * m.kv_lora_rank,
                m.qk_nope_head_dim,
                "bf16",
            ),
            k.gemm(
                "attn_absorb_w_uv",
                "attention",
                layers,
                tokens,
                self.heads * m.v_head_dim,
                m.kv_lora_rank,
                "bf16",
            ),
        ]


@register_attention("mla")
class DenseMLA(MLAProjections):
    """Dense MLA: MHA-form prefill over expanded context, absorbed decode over the cached latents."""

    def core_ops(self, batch: BatchStats, layers: int, *, mtp: bool) -> list[OpTime]:
        """Prefill (expand, gather, causal MHA) and decode (absorb, latent attention) of the batch."""
        b, m, heads = batch, self.mla, self.heads
        p, k = self.ctx.params, self.ctx.kernels
        kv_b_dtype = self.ctx.model.recipe.dtype("kv_b", mtp=mtp)
        ops: list[OpTime] = []
        if b.pre_tokens:
            # non-absorbed (MHA) prefill: expand the latent of context + new tokens with kv_b
            ops.append(
                k.gemm(
                    "attn_kv_b_expand",
                    "attention",
                    layers,
                    b.pre_kv_tokens,
                    heads * (m.qk_nope_head_dim + m.v_head_dim),
                    m.kv_lora_rank,
                    kv_b_dtype,
                )
            )
            if b.pre_ctx_tokens:
                ops.append(
                    k.memory_op(
                        "attn_context_gather",
                        "attention",
                        layers,
                        b.pre_ctx_tokens * (self.latent_entry_bytes + m.latent_dim * ACT_BYTES),
                    )
                )
            flops = 2.0 * heads * (m.qk_head_dim + m.v_head_dim) * b.pre_pairs
            nbytes = (
                b.pre_tokens * heads * (m.qk_head_dim + m.v_head_dim) * ACT_BYTES
                + b.pre_kv_tokens * heads * (m.qk_head_dim + m.v_head_dim) * ACT_BYTES
            )
            ops.append(
                k.attention_op(
                    "attn_prefill_mha", layers, flops, nbytes, heads * b.pre_pairs, p.attn_prefill_eff
                )
            )
        if b.dec_tokens:
            ops += self.absorb_ops(b.dec_tokens, layers)
            flops = 2.0 * heads * (m.latent_dim + m.kv_lora_rank) * b.dec_pairs
            nbytes = (
                b.dec_kv_tokens * self.latent_entry_bytes
                + b.dec_tokens * heads * m.latent_dim * ACT_BYTES * 2
            )
            ops.append(
                k.attention_op(
                    "attn_decode_mla", layers, flops, nbytes, heads * b.dec_pairs, p.attn_decode_eff
                )
            )
        return ops
