"""Client-side metrics exactly as ``vllm bench serve`` (0.14.1 ``calculate_metrics``) computes them.

Per request: TTFT = first streamed chunk - send time; E2EL = last chunk - send time;
TPOT = (E2EL - TTFT) / (output tokens - 1) when more than one token; ITL = gaps between consecutive
chunks (per chunk, not per token), flattened over requests. Throughputs divide by the benchmark
duration (first dispatch to last completion). Statistics use numpy's definitions (population std,
linear-interpolation percentiles). ``max_output_tokens_per_s`` and ``max_concurrent_requests`` count
chunks and active requests in one-second buckets from the earliest send.

The simulator hands over a ``ClientView``: per-request arrays plus the ITL list as (value, count)
pairs, because a block of identical decode steps gives every request the same gaps. Weighted
statistics reproduce numpy's on the expanded list exactly, without materializing millions of chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: the latency summaries of a result that tables and plans carry (bench serve's keys, ms)
LATENCY_SUMMARY_KEYS = (
    "mean_ttft_ms",
    "median_ttft_ms",
    "p99_ttft_ms",
    "mean_tpot_ms",
    "median_tpot_ms",
    "p99_tpot_ms",
)


@dataclass(frozen=True)
class RequestRecord:
    """What the client saw of one successful request (times in seconds)."""

    send_time: float
    prompt_len: int  # client-side prompt length (bench serve's input tokens)
    output_tokens: int
    chunk_times: np.ndarray  # arrival time of every streamed chunk

    @property
    def ttft(self) -> float:
        """Time to first token (s)."""
        return float(self.chunk_times[0] - self.send_time)

    @property
    def latency(self) -> float:
        """End-to-end latency (s)."""
        return float(self.chunk_times[-1] - self.send_time)


@dataclass(frozen=True)
class ClientView:
    """Everything the metrics need, columnar: per request, and the flattened ITLs with multiplicities.

    ``bucket_chunks`` counts the chunks of each one-second bucket (seconds after the earliest send) that has
    any, in time order; empty seconds are left out, so memory follows the requests, not the simulated time.
    """

    send_time: np.ndarray
    prompt_len: np.ndarray
    output_tokens: np.ndarray
    first_chunk: np.ndarray
    last_chunk: np.ndarray
    itl_values: np.ndarray
    itl_counts: np.ndarray
    bucket_chunks: np.ndarray

    @classmethod
    def from_records(cls, records: Sequence[RequestRecord]) -> ClientView:
        """Build the view from per-request records."""
        if not records:
            z = np.zeros(0)
            i = z.astype(np.int64)
            return cls(
                send_time=z,
                prompt_len=i,
                output_tokens=i,
                first_chunk=z,
                last_chunk=z,
                itl_values=z,
                itl_counts=i,
                bucket_chunks=i,
            )
        send = np.array([r.send_time for r in records])
        itls = np.concatenate([np.diff(r.chunk_times) for r in records])
        start = send.min()
        chunks = np.concatenate([r.chunk_times for r in records]) - start
        buckets = sparse_bucket_counts(chunks, np.ones(chunks.size, dtype=np.int64))
        return cls(
            send_time=send,
            prompt_len=np.array([r.prompt_len for r in records]),
            output_tokens=np.array([r.output_tokens for r in records]),
            first_chunk=np.array([r.chunk_times[0] for r in records]),
            last_chunk=np.array([r.chunk_times[-1] for r in records]),
            itl_values=itls,
            itl_counts=np.ones(itls.size, dtype=np.int64),
            bucket_chunks=buckets,
        )


def sparse_bucket_counts(times_s: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of ``counts`` per one-second bucket of ``times_s`` (seconds from the start), occupied buckets only."""
    if times_s.size == 0:
        return np.zeros(1, dtype=np.int64)
    _, where = np.unique(times_s.astype(np.int64), return_inverse=True)
    return np.bincount(where, weights=counts).astype(np.int64)


def weighted_stats(
    values: np.ndarray, counts: np.ndarray, percentiles: Sequence[float]
) -> tuple[float, float, float, list[float]]:
    """(mean, median, std, percentiles) of ``values`` repeated ``counts`` times, as numpy computes them."""
    if values.size == 0 or counts.sum() == 0:
        return 0.0, 0.0, 0.0, [0.0 for _ in percentiles]
    order = np.argsort(values, kind="stable")
    v, c = values[order], counts[order].astype(np.int64)
    total = int(c.sum())
    mean = float(np.dot(v, c) / total)
    std = float(np.sqrt(np.dot((v - mean) ** 2, c) / total))
    ends = np.cumsum(c)  # expanded index range of each distinct value: [ends - c, ends)

    def at(index: int) -> float:
        return float(v[np.searchsorted(ends, index, side="right")])

    def percentile(p: float) -> float:
        h = (total - 1) * p / 100.0
        lo, hi = int(np.floor(h)), int(np.ceil(h))
        a, b = at(lo), at(hi)
        return a + (h - lo) * (b - a)

    return mean, percentile(50), std, [percentile(p) for p in percentiles]


