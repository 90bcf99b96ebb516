"""DeepSeek Sparse Attention (DeepSeek-V3.2) as vLLM 0.14.1's FLASHMLA_SPARSE backend runs it.

Every query token is absorbed into the latent space and attends to ``index_topk`` (2,048) key slots chosen by
the lightning indexer: FP8 MQA logits of every query against its causal keys (64 heads x 128 dims), then a
per-row top-k. The indexer's projections are replicated on every TP rank.

What the kernels do, not what the math needs [FlashMLA @46d64a8, the build vLLM 0.14.1 calls]:

* Both sparse kernels loop over every one of the 2,048 index slots of a query and mask the unused ones (-1):
  compute is 2,048 slots per query token whatever the context; vLLM 0.14.1 passes no top-k length. Masked
  slots skip their loads, so HBM traffic follows the valid slots, min(context, 2,048).
* Heads are padded: the SM100 prefill kernel computes 128 heads, SM90's multiples of 64; the FP8 decode
  kernel multiples of 64 (SM100) or 128 (SM90) [flashmla_sparse.py:722; csrc/sm*/*/sparse*].
* With the FP8 cache a rank with fewer than 32 heads runs every token through the FP8 decode kernel; otherwise
  prefill requests first up-convert their whole context to a BF16 workspace for the prefill kernel. A BF16
  cache sends every token through the prefill kernel [flashmla_sparse.py:46-56, 663, 738-755, 836-852].
* The indexer's DeepGEMM logits are written in full and cleaned: decode rows span max_model_len, prefill
  logits the chunk's queries x all keys of the chunk's requests [DeepGEMM attention.hpp; utils/deep_gemm.py:331].
  Its top-k kernel works row by row (one row per thread block).
"""

from __future__ import annotations

import math

from perfsim.costs.attention.mla import MLAProjections
from perfsim.costs.attention.registry import register_attention
from perfsim.costs.batch import BatchStats
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime, with_kernels
from perfsim.specs.dtypes import ACT_BYTES, FP8_BYTES, INDEX_BYTES, LOGIT_BYTES
from perfsim.specs.kv_cache import indexer_key_bytes

#: ranks with fewer heads and an FP8 cache run every token through the FP8 decode kernel [flashmla_sparse.py:46-56]
MIN_HEADS_FOR_SPARSE_PREFILL_KERNEL = 32
#: head multiples the sparse kernels compute: (prefill, FP8 decode) on SM100 and on SM90
SPARSE_HEAD_BLOCKS = {"blackwell": (128, 64), "hopper": (64, 128)}
#: indexer kernels of the decoder layer (k_norm LayerNorm, RoPE + concat, q quantization, weight scaling), and
#: of its custom op (key quantization + cache write, the -1 fill) [deepseek_v2.py:602-925]
INDEXER_PREP_KERNELS, INDEXER_CACHE_KERNELS = 4, 2
#: W_UK matmul with the q concat and the request-to-global index conversion [flashmla_sparse.py:947-1021]
SPARSE_ABSORB_UK_KERNELS = 3
#: the FP8 decode kernel's split-KV pass and combine; the prefill kernel and its head-padding copy
SPARSE_DECODE_KERNELS, SPARSE_PREFILL_KERNELS = 2, 2


def padded_heads(heads: int, block: int, *, exact: bool = False) -> int:
    """Heads a kernel computes: ``block`` exactly (``exact``) or the next multiple of ``block``."""
    return block if exact else block * math.ceil(heads / block)


