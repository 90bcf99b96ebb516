"""What the client saw, read from the engines' chunk log: the columnar view the metrics use, and per-request
records for inspection and tests."""

from __future__ import annotations

import numpy as np

from perfsim.serving.engine import ChunkLog
from perfsim.serving.metrics import ClientView, RequestRecord, sparse_bucket_counts
from perfsim.serving.request import Request


def client_view(log: ChunkLog, reqs: list[Request]) -> ClientView:
    """What the client saw, from the engines' chunk log (entries in time order).

    An entry is (step end time, ids, tokens per chunk) or (step end times of a decode block, ids, tokens):
    in a block every id gets a chunk at every step end, so its gaps inside the block are the block's step
    durations, counted once per id.
    """
    n = len(reqs)
    send = np.array([r.send_time_s for r in reqs])
    first = np.full(n, np.nan)
    last = np.full(n, np.nan)
    tokens = np.zeros(n, dtype=np.int64)
    itl_values: list[np.ndarray] = []
    itl_counts: list[np.ndarray] = []
    start = float(send.min()) if n else 0.0
    bucket_times: list[np.ndarray] = []
    bucket_counts: list[np.ndarray] = []
    for t, rids, toks in log:
        if isinstance(t, np.ndarray):  # a decode block: one chunk per id at every step end
            t0, t1 = float(t[0]), float(t[-1])
        else:
            t0 = t1 = t
        prev = last[rids]
        seen = ~np.isnan(prev)
        if seen.any():
            itl_values.append(t0 - prev[seen])
            itl_counts.append(np.ones(int(seen.sum()), dtype=np.int64))
        unseen = rids[~seen]
        first[unseen] = t0
        if isinstance(t, np.ndarray):
            itl_values.append(np.diff(t))
            itl_counts.append(np.full(t.size - 1, rids.size, dtype=np.int64))
            tokens[rids] += toks * t.size
            bucket_times.append(t)
            bucket_counts.append(np.full(t.size, rids.size, dtype=np.int64))
        else:
            tokens[rids] += toks
            bucket_times.append(np.array([t]))
            bucket_counts.append(np.array([rids.size], dtype=np.int64))
        last[rids] = t1
    if bucket_times:
        buckets = sparse_bucket_counts(np.concatenate(bucket_times) - start, np.concatenate(bucket_counts))
    else:
        buckets = np.zeros(1, dtype=np.int64)
    values = np.concatenate(itl_values) if itl_values else np.zeros(0)
    counts = np.concatenate(itl_counts) if itl_counts else np.zeros(0, dtype=np.int64)
    return ClientView(
        send_time=send,
        prompt_len=np.array([r.num_client_prompt_tokens for r in reqs]),
        output_tokens=tokens,
        first_chunk=first,
        last_chunk=last,
        itl_values=values,
        itl_counts=counts,
        bucket_chunks=buckets,
    )


def per_request_records(log: ChunkLog, reqs: list[Request]) -> list[RequestRecord]:
    """Per-request chunk times (for inspection and tests; the metrics use ``client_view``)."""
    chunks: list[list[np.ndarray]] = [[] for _ in reqs]
    tokens = np.zeros(len(reqs), dtype=np.int64)
    for t, rids, toks in log:
        times = t if isinstance(t, np.ndarray) else np.array([t])
        for rid, k in zip(rids.tolist(), toks.tolist(), strict=True):
            chunks[rid].append(times)
            tokens[rid] += k * times.size
    return [
        RequestRecord(
            send_time=r.send_time_s,
            prompt_len=r.num_client_prompt_tokens,
            output_tokens=int(tokens[i]),
            chunk_times=np.concatenate(chunks[i]) if chunks[i] else np.zeros(0),
        )
        for i, r in enumerate(reqs)
    ]