def _stats(
    name: str, values: np.ndarray, counts: np.ndarray, percentiles: Sequence[float], out: dict
) -> None:
    if values.size == 0:
        values, counts = np.zeros(1), np.ones(1, dtype=np.int64)  # bench serve reports 0 for an empty list
    mean, median, std, pct = weighted_stats(values, counts, percentiles)
    out[f"mean_{name}_ms"] = mean * 1000
    out[f"median_{name}_ms"] = median * 1000
    out[f"std_{name}_ms"] = std * 1000
    for p, value in zip(percentiles, pct, strict=True):
        word = str(int(p)) if int(p) == p else str(p)
        out[f"p{word}_{name}_ms"] = value * 1000


def bench_metrics(
    view: ClientView | Sequence[RequestRecord],
    duration_s: float,
    *,
    num_sent: int,
    percentiles: Sequence[float] = (99,),
    selected: Sequence[str] = ("ttft", "tpot", "itl"),
    goodput_ms: dict[str, float] | None = None,
) -> dict:
    """The result keys of ``vllm bench serve --save-result`` (benchmark part), in its order; ``goodput_ms``
    (--goodput objectives, ms) fills ``request_goodput``: requests meeting every objective per second, a
    one-token output counting as TPOT 0 [vLLM 0.14.1 benchmarks/serve.py:430-470]."""
    if not isinstance(view, ClientView):
        view = ClientView.from_records(view)
    ttfts = view.first_chunk - view.send_time
    lat = view.last_chunk - view.send_time
    outs = view.output_tokens
    multi = outs > 1
    tpots = (lat[multi] - ttfts[multi]) / (outs[multi] - 1)
    total_in = int(view.prompt_len.sum())
    total_out = int(outs.sum())
    completed = int(view.send_time.size)
    out: dict = {
        "duration": duration_s,
        "completed": completed,
        "failed": num_sent - completed,
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": completed / duration_s if duration_s else 0.0,
        "request_goodput": _goodput(goodput_ms, ttfts, lat, outs, duration_s),
        "output_throughput": total_out / duration_s if duration_s else 0.0,
        "total_token_throughput": (total_in + total_out) / duration_s if duration_s else 0.0,
    }
    out["max_output_tokens_per_s"], out["max_concurrent_requests"] = peak_rates(view)
    ones = np.ones
    series = {
        "ttft": (ttfts, ones(ttfts.size, dtype=np.int64)),
        "tpot": (tpots, ones(tpots.size, dtype=np.int64)),
        "itl": (view.itl_values, view.itl_counts),
        "e2el": (lat, ones(lat.size, dtype=np.int64)),
    }
    for name in ("ttft", "tpot", "itl", "e2el"):
        if name in selected:
            _stats(name, *series[name], percentiles, out)
    return out


def _meets(slos_ms: dict[str, float], ttfts: np.ndarray, lat: np.ndarray, outs: np.ndarray) -> np.ndarray:
    """Per request: does it meet every objective (bench serve's goodput rule; one token = TPOT 0)."""
    tpot_all = np.where(outs > 1, (lat - ttfts) / np.maximum(outs - 1, 1), 0.0)
    good = np.ones(ttfts.size, dtype=bool)
    for name, values in (("ttft", ttfts), ("tpot", tpot_all), ("e2el", lat)):
        if name in slos_ms:
            good &= values <= slos_ms[name] / 1000.0
    return good


def _goodput(
    slos_ms: dict[str, float] | None, ttfts: np.ndarray, lat: np.ndarray, outs: np.ndarray, duration_s: float
) -> float | None:
    if not slos_ms:
        return None
    good = _meets(slos_ms, ttfts, lat, outs)
    return int(good.sum()) / duration_s if duration_s else 0.0


def meets_slos(view: ClientView, slos_ms: dict[str, float]) -> np.ndarray:
    """Per completed request: does it meet every objective of ``slos_ms`` (ttft/tpot/e2el, ms)."""
    return _meets(
        slos_ms, view.first_chunk - view.send_time, view.last_chunk - view.send_time, view.output_tokens
    )


def peak_rates(view: ClientView) -> tuple[float, int]:
    """(max chunks in any one-second bucket, max requests active in any one-second bucket).

    A request is active from the bucket of its send to that of its last chunk; the count is evaluated only
    where it changes, so a run of 10^8 simulated seconds costs no more memory than one of ten.
    """
    if view.send_time.size == 0:
        return 0.0, 0
    start = view.send_time.min()
    first = (view.send_time - start).astype(np.int64)
    last = (view.last_chunk - start).astype(np.int64)
    where = np.concatenate([first, last + 1])
    delta = np.concatenate([np.ones(first.size), -np.ones(last.size)])
    positions, index = np.unique(where, return_inverse=True)
    active = np.cumsum(np.bincount(index, weights=delta, minlength=positions.size))
    counts = view.bucket_chunks
    return float(counts.max()) if counts.size else 0.0, int(active.max())
