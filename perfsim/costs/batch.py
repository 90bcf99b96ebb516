"""The work of one engine step on one engine (DP rank), reduced to the sums the cost model needs.

A step schedules, for each request, ``new_tokens`` query tokens on top of ``context_tokens`` already in
the KV cache. Attention costs depend on (query, key) pairs, which for a chunk of q new tokens after c
cached ones is q*c + q(q+1)/2 (causal); sparse attention caps each query's keys at ``topk``. All sums are
computed with numpy over requests, so a batch of hundreds of requests costs microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchStats:
    """Sufficient statistics of one step's batch on one engine (all counts in tokens or pairs)."""

    num_reqs: int
    num_tokens: int
    # requests on the decode path (query length <= decode threshold)
    dec_reqs: int
    dec_tokens: int
    dec_kv_tokens: int  # sum of (context + new) over decode requests: keys each query may read
    dec_pairs: int  # causal (query, key) pairs of decode requests
    dec_sparse_pairs: int  # pairs with each query capped at topk keys (sparse attention)
    # requests on the prefill path (chunks longer than the threshold)
    pre_reqs: int
    pre_tokens: int
    pre_kv_tokens: int  # sum of (context + new) over prefill requests
    pre_ctx_tokens: int  # sum of cached context of prefill requests (re-read in chunked prefill)
    pre_pairs: int
    pre_sparse_pairs: int
    max_seq_len: int
    uniform_query: bool = False  # every request has the same number of new tokens

    @property
    def pairs(self) -> int:
        """All causal (query, key) pairs of the step."""
        return self.dec_pairs + self.pre_pairs

    @property
    def sparse_pairs(self) -> int:
        """All (query, key) pairs of the step with each query capped at the sparse top-k."""
        return self.dec_sparse_pairs + self.pre_sparse_pairs

    @property
    def kv_tokens(self) -> int:
        """Sum over requests of context + new tokens."""
        return self.dec_kv_tokens + self.pre_kv_tokens

    @property
    def is_uniform_decode(self) -> bool:
        """True when every request is a decode of the same query length (FULL CUDA-graph eligible)."""
        return self.pre_reqs == 0 and self.dec_reqs > 0 and self.uniform_query


EMPTY = BatchStats(
    num_reqs=0,
    num_tokens=0,
    dec_reqs=0,
    dec_tokens=0,
    dec_kv_tokens=0,
    dec_pairs=0,
    dec_sparse_pairs=0,
    pre_reqs=0,
    pre_tokens=0,
    pre_kv_tokens=0,
    pre_ctx_tokens=0,
    pre_pairs=0,
    pre_sparse_pairs=0,
    max_seq_len=0,
)


