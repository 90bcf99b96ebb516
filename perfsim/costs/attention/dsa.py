"""DeepSeek Sparse Attention (DeepSeek-V3.2) as vLLM 0.14.1's FLASHMLA_SPARSE backend runs it.

Every query token is absorbed into the latent space and attends to at most ``index_topk`` keys chosen by the
lightning indexer: FP8 MQA logits of every query against all its causal keys (64 heads x 128 dims), then a
per-row top-k. The indexer's projections are replicated on every TP rank. Prefill heads are padded to 128 on
Blackwell (64 on Hopper) when a rank holds fewer [flashmla_sparse.py:722]; with the FP8 cache a rank with
fewer than 32 heads runs every token through the FP8 sparse decode kernel.
"""

from __future__ import annotations

from perfsim.costs.attention.mla import MLAProjections
from perfsim.costs.attention.registry import register_attention
from perfsim.costs.batch import BatchStats
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime
from perfsim.specs.deployment import indexer_key_bytes
from perfsim.specs.dtypes import ACT_BYTES, FP8_BYTES, INDEX_BYTES, LOGIT_BYTES

#: Kernels of a V3.2 attention block per layer: about 33 before vLLM's 2026 fusion work (vLLM blog,
#: 2026-05-11); 20 of them launched eagerly between piecewise CUDA-graph pieces
KERNELS_DSA = 33
EAGER_KERNELS_DSA = 20
#: FlashMLA sparse prefill pads local heads to this many on SM100 (64 on Hopper) [flashmla_sparse.py:722];
#: ranks with fewer than 32 heads and an FP8 cache run everything through the decode kernel instead.
SPARSE_PREFILL_HEAD_PADDING_BLACKWELL = 128
SPARSE_PREFILL_HEAD_PADDING_HOPPER = 64
MIN_HEADS_FOR_SPARSE_PREFILL_KERNEL = 32


