"""Client-side metrics exactly as ``vllm bench serve`` (0.14.1 ``calculate_metrics``) computes them.

Per request: TTFT = first streamed chunk - send time; E2EL = last chunk - send time;
TPOT = (E2EL - TTFT) / (output tokens - 1) when more than one token; ITL = gaps between consecutive
chunks (per chunk, not per token), flattened over requests. Throughputs divide by the benchmark
duration (first dispatch to last completion). Statistics use numpy (population std, linear
percentiles). ``max_output_tokens_per_s`` and ``max_concurrent_requests`` count chunks and active
requests in one-second buckets from the earliest send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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


def _stats(name: str, values: np.ndarray, percentiles: Sequence[float], out: dict) -> None:
    arr = values if values.size else np.zeros(1)
    out[f"mean_{name}_ms"] = float(np.mean(arr)) * 1000
    out[f"median_{name}_ms"] = float(np.median(arr)) * 1000
    out[f"std_{name}_ms"] = float(np.std(arr)) * 1000
    for p in percentiles:
        word = str(int(p)) if int(p) == p else str(p)
        out[f"p{word}_{name}_ms"] = float(np.percentile(arr, p)) * 1000


def bench_metrics(records: Sequence[RequestRecord], duration_s: float, *, num_sent: int,
                  percentiles: Sequence[float] = (99,), selected: Sequence[str] = ("ttft", "tpot", "itl"),
                  ) -> dict:
    """The result keys of ``vllm bench serve --save-result`` (benchmark part), in its order."""
    ttfts = np.array([r.ttft for r in records])
    lat = np.array([r.latency for r in records])
    outs = np.array([r.output_tokens for r in records])
    multi = outs > 1
    tpots = (lat[multi] - ttfts[multi]) / (outs[multi] - 1)
    itls = np.concatenate([np.diff(r.chunk_times) for r in records]) if records else np.zeros(0)
    total_in = int(sum(r.prompt_len for r in records))
    total_out = int(outs.sum()) if records else 0
    completed = len(records)
    out: dict = {
        "duration": duration_s,
        "completed": completed,
        "failed": num_sent - completed,
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": completed / duration_s if duration_s else 0.0,
        "request_goodput": None,
        "output_throughput": total_out / duration_s if duration_s else 0.0,
        "total_token_throughput": (total_in + total_out) / duration_s if duration_s else 0.0,
    }
    out["max_output_tokens_per_s"], out["max_concurrent_requests"] = peak_rates(records)
    series = {"ttft": ttfts, "tpot": tpots, "itl": itls, "e2el": lat}
    for name in ("ttft", "tpot", "itl", "e2el"):
        if name in selected:
            _stats(name, series[name], percentiles, out)
    return out


def peak_rates(records: Sequence[RequestRecord]) -> tuple[float, int]:
    """(max chunks in any one-second bucket, max requests active in any one-second bucket)."""
    if not records:
        return 0.0, 0
    start = min(r.send_time for r in records)
    end = max(r.send_time + r.latency for r in records)
    buckets = int(np.ceil(end - start)) + 1
    chunks = np.concatenate([r.chunk_times for r in records]) - start
    counts = np.bincount(chunks.astype(np.int64), minlength=buckets)[:buckets]
    first = np.array([int(r.send_time - start) for r in records])
    last = np.array([int(r.send_time + r.latency - start) for r in records])
    active = np.zeros(buckets + 1)
    np.add.at(active, first, 1)
    np.add.at(active, last + 1, -1)
    return float(counts.max()), int(np.cumsum(active)[:buckets].max())
