"""Multi-head latent attention (DeepSeek V2/V3/R1, Kimi-K2) as vLLM 0.14.1 runs it.

The fused q_a/kv_a projection is replicated on every TP rank; q_b and o_proj split the heads. Dense MLA
prefill expands the latent KV of context and new tokens with kv_b (the non-absorbed, MHA form) and reads
the cached context back in chunked prefill; decode multiplies queries into the 576-wide latent space
(W_UK / W_UV, BF16 copies of kv_b) and attends to the cached latents (the absorbed form). Decode kernels that
need a fixed head count compute the padded heads (CUTLASS MLA always 128 [cutlass_mla.py:131]).

Kernels per layer follow vLLM's decoder layer [deepseek_v2.py, layers/mla.py, v1/attention/backends/mla]: the
q_a / kv_a norms and RoPE are Inductor kernels between the GEMMs; the KV-cache write, the absorption matmuls
and the attention kernels run inside the attention custom op, launched eagerly between piecewise graph pieces.
"""

from __future__ import annotations

from perfsim.costs.attention.registry import register_attention
from perfsim.costs.batch import BatchStats
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime, with_kernels
from perfsim.specs.attention import BACKENDS
from perfsim.specs.dtypes import ACT_BYTES
from perfsim.specs.kv_cache import mla_entry_bytes

#: q_a and kv_a layernorms (one Inductor kernel) and RoPE of q_pe / k_pe (one) [layers/mla.py:137-159]
LATENT_NORM_KERNELS, ROPE_KERNELS = 1, 1
#: q_pe padding + W_UK matmul, and W_UV matmul + output copy [mla/common.py:2065-2105, 1283-1298]
ABSORB_UK_KERNELS, ABSORB_UV_KERNELS = 2, 2
#: split-KV decode kernel and its combine [cutlass_mla.py:150-158, 217-237]
DECODE_KERNELS = 2
#: prefill: concat of k_nope / k_pe and the ragged attention; per context chunk a gather (dequantize) and the
#: merge of the attention states [mla/common.py:1900-1958, 1726-1789]
PREFILL_KERNELS, CONTEXT_KERNELS = 2, 2