@register_attention("dsa")
class SparseMLA(MLAProjections):
    """MLA projections plus the lightning indexer and top-k sparse attention in absorbed form."""

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
        prefill_block, decode_block = SPARSE_HEAD_BLOCKS["blackwell" if ctx.hw.is_blackwell else "hopper"]
        self.prefill_heads = padded_heads(self.heads, prefill_block, exact=ctx.hw.is_blackwell)
        self.decode_heads = padded_heads(self.heads, decode_block)
        self.max_model_len = ctx.dep.max_model_len

    def extra_static_ops(
        self, tokens: int, padded: int, layers: int, q_in: int, *, mtp: bool
    ) -> list[OpTime]:
        """The indexer's projections and key write, and the absorption of every real token."""
        dtype = self.ctx.model.recipe.dtype("indexer", mtp=mtp)
        absorb = self.absorb_ops(tokens, layers, uk_kernels=SPARSE_ABSORB_UK_KERNELS)
        return self.indexer_projection_ops(padded, layers, q_in, dtype) + absorb

    def indexer_projection_ops(self, t: int, layers: int, q_in: int, dtype: str) -> list[OpTime]:
        """Indexer projections (replicated on every TP rank), its norms and quantization, the key-cache write."""
        ix, h, k = self.indexer, self.ctx.hidden, self.ctx.kernels
        q_values = ix.num_heads * ix.head_dim
        return [
            k.gemm("indexer_wq_b", "indexer", layers, t, q_values, q_in, dtype),
            k.gemm("indexer_wk", "indexer", layers, t, ix.head_dim, h, dtype, quantized_input=True),
            k.gemm("indexer_weights_proj", "indexer", layers, t, ix.num_heads, h, "bf16"),
            k.memory_op(
                "indexer_prep",
                "indexer",
                layers,
                t * (q_values * (ACT_BYTES + FP8_BYTES) + ix.head_dim * ACT_BYTES * 2),
                kernels=INDEXER_PREP_KERNELS,
            ),
            k.memory_op(
                "indexer_key_cache",
                "indexer",
                layers,
                t * (ix.head_dim * ACT_BYTES + self.key_bytes),
                kernels=INDEXER_CACHE_KERNELS,
                launch="attention",
            ),
        ]

    def core_ops(self, batch: BatchStats, layers: int, *, mtp: bool) -> list[OpTime]:
        """Indexer scores and top-k, then sparse attention over the selected keys."""
        return self.indexer_score_ops(batch, layers) + self.sparse_attention_ops(batch, layers)

    def indexer_score_ops(self, b: BatchStats, layers: int) -> list[OpTime]:
        """FP8 MQA logits of every query against its causal keys (written in full), then the per-row top-k."""
        ix, k, p = self.indexer, self.ctx.kernels, self.ctx.params
        pairs = b.pairs
        logits_flops = 2.0 * ix.num_heads * ix.head_dim * pairs
        # decode rows are max_model_len wide; prefill logits span the chunk's queries x all its requests' keys
        logits_written = b.dec_tokens * self.max_model_len + b.pre_tokens * b.pre_kv_tokens
        logits_bytes = (
            b.kv_tokens * self.key_bytes
            + logits_written * LOGIT_BYTES
            + b.num_tokens * ix.num_heads * ix.head_dim
        )
        topk_bytes = pairs * LOGIT_BYTES + b.num_tokens * ix.topk * INDEX_BYTES
        # one thread block per row: the longest row bounds a small batch, the HBM stream a large one
        t_topk = p.topk_latency_s + max(
            topk_bytes / self.topk_Bps, b.max_seq_len * LOGIT_BYTES / p.topk_row_Bps
        )
        return [
            k.attention_op(
                "indexer_logits",
                layers,
                logits_flops,
                logits_bytes,
                0.0,
                p.indexer_eff,
                self.logits_dtype,
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
                launch="attention",
            ),
        ]

    def sparse_attention_ops(self, b: BatchStats, layers: int) -> list[OpTime]:
        """FlashMLA sparse decode (FP8 cache) and the head-padded sparse prefill kernel, 2,048 slots a query."""
        m, ctx = self.mla, self.ctx
        k, p = ctx.kernels, ctx.params
        slots = self.indexer.topk
        per_slot = 2.0 * (m.latent_dim + m.kv_lora_rank)
        ops: list[OpTime] = []
        fp8_cache = ctx.dep.kv_cache_dtype == "fp8_ds_mla"
        if fp8_cache and self.heads < MIN_HEADS_FOR_SPARSE_PREFILL_KERNEL:
            # "mixed batch" mode: every token through the FP8 sparse decode kernel
            dec_tokens, dec_valid, pre_tokens, pre_valid = b.num_tokens, b.sparse_pairs, 0, 0
        elif fp8_cache:
            dec_tokens, dec_valid = b.dec_tokens, b.dec_sparse_pairs
            pre_tokens, pre_valid = b.pre_tokens, b.pre_sparse_pairs
        else:  # BF16 cache: every token through the (padded) sparse prefill kernel
            dec_tokens, dec_valid, pre_tokens, pre_valid = 0, 0, b.num_tokens, b.sparse_pairs
        if dec_tokens:
            heads = self.decode_heads
            nbytes = (
                dec_valid * self.latent_entry_bytes + dec_tokens * self.heads * m.latent_dim * ACT_BYTES * 2
            )
            ops.append(
                k.attention_op(
                    "sparse_attn_decode",
                    layers,
                    per_slot * heads * dec_tokens * slots,
                    nbytes,
                    heads * dec_tokens * slots,
                    p.sparse_decode_eff,
                    kernels=SPARSE_DECODE_KERNELS,
                )
            )
        if pre_tokens:
            heads = self.prefill_heads
            kv_tokens = b.pre_kv_tokens if fp8_cache else b.kv_tokens
            # FP8 entries are gathered and up-converted to a BF16 workspace, then the valid slots are read
            nbytes = (
                kv_tokens * (self.latent_entry_bytes + m.latent_dim * ACT_BYTES)
                + pre_valid * m.latent_dim * ACT_BYTES
            )
            prefill = k.attention_op(
                "sparse_attn_prefill",
                layers,
                per_slot * heads * pre_tokens * slots,
                nbytes,
                heads * pre_tokens * slots,
                p.sparse_prefill_eff,
            )
            ops.append(with_kernels(prefill, SPARSE_PREFILL_KERNELS if heads > self.heads else 1))
        return ops
