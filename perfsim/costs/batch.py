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
    def kv_tokens(self) -> int:
        """Sum over requests of context + new tokens."""
        return self.dec_kv_tokens + self.pre_kv_tokens

    @property
    def is_uniform_decode(self) -> bool:
        """True when every request is a decode of the same query length (FULL CUDA-graph eligible)."""
        return self.pre_reqs == 0 and self.dec_reqs > 0 and self.uniform_query


EMPTY = BatchStats(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def causal_pairs(new: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    """Per request: keys seen by its queries, sum over j=1..q of (c + j) = q*c + q(q+1)/2."""
    return new * ctx + new * (new + 1) // 2


def capped_pairs(new: np.ndarray, ctx: np.ndarray, cap: int) -> np.ndarray:
    """Per request: sum over j=1..q of min(c + j, cap) (sparse attention reads at most ``cap`` keys)."""
    below = np.minimum(np.maximum(cap - ctx, 0), new)  # queries whose causal window fits under the cap
    part = below * ctx + below * (below + 1) // 2
    return part + (new - below) * cap


def batch_stats(new_tokens, context_tokens, *, decode_threshold: int = 1, topk: int | None = None) -> BatchStats:
    """Reduce per-request (new, context) token counts to ``BatchStats``.

    ``decode_threshold``: requests with at most this many new tokens take the decode kernels (vLLM's
    ``reorder_batch_threshold``: 1, or 1 + speculative tokens for backends that support it).
    ``topk``: the sparse-attention key cap (DeepSeek-V3.2's index_topk), or None for dense attention.
    """
    new = np.asarray(new_tokens, dtype=np.int64)
    ctx = np.asarray(context_tokens, dtype=np.int64)
    if new.size == 0:
        return EMPTY
    if new.min() < 0 or ctx.min() < 0:
        raise ValueError("token counts must be non-negative")
    kv = new + ctx
    pairs = new * ctx + new * (new + 1) // 2
    max_len = int(kv.max())
    # sparse attention caps each query's keys at topk; when no query reaches the cap it equals ``pairs``
    sparse = capped_pairs(new, ctx, topk) if topk and max_len > topk else pairs
    is_dec = new <= decode_threshold
    n_dec = int(np.count_nonzero(is_dec))
    n = int(new.size)
    totals = (int(new.sum()), int(kv.sum()), int(pairs.sum()), int(sparse.sum()) if sparse is not pairs else None)
    if n_dec == n:  # pure decode (the common case): no prefill sums to split
        t_new, t_kv, t_pairs, t_sparse = totals
        return BatchStats(n, t_new, n, t_new, t_kv, t_pairs, t_pairs if t_sparse is None else t_sparse,
                          0, 0, 0, 0, 0, 0, max_len, bool(new.min() == new.max()))
    d_new, d_kv, d_pairs = int(new[is_dec].sum()), int(kv[is_dec].sum()), int(pairs[is_dec].sum())
    d_sparse = d_pairs if sparse is pairs else int(sparse[is_dec].sum())
    t_new, t_kv, t_pairs, t_sparse = totals
    t_sparse = t_pairs if t_sparse is None else t_sparse
    return BatchStats(
        num_reqs=n, num_tokens=t_new,
        dec_reqs=n_dec, dec_tokens=d_new, dec_kv_tokens=d_kv, dec_pairs=d_pairs, dec_sparse_pairs=d_sparse,
        pre_reqs=n - n_dec, pre_tokens=t_new - d_new, pre_kv_tokens=t_kv - d_kv,
        pre_ctx_tokens=int(ctx[~is_dec].sum()), pre_pairs=t_pairs - d_pairs, pre_sparse_pairs=t_sparse - d_sparse,
        max_seq_len=max_len, uniform_query=bool(new.min() == new.max()),
    )