def causal_pairs(new: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    """Per request: keys seen by its queries, sum over j=1..q of (c + j) = q*c + q(q+1)/2."""
    return new * ctx + new * (new + 1) // 2


def capped_pairs(new: np.ndarray, ctx: np.ndarray, cap: int) -> np.ndarray:
    """Per request: sum over j=1..q of min(c + j, cap) (sparse attention reads at most ``cap`` keys)."""
    below = np.minimum(np.maximum(cap - ctx, 0), new)  # queries whose causal window fits under the cap
    part = below * ctx + below * (below + 1) // 2
    return part + (new - below) * cap


def _sums(new: np.ndarray, ctx: np.ndarray, topk: int | None, max_len: int) -> tuple[int, int, int, int]:
    """(new tokens, kv tokens, causal pairs, top-k-capped pairs) summed over requests, via dot products."""
    t_new = int(new.sum())
    t_kv = t_new + int(ctx.sum())
    # sum of q*c + q(q+1)/2; every q(q+1) is even, so halving the sum is exact
    t_pairs = int(new @ ctx) + (int(new @ new) + t_new) // 2
    if not topk or max_len <= topk:
        return t_new, t_kv, t_pairs, t_pairs
    below = np.minimum(np.maximum(topk - ctx, 0), new)
    t_below = int(below.sum())
    t_sparse = int(below @ ctx) + (int(below @ below) + t_below) // 2 + (t_new - t_below) * topk
    return t_new, t_kv, t_pairs, t_sparse


def batch_stats(
    new_tokens, context_tokens, *, decode_threshold: int = 1, topk: int | None = None
) -> BatchStats:
    """Reduce per-request (new, context) token counts to ``BatchStats``.

    ``decode_threshold``: requests with at most this many new tokens take the decode kernels (vLLM's
    ``reorder_batch_threshold``: 1, or 1 + speculative tokens for backends that support it).
    ``topk``: the sparse-attention key cap (DeepSeek-V3.2's index_topk), or None for dense attention.
    """
    new = np.asarray(new_tokens, dtype=np.int64)
    ctx = np.asarray(context_tokens, dtype=np.int64)
    if new.size == 0:
        return EMPTY
    new_min, new_max = int(new.min()), int(new.max())
    if new_min < 0 or int(ctx.min()) < 0:
        raise ValueError("token counts must be non-negative")
    n = int(new.size)
    max_len = int((new + ctx).max())
    t_new, t_kv, t_pairs, t_sparse = _sums(new, ctx, topk, max_len)
    uniform = new_min == new_max
    if new_max <= decode_threshold:  # pure decode (the common case): no prefill sums to split
        return BatchStats(
            num_reqs=n,
            num_tokens=t_new,
            dec_reqs=n,
            dec_tokens=t_new,
            dec_kv_tokens=t_kv,
            dec_pairs=t_pairs,
            dec_sparse_pairs=t_sparse,
            pre_reqs=0,
            pre_tokens=0,
            pre_kv_tokens=0,
            pre_ctx_tokens=0,
            pre_pairs=0,
            pre_sparse_pairs=0,
            max_seq_len=max_len,
            uniform_query=uniform,
        )
    pre = np.flatnonzero(new > decode_threshold)  # usually a few chunks: sum them, decode is the rest
    p_new, p_ctx = new[pre], ctx[pre]
    p_max = int((p_new + p_ctx).max())
    s_new, s_kv, s_pairs, s_sparse = _sums(p_new, p_ctx, topk, p_max)
    return BatchStats(
        num_reqs=n,
        num_tokens=t_new,
        dec_reqs=n - int(pre.size),
        dec_tokens=t_new - s_new,
        dec_kv_tokens=t_kv - s_kv,
        dec_pairs=t_pairs - s_pairs,
        dec_sparse_pairs=t_sparse - s_sparse,
        pre_reqs=int(pre.size),
        pre_tokens=s_new,
        pre_kv_tokens=s_kv,
        pre_ctx_tokens=int(p_ctx.sum()),
        pre_pairs=s_pairs,
        pre_sparse_pairs=s_sparse,
        max_seq_len=max_len,
        uniform_query=uniform,
    )


def uniform_decode_stats(
    num_reqs: int, context_tokens: int, *, decode_threshold: int = 1, topk: int | None = None
) -> BatchStats:
    """``batch_stats`` of ``num_reqs`` one-token decodes that all follow ``context_tokens`` cached tokens.

    ``decode_threshold`` (>= 1, as vLLM's always is) is accepted for symmetry with ``batch_stats``.
    """
    if num_reqs <= 0:
        return EMPTY
    kv = context_tokens + 1
    pairs = num_reqs * kv
    sparse = num_reqs * min(kv, topk) if topk else pairs
    return BatchStats(
        num_reqs=num_reqs,
        num_tokens=num_reqs,
        dec_reqs=num_reqs,
        dec_tokens=num_reqs,
        dec_kv_tokens=pairs,
        dec_pairs=pairs,
        dec_sparse_pairs=sparse,
        pre_reqs=0,
        pre_tokens=0,
        pre_kv_tokens=0,
        pre_ctx_tokens=0,
        pre_pairs=0,
        pre_sparse_pairs=0,
        max_seq_len=kv,
        uniform_query=True,
    )
