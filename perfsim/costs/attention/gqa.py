"""Grouped-query (and multi-head) attention (Llama, Mixtral, Qwen3-MoE, gpt-oss) as vLLM runs it.

The fused qkv projection splits the query heads over TP ranks and the KV heads too, replicating them when TP
exceeds their number; o_proj splits its input. Qwen3 normalizes q and k per head, every family applies RoPE,
then the attention custom op writes K and V to the paged cache and runs the backend's kernel over the causal
pairs: prefill compute-bound (two matmuls of ``head_dim`` per pair and head, one exponential per pair and
head), decode streaming the cached keys and values. Sliding-window layers (gpt-oss: every other layer, 128
tokens) see at most ``window`` keys per query and cache only the window; attention sinks add one logit per head.
"""

from __future__ import annotations

from perfsim.costs.attention.registry import register_attention
from perfsim.costs.batch import BatchStats
from perfsim.costs.kernels import CostContext
from perfsim.costs.roofline import OpTime
from perfsim.specs.dtypes import ACT_BYTES
from perfsim.specs.kv_cache import kv_heads_per_rank

#: RoPE of q and k (vLLM's rotary_embedding custom op), Qwen3's per-head q/k RMSNorm (one kernel for both)
ROPE_KERNELS, QK_NORM_KERNELS = 1, 1
#: a prefill's attention kernel, and the split-KV decode kernel with its merge
PREFILL_KERNELS, DECODE_KERNELS = 1, 2


@register_attention("gqa")
class GroupedQueryAttention:
    """GQA/MHA blocks of one model on one deployment, full-attention and sliding-window layers apart."""

    static_uses_unpadded_tokens = False
    prefill_syncs_host = False
    eager_drafter = False
    context_breakpoints: tuple[int, ...] = ()

    def __init__(self, ctx: CostContext):
        self.ctx = ctx
        arch = ctx.model.arch
        assert arch.gqa is not None
        self.g = arch.gqa
        self.heads = self.g.num_heads // ctx.dep.tp
        self.kv_heads = kv_heads_per_rank(ctx.model, ctx.dep.tp)
        self.kv_bytes = 1 if ctx.dep.kv_fp8 else ACT_BYTES
        windows = arch.window_of_layer
        self.sliding_layers = sum(w is not None for w in windows)
        self.window = self.g.sliding_window if self.sliding_layers else None
        # the key cap of the windowed layers: batch statistics carry pairs capped at it (as for sparse top-k)
        self.sparse_topk = self.window
        if self.window:
            self.context_breakpoints = (self.window,)

    def _layer_split(self, layers: int) -> tuple[int, int]:
        """(full-attention, sliding-window) layers among ``layers`` (the model's share)."""
        n = self.ctx.model.arch.num_layers
        sliding = round(self.sliding_layers * layers / n) if n else 0
        return layers - sliding, sliding

    def static_ops(self, tokens: int, padded: int, layers: int, *, mtp: bool) -> list[OpTime]:
        """qkv, q/k norms, RoPE, the KV-cache write, o_proj and the TP all-reduce (``padded`` tokens)."""
        ctx, g, t = self.ctx, self.g, padded
        h, k, rec = ctx.hidden, ctx.kernels, ctx.model.recipe
        q_width, kv_width = self.heads * g.head_dim, self.kv_heads * g.head_dim
        ops = [
            k.gemm("attn_qkv_proj", "attention_proj", layers, t, q_width + 2 * kv_width, h, rec.dtype("qkv")),
            k.memory_op(
                "attn_rope",
                "attention_proj",
                layers,
                t * (q_width + kv_width) * ACT_BYTES * 2,
                kernels=ROPE_KERNELS,
            ),
            k.memory_op(
                "kv_cache_write",
                "attention",
                layers,
                t * 2 * kv_width * (ACT_BYTES + self.kv_bytes),
                launch="attention",
            ),
            k.gemm("attn_o_proj", "attention_proj", layers, t, h, q_width, rec.dtype("o_proj")),
        ]
        if g.qk_norm:
            ops.insert(
                1,
                k.memory_op(
                    "attn_qk_norm",
                    "attention_proj",
                    layers,
                    t * (q_width + kv_width) * ACT_BYTES * 2,
                    kernels=QK_NORM_KERNELS,
                ),
            )
        if ctx.dep.tp > 1:
            ops.append(ctx.tp_allreduce("attn_allreduce", layers, t * h * ACT_BYTES))
        return ops

    def core_ops(self, batch: BatchStats, layers: int, *, mtp: bool) -> list[OpTime]:
        """The attention kernels of the batch: prefill chunks and decodes, full and windowed layers."""
        full, sliding = self._layer_split(layers)
        ops: list[OpTime] = []
        for kind, n, windowed in (("full", full, False), ("sliding", sliding, True)):
            if n:
                ops += self._kernels(batch, n, windowed, kind)
        return ops

    def _kernels(self, b: BatchStats, layers: int, windowed: bool, kind: str) -> list[OpTime]:
        g, p, k = self.g, self.ctx.params, self.ctx.kernels
        heads, kv_token_bytes = self.heads, 2 * self.kv_heads * g.head_dim * self.kv_bytes
        suffix = "" if kind == "full" else "_sliding"
        ops = []
        if b.pre_tokens:
            pairs = b.pre_sparse_pairs if windowed else b.pre_pairs
            keys = b.pre_kv_tokens
            if windowed and self.window:
                keys = min(keys, b.pre_tokens + b.pre_reqs * self.window)
            nbytes = 2 * b.pre_tokens * heads * g.head_dim * ACT_BYTES + keys * kv_token_bytes
            ops.append(
                k.attention_op(
                    f"attn_prefill{suffix}",
                    layers,
                    4.0 * g.head_dim * heads * pairs,
                    nbytes,
                    heads * pairs,
                    p.attn_prefill_eff,
                    kernels=PREFILL_KERNELS,
                )
            )
        if b.dec_tokens:
            pairs = b.dec_sparse_pairs if windowed else b.dec_pairs
            keys = pairs if windowed else b.dec_kv_tokens  # a decode query reads each key it attends once
            nbytes = keys * kv_token_bytes + 2 * b.dec_tokens * heads * g.head_dim * ACT_BYTES
            ops.append(
                k.attention_op(
                    f"attn_decode{suffix}",
                    layers,
                    4.0 * g.head_dim * heads * pairs,
                    nbytes,
                    heads * pairs,
                    p.attn_decode_eff,
                    kernels=DECODE_KERNELS,
                )
            )
        return ops