class MLAProjections:
    """The parts every MLA variant shares: projections, the KV-cache write, the TP all-reduce, absorption."""

    static_uses_unpadded_tokens = False
    #: the MLA metadata builder copies the prefill's computed-token counts to the host [mla/common.py:815-819];
    #: FLASHMLA_SPARSE blocks on its prefill metadata too [flashmla_sparse.py:514, indexer.py:175, 246]
    prefill_syncs_host = True
    eager_drafter = False
    sparse_topk: int | None = None
    context_breakpoints: tuple[int, ...] = ()

    def __init__(self, ctx: CostContext):
        self.ctx = ctx
        mla = ctx.model.arch.mla
        assert mla is not None, "MLA attention needs the model's MLA dimensions"
        self.mla = mla
        self.heads = self.mla.num_heads // ctx.dep.tp
        padding = BACKENDS[ctx.dep.attention_backend].decode_head_padding
        self.decode_heads = max(self.heads, padding) if padding else self.heads
        self.latent_entry_bytes = mla_entry_bytes(ctx.model, ctx.dep.kv_cache_dtype)

    def static_ops(self, tokens: int, padded: int, layers: int, *, mtp: bool) -> list[OpTime]:
        """Projections, norms, RoPE, KV writes and the TP all-reduce of the attention block (``padded`` tokens)."""
        ctx, m, t = self.ctx, self.mla, padded
        h, k = ctx.hidden, ctx.kernels
        recipe = ctx.model.recipe

        def dt(module_class: str) -> str:
            return recipe.dtype(module_class, mtp=mtp)

        q_in = m.q_lora_rank or h
        q_a = m.q_lora_rank or 0
        ops = [
            k.gemm("attn_qkv_a_proj", "attention_proj", layers, t, q_a + m.latent_dim, h, dt("q_a")),
            k.memory_op(
                "attn_latent_norms",
                "attention_proj",
                layers,
                t * (q_a + m.kv_lora_rank) * ACT_BYTES * 2,
                kernels=LATENT_NORM_KERNELS,
            ),
            k.gemm("attn_q_b_proj", "attention_proj", layers, t, self.heads * m.qk_head_dim, q_in, dt("q_b")),
            k.memory_op(
                "attn_rope",
                "attention_proj",
                layers,
                t * (self.heads + 1) * m.qk_rope_head_dim * ACT_BYTES * 2,
                kernels=ROPE_KERNELS,
            ),
            k.memory_op(
                "kv_cache_write",
                "attention",
                layers,
                t * (m.latent_dim * ACT_BYTES + self.latent_entry_bytes),
                launch="attention",
            ),
        ]
        ops += self.extra_static_ops(tokens, padded, layers, q_in, mtp=mtp)
        ops.append(
            k.gemm("attn_o_proj", "attention_proj", layers, t, h, self.heads * m.v_head_dim, dt("o_proj"))
        )
        if ctx.dep.tp > 1:
            ops.append(ctx.tp_allreduce("attn_allreduce", layers, t * h * ACT_BYTES))
        return ops

    def extra_static_ops(
        self, tokens: int, padded: int, layers: int, q_in: int, *, mtp: bool
    ) -> list[OpTime]:
        """Variant-specific count-only operators between the KV write and o_proj (none for dense MLA)."""
        return []

    def absorb_ops(self, tokens: int, layers: int, *, uk_kernels: int = ABSORB_UK_KERNELS) -> list[OpTime]:
        """W_UK and W_UV batched matmuls of the absorbed form (BF16 copies of kv_b), per query token."""
        m, k = self.mla, self.ctx.kernels
        if tokens <= 0:
            return []
        uk = k.gemm(
            "attn_absorb_w_uk",
            "attention",
            layers,
            tokens,
            self.heads * m.kv_lora_rank,
            m.qk_nope_head_dim,
            "bf16",
            launch="attention",
        )
        uv = k.gemm(
            "attn_absorb_w_uv",
            "attention",
            layers,
            tokens,
            self.heads * m.v_head_dim,
            m.kv_lora_rank,
            "bf16",
            launch="attention",
        )
        return [with_kernels(uk, uk_kernels), with_kernels(uv, ABSORB_UV_KERNELS)]


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
                    launch="attention",
                )
            )
            if b.pre_ctx_tokens:
                ops.append(
                    k.memory_op(
                        "attn_context_gather",
                        "attention",
                        layers,
                        b.pre_ctx_tokens * (self.latent_entry_bytes + m.latent_dim * ACT_BYTES),
                        kernels=CONTEXT_KERNELS,
                        launch="attention",
                    )
                )
            flops = 2.0 * heads * (m.qk_head_dim + m.v_head_dim) * b.pre_pairs
            nbytes = (
                b.pre_tokens * heads * (m.qk_head_dim + m.v_head_dim) * ACT_BYTES
                + b.pre_kv_tokens * heads * (m.qk_head_dim + m.v_head_dim) * ACT_BYTES
            )
            ops.append(
                k.attention_op(
                    "attn_prefill_mha",
                    layers,
                    flops,
                    nbytes,
                    heads * b.pre_pairs,
                    p.attn_prefill_eff,
                    kernels=PREFILL_KERNELS,
                )
            )
        if b.dec_tokens:
            ops += self.absorb_ops(b.dec_tokens, layers)
            # the kernel computes its padded head count; the cache is read once for all heads
            flops = 2.0 * self.decode_heads * (m.latent_dim + m.kv_lora_rank) * b.dec_pairs
            nbytes = (
                b.dec_kv_tokens * self.latent_entry_bytes
                + b.dec_tokens * heads * m.latent_dim * ACT_BYTES * 2
            )
            ops.append(
                k.attention_op(
                    "attn_decode_mla",
                    layers,
                    flops,
                    nbytes,
                    self.decode_heads * b.dec_pairs,
                    p.attn_decode_eff,
                    kernels=DECODE_KERNELS,
                )
            )
        return ops