@register_attention("dsa")
class SparseMLA(MLAProjections):
    """MLA projections plus the lightning indexer and top-k sparse attention in absorbed form."""

    kernels_per_layer = KERNELS_DSA
    eager_kernels_per_layer = EAGER_KERNELS_DSA
    static_uses_unpadded_tokens = True  # every real token is absorbed
    eager_drafter = True  # the V3.2 MTP drafter runs eagerly in vLLM 0.14.1

    def __init__(self, ctx: CostContext):
        super().__init__(ctx)
        indexer = ctx.model.arch.indexer
        assert indexer is not None, "sparse attention needs the model's indexer dimensions"
        self.indexer = indexer
        self.sparse_topk = indexer.topk
        self.context_breakpoints = (indexer.topk,)
        self.key_bytes = indexer_key_bytes(indexer)
        self.logits_dtype = (
            "fp8" if ctx.kernels.peak["fp8"] else "bf16"
        )  # Ampere-class GPUs: FP8 logits in BF16
        self.topk_Bps = ctx.hw.hbm_bandwidth_Bps * ctx.params.topk_eff
        self.head_padding = (
            SPARSE_PREFILL_HEAD_PADDING_BLACKWELL
            if ctx.hw.is_blackwell
            else SPARSE_PREFILL_HEAD_PADDING_HOPPER
        )

    def extra_static_ops(
        self, tokens: int, padded: int, layers: int, q_in: int, *, mtp: bool
    ) -> list[OpTime]:
        """The indexer's projections and key write, and the absorption of every real token."""
        dtype = self.ctx.model.recipe.dtype("indexer", mtp=mtp)
        return self.indexer_projection_ops(padded, layers, q_in, dtype) + self.absorb_ops(tokens, layers)

    def indexer_projection_ops(self, t: int, layers: int, q_in: int, dtype: str) -> list[OpTime]:
        """Indexer projections (replicated on every TP rank) and the FP8 quantization / key-cache write."""
        ix, h, k = self.indexer, self.ctx.hidden, self.ctx.kernels
        return [
            k.gemm("indexer_wq_b", "indexer", layers, t, ix.num_heads * ix.head_dim, q_in, dtype),
            k.gemm("indexer_wk", "indexer", layers, t, ix.head_dim, h, dtype),
            k.gemm("indexer_weights_proj", "indexer", layers, t, ix.num_heads, h, "bf16"),
            k.memory_op(
                "indexer_quant_cache",
                "indexer",
                layers,
                t
                * (
                    ix.num_heads * ix.head_dim * (ACT_BYTES + FP8_BYTES)
                    + ix.head_dim * ACT_BYTES
                    + indexer_key_bytes(ix)
                ),
            ),
        ]

    def core_ops(self, batch: BatchStats, layers: int, *, mtp: bool) -> list[OpTime]:
        """Indexer scores and top-k, then sparse attention over the selected keys."""
        return self.indexer_score_ops(batch, layers) + self.sparse_attention_ops(batch, layers)

    def indexer_score_ops(self, b: BatchStats, layers: int) -> list[OpTime]:
        """FP8 MQA logits of every query against its causal keys, then the per-row top-k."""
        ix, k, p = self.indexer, self.ctx.kernels, self.ctx.params
        pairs = b.pairs
        logits_flops = 2.0 * ix.num_heads * ix.head_dim * pairs
        logits_bytes = (
            b.kv_tokens * self.key_bytes + pairs * LOGIT_BYTES + b.num_tokens * ix.num_heads * ix.head_dim
        )
        logits_dtype = self.logits_dtype
        topk_bytes = pairs * LOGIT_BYTES + b.num_tokens * ix.topk * INDEX_BYTES
        t_topk = topk_bytes / self.topk_Bps
        return [
            k.attention_op(
                "indexer_logits",
                layers,
                logits_flops,
                logits_bytes,
                0.0,
                p.indexer_eff,
                logits_dtype,
                category="indexer",
            ),
            OpTime(
                name="indexer_topk",
                category="indexer",
                layers=layers,
                time_s=t_topk * layers,
                flops=0.0,
                bytes=topk_bytes * layers,
                comm_bytes=0.0,
                bound="memory",
            ),
        ]

    def sparse_attention_ops(self, b: BatchStats, layers: int) -> list[OpTime]:
        """FlashMLA sparse decode (FP8 cache) and the head-padded sparse prefill kernel."""
        m, heads, ctx = self.mla, self.heads, self.ctx
        k, p = ctx.kernels, ctx.params
        per_pair = 2.0 * (m.latent_dim + m.kv_lora_rank)
        ops: list[OpTime] = []
        fp8_cache = ctx.dep.kv_cache_dtype == "fp8_ds_mla"
        if fp8_cache and heads < MIN_HEADS_FOR_SPARSE_PREFILL_KERNEL:
            # "mixed batch" mode: every token through the FP8 sparse decode kernel, no head padding
            dec_pairs, dec_tokens, pre_pairs = b.sparse_pairs, b.num_tokens, 0
        elif fp8_cache:
            dec_pairs, dec_tokens, pre_pairs = b.dec_sparse_pairs, b.dec_tokens, b.pre_sparse_pairs
        else:  # BF16 cache: every token through the (padded) sparse prefill kernel
            dec_pairs, dec_tokens, pre_pairs = 0, 0, b.sparse_pairs
        if dec_tokens:
            nbytes = dec_pairs * self.latent_entry_bytes + dec_tokens * heads * m.latent_dim * ACT_BYTES * 2
            ops.append(
                k.attention_op(
                    "sparse_attn_decode",
                    layers,
                    per_pair * heads * dec_pairs,
                    nbytes,
                    heads * dec_pairs,
                    p.sparse_attn_eff,
                )
            )
        if pre_pairs > 0:
            padded_heads = heads if heads >= self.head_padding else self.head_padding
            kv_tokens = b.pre_kv_tokens if fp8_cache else b.kv_tokens
            # FP8 entries are gathered and up-converted to a BF16 workspace, then read by the kernel
            nbytes = kv_tokens * (self.latent_entry_bytes + 2 * m.latent_dim * ACT_BYTES)
            ops.append(
                k.attention_op(
                    "sparse_attn_prefill",
                    layers,
                    per_pair * padded_heads * pre_pairs,
                    nbytes,
                    padded_heads * pre_pairs,
                    p.sparse_attn_eff,
                )
            )
        return ops
